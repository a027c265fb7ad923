/**
 * Untrusted messages: whatever bytes arrive as a task or a result, decoding either returns a
 * validated header or throws TaskRejectedError (nothing else), parses at most MAX_HEADER_BYTES
 * of JSON and copies no body; job ids that reach subjects carry no dots, wildcards or spaces;
 * every kind's map refuses malformed or over-limit specs with TaskRejectedError.
 */
import test from 'ava';
import fc from 'fast-check';
import { MAX_HEADER_BYTES, MAX_TASK_BYTES, decodeResult, decodeTask, encodeEnvelope, isPartialObjectName } from '../shared/nats/envelope.js';
import { TaskRejectedError } from '../shared/errors.js';
import { isJobId, taskSubject, resultSubject, parseTaskSubject } from '../shared/subjects.js';
import { jobKinds } from '../shared/kinds/index.js';
import { PRIMES_MAX_TASK_SPAN } from '../shared/kinds/primes.js';
import { FACTORIAL_MAX_N } from '../shared/kinds/factorial.js';

const encoder = new TextEncoder();

/** Raw envelope bytes: a 4-byte length (honest or not), then a JSON-ish header, then a body. */
function envelope(length: number, header: string, body: Uint8Array = new Uint8Array(0)): Uint8Array {
  const json = encoder.encode(header);
  const out = new Uint8Array(4 + json.length + body.length);
  new DataView(out.buffer).setUint32(0, length >>> 0);
  out.set(json, 4);
  out.set(body, 4 + json.length);
  return out;
}

const jobId = fc.oneof(
  fc.constantFrom('abc-123', 'mwvvb2q4-t31wjl', 'a.b', 'a*', 'a>', 'ab c', '', 'ABC-123', 'x'.repeat(64), '-abc', 'abc\n'),
  fc.string({ maxLength: 70 }),
  fc.stringMatching(/^[a-z0-9][a-z0-9-]{2,62}$/),
);

const anyValue = fc.oneof(fc.anything(), fc.string(), fc.integer(), fc.double(), fc.constant(null), fc.constant(undefined));

const taskHeader = fc.record(
  {
    v: fc.oneof(fc.constant(1), anyValue),
    job: fc.oneof(jobId, anyValue),
    task: fc.oneof(fc.nat(), fc.integer(), fc.double(), anyValue),
    kind: fc.oneof(fc.constantFrom('count', 'sum', 'primes', 'factorial', 'x'.repeat(33), 'Sum', ''), anyValue),
    input: fc.oneof(fc.string({ maxLength: 50 }), fc.constant('i'.repeat(5000)), anyValue),
    spec: fc.oneof(fc.object(), anyValue),
    extra: anyValue,
  },
  { requiredKeys: [] },
);

const resultHeader = fc.record(
  {
    v: fc.oneof(fc.constant(1), anyValue),
    job: fc.oneof(jobId, anyValue),
    task: fc.oneof(fc.nat({ max: 100 }), anyValue),
    worker: fc.oneof(fc.string({ maxLength: 300 }), anyValue),
    ms: fc.oneof(fc.nat(), fc.double(), anyValue),
    error: fc.oneof(fc.string(), fc.constant('e'.repeat(5000)), anyValue),
    object: fc.oneof(fc.constantFrom('abc-123.0.0123abcd', 'abc-123.1.0123abcd', 'other-job.0.0123abcd', 'abc-123.0.0123ABCD', 'abc-123.0.0123abcd.x'), anyValue),
    extra: anyValue,
  },
  { requiredKeys: [] },
);

/** Well-formed headers, so that acceptance is exercised too, with the odd field broken. */
const validTask = fc.record({
  v: fc.constant(1),
  job: fc.stringMatching(/^[a-z0-9][a-z0-9-]{2,62}$/),
  task: fc.nat(),
  kind: fc.constantFrom('count', 'sum', 'primes', 'factorial'),
  input: fc.string({ maxLength: 100 }),
  spec: fc.object({ maxDepth: 2 }),
});
const validResult = fc.nat({ max: 1000 }).chain((task) =>
  fc.record({
    v: fc.constant(1),
    job: fc.constant('abc-123'),
    task: fc.constant(task),
    worker: fc.string({ maxLength: 64 }),
    ms: fc.nat(),
    object: fc.option(fc.oneof(fc.constant(`abc-123.${task}.0123abcd`), fc.string()), { nil: undefined }),
  }),
);

