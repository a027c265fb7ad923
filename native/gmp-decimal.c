// N! for the factorial kind's coordinator, through GMP: the product of the tasks' partials
// (big-endian magnitudes), shifted left, as decimal digits. A Node-API addon (ABI-stable across
// Node versions), built by `npm run setup` where GMP's headers are (Debian: libgmp-dev); the
// loader and the JavaScript fallback are shared/gmp-decimal.ts. The work runs on libuv's thread
// pool, so the coordinator's event loop keeps serving NATS meanwhile.
#define NAPI_VERSION 8
#include <node_api.h>
#include <gmp.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

// Values of more digits than this are converted in two halves on two threads (the workers are
// done by then, so the cores are free): value = high * 10^m + low.
#define SPLIT_DIGITS 200000

typedef struct {
  napi_async_work work;
  napi_deferred deferred;
  size_t count;
  unsigned char **parts;
  size_t *lengths;
  unsigned long shift;
  char *digits;
  size_t length;
  const char *failure;
} Job;

static void free_job(Job *job) {
  for (size_t i = 0; i < job->count; i++) free(job->parts[i]);
  free(job->parts);
  free(job->lengths);
  free(job->digits);
  free(job);
}

typedef struct {
  mpz_srcptr value;
  char *out;
} Half;

static void *convert_half(void *data) {
  Half *half = data;
  mpz_get_str(half->out, 10, half->value);
  return NULL;
}

// value = high * 10^m + low: high on a second thread, low (padded to m digits) on this one.
static void to_decimal_in_halves(Job *job, mpz_srcptr value, size_t bound) {
  size_t m = bound / 2;
  mpz_t power, high, low;
  mpz_inits(power, high, low, NULL);
  mpz_ui_pow_ui(power, 10, m);
  mpz_tdiv_qr(high, low, value, power);
  char *low_digits = malloc(m + 2);
  Half upper = {high, job->digits};
  pthread_t thread;
  int threaded = low_digits != NULL && pthread_create(&thread, NULL, convert_half, &upper) == 0;
  if (!low_digits) {
    job->failure = "out of memory";
  } else {
    if (!threaded) convert_half(&upper);
    mpz_get_str(low_digits, 10, low);
    if (threaded) pthread_join(thread, NULL);
    size_t high_length = strlen(job->digits);
    size_t low_length = strlen(low_digits);
    // high is not 0 (value has more than m digits), so its digits lead; low's are padded.
    memset(job->digits + high_length, '0', m - low_length);
    memcpy(job->digits + high_length + m - low_length, low_digits, low_length + 1);
    job->length = high_length + m;
  }
  free(low_digits);
  mpz_clears(power, high, low, NULL);
}

// Multiplies the partials pairwise (a balanced tree: GMP's FFT multiplication on equal sizes).
static void execute(napi_env env, void *data) {
  (void)env;
  Job *job = data;
  size_t n = job->count;
  mpz_t *values = malloc((n > 0 ? n : 1) * sizeof(mpz_t));
  if (!values) {
    job->failure = "out of memory";
    return;
  }
  for (size_t i = 0; i < n; i++) {
    mpz_init(values[i]);
    mpz_import(values[i], job->lengths[i], 1, 1, 0, 0, job->parts[i]);
  }
  if (n == 0) {
    mpz_init_set_ui(values[0], 1);
    n = 1;
  }
  while (n > 1) {
    size_t half = 0;
    for (size_t i = 0; i + 1 < n; i += 2) {
      mpz_mul(values[half], values[i], values[i + 1]);
      half++;
    }
    if (n % 2 == 1) mpz_swap(values[half++], values[n - 1]);
    for (size_t i = half; i < n; i++) mpz_set_ui(values[i], 0);
    n = half;
  }
  mpz_mul_2exp(values[0], values[0], job->shift);
  size_t bound = mpz_sizeinbase(values[0], 10) + 2;
  job->digits = malloc(bound);
  if (!job->digits) {
    job->failure = "out of memory";
  } else if (bound < SPLIT_DIGITS) {
    mpz_get_str(job->digits, 10, values[0]);
    job->length = strlen(job->digits);
  } else {
    to_decimal_in_halves(job, values[0], bound);
  }
  size_t total = job->count > 0 ? job->count : 1;
  for (size_t i = 0; i < total; i++) mpz_clear(values[i]);
  free(values);
}

static void complete(napi_env env, napi_status status, void *data) {
  Job *job = data;
  napi_value result;
  if (status != napi_ok || job->failure) {
    napi_value message;
    napi_create_string_utf8(env, job->failure ? job->failure : "cancelled", NAPI_AUTO_LENGTH, &message);
    napi_create_error(env, NULL, message, &result);
    napi_reject_deferred(env, job->deferred, result);
  } else {
    napi_create_string_latin1(env, job->digits, job->length, &result);
    napi_resolve_deferred(env, job->deferred, result);
  }
  napi_delete_async_work(env, job->work);
  free_job(job);
}

// decimal(partials: Uint8Array[], shift: number): Promise<string>
static napi_value decimal(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  uint32_t count = 0;
  bool is_array = false;
  uint32_t shift = 0;
  if (argc < 2 || napi_is_array(env, argv[0], &is_array) != napi_ok || !is_array || napi_get_array_length(env, argv[0], &count) != napi_ok ||
      napi_get_value_uint32(env, argv[1], &shift) != napi_ok) {
    napi_throw_type_error(env, NULL, "decimal(partials: Uint8Array[], shift: number)");
    return NULL;
  }
  Job *job = calloc(1, sizeof(Job));
  job->count = count;
  job->shift = shift;
  job->parts = calloc(count > 0 ? count : 1, sizeof(unsigned char *));
  job->lengths = calloc(count > 0 ? count : 1, sizeof(size_t));
  for (uint32_t i = 0; i < count; i++) {
    napi_value element;
    bool typed = false;
    napi_get_element(env, argv[0], i, &element);
    if (napi_is_typedarray(env, element, &typed) != napi_ok || !typed) {
      free_job(job);
      napi_throw_type_error(env, NULL, "decimal: every partial must be a Uint8Array");
      return NULL;
    }
    napi_typedarray_type type;
    size_t length;
    void *bytes;
    napi_get_typedarray_info(env, element, &type, &length, &bytes, NULL, NULL);
    if (type != napi_uint8_array) {
      free_job(job);
      napi_throw_type_error(env, NULL, "decimal: every partial must be a Uint8Array");
      return NULL;
    }
    // A copy: the work runs off the main thread, while JavaScript may drop or move the bytes.
    job->parts[i] = malloc(length > 0 ? length : 1);
    memcpy(job->parts[i], bytes, length);
    job->lengths[i] = length;
  }
  napi_value promise, name;
  napi_create_promise(env, &job->deferred, &promise);
  napi_create_string_utf8(env, "tally-gmp-decimal", NAPI_AUTO_LENGTH, &name);
  napi_create_async_work(env, NULL, name, execute, complete, job, &job->work);
  napi_queue_async_work(env, job->work);
  return promise;
}

static napi_value init(napi_env env, napi_value exports) {
  napi_value fn, version;
  napi_create_function(env, "decimal", NAPI_AUTO_LENGTH, decimal, NULL, &fn);
  napi_set_named_property(env, exports, "decimal", fn);
  napi_create_string_utf8(env, gmp_version, NAPI_AUTO_LENGTH, &version);
  napi_set_named_property(env, exports, "gmpVersion", version);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