/** Any message: random bytes, honest envelopes of random headers, lying length fields. */
const message = (header: fc.Arbitrary<Record<string, unknown>>) =>
  fc.oneof(
    fc.uint8Array({ maxLength: 512 }),
    fc.tuple(header, fc.uint8Array({ maxLength: 64 })).map(([h, body]) => encodeEnvelope(h as never, body)),
    fc.tuple(fc.nat(), fc.string({ maxLength: 200 }), fc.uint8Array({ maxLength: 32 })).map(([length, json, body]) => envelope(length, json, body)),
    fc.tuple(fc.constantFrom(0xffffffff, MAX_HEADER_BYTES + 1, 2 ** 31), fc.string({ maxLength: 16 })).map(([length, json]) => envelope(length, json)),
  );

/**
 * Runs `fn` while counting what JSON.parse is asked to parse: decoding must never hand it more
 * than MAX_HEADER_BYTES, whatever length the message claims.
 */
function withParseSpy<T>(fn: () => T): { value: T; largest: number } {
  const original = JSON.parse;
  let largest = 0;
  JSON.parse = ((text: string, reviver?: Parameters<typeof JSON.parse>[1]) => {
    largest = Math.max(largest, text.length);
    return original(text, reviver);
  }) as typeof JSON.parse;
  try {
    return { value: fn(), largest };
  } finally {
    JSON.parse = original;
  }
}

/** Decodes `data`; returns the outcome, failing the property on any error but TaskRejectedError. */
function decodeOutcome<T>(decode: (data: Uint8Array) => T, data: Uint8Array): { ok: T } | { rejected: string } {
  try {
    return { ok: decode(data) };
  } catch (error) {
    if (error instanceof TaskRejectedError) return { rejected: error.message };
    throw error;
  }
}

test('decodeTask: any bytes give a validated task or TaskRejectedError, parsing at most 64 KiB, copying no body', (t) => {
  fc.assert(
    fc.property(fc.oneof(message(taskHeader), message(validTask)), (data) => {
      const { value: outcome, largest } = withParseSpy(() => decodeOutcome(decodeTask, data));
      if (largest > MAX_HEADER_BYTES) return false;
      if ('rejected' in outcome) return outcome.rejected.length < 300;
      const { header, body } = outcome.ok;
      return (
        Object.keys(header).every((k) => ['v', 'job', 'task', 'kind', 'input', 'spec'].includes(k)) &&
        header.v === 1 &&
        isJobId(header.job) &&
        Number.isSafeInteger(header.task) &&
        header.task >= 0 &&
        /^[a-z]{1,32}$/.test(header.kind) &&
        typeof header.input === 'string' &&
        header.input.length <= 4096 &&
        typeof header.spec === 'object' &&
        header.spec !== null &&
        !Array.isArray(header.spec) &&
        body.buffer === data.buffer
      );
    }),
    { numRuns: 3000 },
  );
  t.pass();
});

test('decodeResult: any bytes give a validated result or TaskRejectedError; an object name must be its own task\'s', (t) => {
  fc.assert(
    fc.property(fc.oneof(message(resultHeader), message(validResult as fc.Arbitrary<Record<string, unknown>>)), (data) => {
      const { value: outcome, largest } = withParseSpy(() => decodeOutcome(decodeResult, data));
      if (largest > MAX_HEADER_BYTES) return false;
      if ('rejected' in outcome) return true;
      const { header, body } = outcome.ok;
      return (
        Object.keys(header).every((k) => ['v', 'job', 'task', 'worker', 'ms', 'error', 'object'].includes(k)) &&
        isJobId(header.job) &&
        Number.isSafeInteger(header.task) &&
        typeof header.worker === 'string' &&
        header.worker.length <= 256 &&
        Number.isFinite(header.ms) &&
        header.ms >= 0 &&
        (header.error === undefined || (typeof header.error === 'string' && header.error.length <= 4096)) &&
        (header.object === undefined || (isPartialObjectName(header.object, header.job, header.task) && body.length === 0)) &&
        body.buffer === data.buffer
      );
    }),
    { numRuns: 3000 },
  );
  t.pass();
});

test('oversized messages and lying length fields are refused before any parsing', (t) => {
  const huge = new Uint8Array(MAX_TASK_BYTES + MAX_HEADER_BYTES + 1);
  const { value, largest } = withParseSpy(() => decodeOutcome(decodeTask, huge));
  t.true('rejected' in value && /exceeds the limit/.test(value.rejected));
  t.is(largest, 0);
  for (const length of [0xffffffff, MAX_HEADER_BYTES + 1]) {
    const lying = envelope(length, '{"v":1}', new Uint8Array(MAX_HEADER_BYTES + 10));
    const spied = withParseSpy(() => [decodeOutcome(decodeTask, lying), decodeOutcome(decodeResult, lying)]);
    t.true(spied.value.every((o) => 'rejected' in o && /bad header length/.test(o.rejected)));
    t.is(spied.largest, 0);
  }
  // Unknown fields are refused, not carried along.
  const smuggled = encodeEnvelope({ v: 1, job: 'abc-123', task: 0, kind: 'sum', input: 'x', spec: {}, __proto__x: 1 } as never);
  t.throws(() => decodeTask(smuggled), { instanceOf: TaskRejectedError, message: /unknown task header field "__proto__x"/ });
});

test('a job id that reaches a subject cannot inject tokens, wildcards or spaces', (t) => {
  fc.assert(
    fc.property(jobId, fc.nat(), (id, task) => {
      if (!isJobId(id)) return true;
      if (/[.*> \t\r\n]/.test(id) || id.length > 63) return false;
      for (const subject of [taskSubject(id, task), resultSubject(id, task)]) {
        if (subject.split('.').length !== 4) return false;
        const parsed = parseTaskSubject(subject);
        if (parsed?.job !== id || parsed.task !== task) return false;
      }
      return true;
    }),
    { numRuns: 2000 },
  );
  for (const bad of ['a.b', 'ab*', 'ab>', 'a b', 'abc\n', 'ABC-1', '', 'ab']) t.false(isJobId(bad), JSON.stringify(bad));
});

test("every kind's map refuses malformed specs with TaskRejectedError and nothing else", async (t) => {
  const body = encoder.encode('some words here');
  await fc.assert(
    fc.asyncProperty(fc.constantFrom(...Object.values(jobKinds)), fc.oneof(fc.anything(), fc.object(), fc.dictionary(fc.constantFrom('from', 'to', 'n', 'lo', 'hi', 'file', 'offset', 'x'), fc.anything())), async (kind, spec) => {
      try {
        // A spec that happens to be valid may run, but only a small one can be generated here.
        await kind.map(spec, body, { working: () => undefined });
        return true;
      } catch (error) {
        return error instanceof TaskRejectedError;
      }
    }),
    { numRuns: 1500 },
  );
  t.pass();
});

test('worker-side limits: over-limit specs are refused at once, with a clear reason', async (t) => {
  const map = (kind: string, spec: unknown) => Promise.resolve().then(() => jobKinds[kind]!.map(spec, new Uint8Array(0), { working: () => undefined }));
  const span = PRIMES_MAX_TASK_SPAN;
  await t.throwsAsync(map('primes', { from: '1', to: String(span + 1n) }), { instanceOf: TaskRejectedError, message: /integers exceed the per-task limit/ });
  await t.throwsAsync(map('primes', { from: '0', to: '1000000000000000000' }), { instanceOf: TaskRejectedError, message: /above the limit/ });
  await t.throwsAsync(map('primes', { from: '1', to: '10', extra: true }), { instanceOf: TaskRejectedError, message: /unknown spec field "extra"/ });
  await t.throwsAsync(map('sum', { from: '1', to: '9'.repeat(20_000) }), { instanceOf: TaskRejectedError, message: /decimal integer string/ });
  await t.throwsAsync(map('sum', { from: '1', to: '2', x: 1 }), { instanceOf: TaskRejectedError, message: /unknown spec field/ });
  await t.throwsAsync(map('factorial', { n: FACTORIAL_MAX_N + 1, lo: 1, hi: 2 }), { instanceOf: TaskRejectedError, message: /above the limit/ });
  await t.throwsAsync(map('factorial', { n: 10, lo: 1, hi: 11 }), { instanceOf: TaskRejectedError, message: /not a sub-range/ });
  await t.throwsAsync(map('count', { file: 0, offset: 0, tokenizer: 'unicode', caseSensitive: false, maxWordBytes: 1e12, continuesWord: false, endsInsideWord: false, wordCounted: false }), {
    instanceOf: TaskRejectedError,
    message: /maxWordBytes/,
  });
  // One past the limit (0..span holds span + 1 integers) is refused before any sieving.
  const started = performance.now();
  await t.throwsAsync(map('primes', { from: '0', to: String(span) }), { instanceOf: TaskRejectedError });
  t.true(performance.now() - started < 1000, 'refusal is immediate');
});
