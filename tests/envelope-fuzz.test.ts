/**
 * Untrusted messages: whatever bytes arrive as a task (one, or a batch) or a result, decoding
 * either returns a validated header or throws TaskRejectedError (nothing else), parses at most
 * MAX_HEADER_BYTES of JSON and copies no body; job ids that reach subjects carry no dots,
 * wildcards or spaces; every kind's map refuses malformed or over-limit specs with
 * TaskRejectedError.
 */
import test from 'ava';
import fc from 'fast-check';
import { MAX_TASK_BYTES } from '../shared/limits.js';
import { MAX_HEADER_BYTES, batchEntryJson, decodeResult, decodeTask, decodeTaskBatch, encodeEnvelope, encodeTaskBatch, isPartialObjectName } from '../shared/nats/envelope.js';
import { TaskRejectedError } from '../shared/errors.js';
import { MAX_BATCH_TASKS, isJobId, taskSubject, resultSubject, parseTaskSubject, partialObjectName } from '../shared/subjects.js';
import { loadAllKinds } from '../shared/kinds/index.js';
import { PRIMES_MAX_TASK_SPAN } from '../shared/kinds/primes.js';
import { FACTORIAL_MAX_N } from '../shared/kinds/factorial.js';
import { runKindLocally } from './helpers/run-kind-locally.js';

const jobKinds = Object.fromEntries((await loadAllKinds()).map((kind) => [kind.name, kind]));

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
    object: fc.oneof(fc.constantFrom('abc-123.0.0123abcd', 'abc-123.1.0123abcd', 'other-job.0.0123abcd', 'abc-123.0.0123ABCD', 'abc-123.0.0123abcd.x', 'abc-123.0-1.0123abcd', 'abc-123.1-2.0123abcd'), anyValue),
    count: fc.oneof(fc.integer({ min: -1, max: 3 }), fc.constant(MAX_BATCH_TASKS + 1), anyValue),
    sizes: fc.oneof(fc.array(fc.nat({ max: 40 }), { maxLength: 4 }), fc.array(fc.integer({ min: -2, max: 2 }), { maxLength: 3 }), anyValue),
    failed: fc.oneof(fc.integer({ min: -1, max: 3 }), anyValue),
    extra: anyValue,
  },
  { requiredKeys: [] },
);

/** Batch task headers, honest or not. */
const batchHeader = fc.record(
  {
    v: fc.oneof(fc.constant(1), anyValue),
    job: fc.oneof(jobId, anyValue),
    task: fc.oneof(fc.nat(), fc.constant(Number.MAX_SAFE_INTEGER), anyValue),
    kind: fc.oneof(fc.constantFrom('count', 'sum', 'primes', 'factorial', 'Sum'), anyValue),
    batch: fc.oneof(
      fc.array(fc.record({ input: fc.oneof(fc.string({ maxLength: 20 }), anyValue), spec: fc.oneof(fc.object({ maxDepth: 1 }), anyValue), bytes: fc.oneof(fc.nat({ max: 40 }), anyValue), x: anyValue }, { requiredKeys: [] }), { maxLength: 5 }),
      fc.constant(Array.from({ length: MAX_BATCH_TASKS + 1 }, () => ({ input: 'x', spec: {} }))),
      anyValue,
    ),
    input: anyValue,
    spec: anyValue,
  },
  { requiredKeys: [] },
);

/** Well-formed batches: entries of honest lengths, a body that matches. */
const validBatch = fc
  .tuple(
    fc.stringMatching(/^[a-z0-9][a-z0-9-]{2,62}$/),
    fc.nat({ max: 1e9 }),
    fc.constantFrom('count', 'sum', 'primes', 'factorial'),
    fc.array(fc.tuple(fc.string({ maxLength: 30 }), fc.object({ maxDepth: 2 }), fc.uint8Array({ maxLength: 20 })), { minLength: 2, maxLength: 8 }),
  )
  .map(([job, first, kind, tasks]) => ({
    job,
    first,
    kind,
    tasks,
    data: encodeTaskBatch(job, first, kind, tasks.map(([input, spec, body]) => batchEntryJson(input, spec as never, body.length)), Buffer.concat(tasks.map(([, , body]) => body))),
  }));

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


/** What every decoded task entry must have: a bounded input description and an object spec. */
function hasInputAndSpec(header: { input: unknown; spec: unknown }): boolean {
  return typeof header.input === 'string' && header.input.length <= 4096 && typeof header.spec === 'object' && header.spec !== null && !Array.isArray(header.spec);
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
        hasInputAndSpec(header) &&
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
        Object.keys(header).every((k) => ['v', 'job', 'task', 'worker', 'ms', 'error', 'object', 'count', 'sizes', 'failed'].includes(k)) &&
        isJobId(header.job) &&
        Number.isSafeInteger(header.task) &&
        typeof header.worker === 'string' &&
        header.worker.length <= 256 &&
        Number.isFinite(header.ms) &&
        header.ms >= 0 &&
        (header.error === undefined || (typeof header.error === 'string' && header.error.length <= 4096)) &&
        (header.object === undefined || (isPartialObjectName(header.object, header.job, header.task, header.count ?? 1) && body.length === 0)) &&
        (header.count === undefined
          ? header.sizes === undefined && header.failed === undefined
          : Number.isSafeInteger(header.count) &&
            header.count >= 2 &&
            header.count <= MAX_BATCH_TASKS &&
            (header.error !== undefined
              ? Number.isSafeInteger(header.failed) && header.failed! >= 0 && header.failed! < header.count && header.sizes === undefined
              : header.failed === undefined &&
                Array.isArray(header.sizes) &&
                header.sizes.length === header.count &&
                (header.object !== undefined || header.sizes.reduce((a, b) => a + b, 0) === body.length))) &&
        body.buffer === data.buffer
      );
    }),
    { numRuns: 3000 },
  );
  t.pass();
});

test('decodeTaskBatch: any bytes give a validated batch (or one task) or TaskRejectedError, parsing at most 64 KiB, copying no body', (t) => {
  fc.assert(
    fc.property(fc.oneof(message(taskHeader), message(validTask), message(batchHeader), validBatch.map((b) => b.data)), (data) => {
      const { value: outcome, largest } = withParseSpy(() => decodeOutcome(decodeTaskBatch, data));
      if (largest > MAX_HEADER_BYTES) return false;
      if ('rejected' in outcome) return outcome.rejected.length < 300;
      const { job, first, kind, tasks } = outcome.ok;
      if (!isJobId(job) || !Number.isSafeInteger(first) || first < 0 || !/^[a-z]{1,32}$/.test(kind)) return false;
      if (tasks.length < 1 || tasks.length > MAX_BATCH_TASKS || !Number.isSafeInteger(first + tasks.length - 1)) return false;
      let bytes = 0;
      const ok = tasks.every(({ header, body }, i) => {
        bytes += body.length;
        return (
          header.v === 1 &&
          header.job === job &&
          header.kind === kind &&
          header.task === first + i &&
          hasInputAndSpec(header) &&
          body.buffer === data.buffer
        );
      });
      // The bodies are the whole message body, cut without gaps or overlaps.
      return ok && (tasks.length === 1 || bytes + 4 + new DataView(data.buffer, data.byteOffset).getUint32(0) === data.length);
    }),
    { numRuns: 3000 },
  );
  t.pass();
});

test('a batch round-trips: each task keeps its id, input, spec and body; a single-task decoder refuses it', (t) => {
  fc.assert(
    fc.property(validBatch, ({ job, first, kind, tasks, data }) => {
      const batch = decodeTaskBatch(data);
      if (batch.job !== job || batch.first !== first || batch.kind !== kind || batch.tasks.length !== tasks.length) return false;
      const same = batch.tasks.every(({ header, body }, i) => {
        const [input, spec, bytes] = tasks[i]!;
        return header.task === first + i && header.input === input && JSON.stringify(header.spec) === JSON.stringify(spec) && Buffer.from(body).equals(Buffer.from(bytes));
      });
      return same && 'rejected' in decodeOutcome(decodeTask, data);
    }),
    { numRuns: 500 },
  );
  // Entry lengths that do not add up to the body are refused.
  const entries = [batchEntryJson('a', {}, 2), batchEntryJson('b', {}, 2)];
  t.throws(() => decodeTaskBatch(encodeTaskBatch('abc-123', 0, 'sum', entries, new Uint8Array(5))), { instanceOf: TaskRejectedError, message: /add up/ });
  t.throws(() => decodeTaskBatch(encodeTaskBatch('abc-123', 0, 'sum', entries, new Uint8Array(3))), { instanceOf: TaskRejectedError, message: /length/ });
  t.throws(() => decodeTaskBatch(encodeTaskBatch('abc-123', 0, 'sum', [entries[0]!], new Uint8Array(2))), { instanceOf: TaskRejectedError, message: /2 to 256 tasks/ });
  // One task in the single-task form decodes as a batch of one.
  const single = decodeTaskBatch(encodeEnvelope({ v: 1, job: 'abc-123', task: 7, kind: 'sum', input: 'range 1..2', spec: { from: '1', to: '2' } }, new Uint8Array(0)));
  t.is(single.first, 7);
  t.is(single.tasks.length, 1);
  t.is(single.tasks[0]!.header.input, 'range 1..2');
});

test('positive controls: well-formed tasks and results decode to exactly what was encoded', (t) => {
  // A decoder that refused everything would pass the properties above; not this one.
  fc.assert(
    fc.property(validTask, fc.uint8Array({ maxLength: 64 }), (header, body) => {
      const data = encodeEnvelope(header as never, body);
      const decoded = decodeTask(data);
      return JSON.stringify(decoded.header) === JSON.stringify(header) && Buffer.from(decoded.body).equals(Buffer.from(body));
    }),
    { numRuns: 1000 },
  );
  fc.assert(
    fc.property(fc.nat({ max: 1000 }), fc.string({ maxLength: 64 }), fc.nat(), fc.boolean(), fc.uint8Array({ maxLength: 64 }), (task, worker, ms, viaObject, body) => {
      const header = { v: 1, job: 'abc-123', task, worker, ms, ...(viaObject ? { object: `abc-123.${task}.0123abcd` } : {}) };
      const sent = viaObject ? new Uint8Array(0) : body;
      const decoded = decodeResult(encodeEnvelope(header as never, sent));
      return JSON.stringify(decoded.header) === JSON.stringify(header) && Buffer.from(decoded.body).equals(Buffer.from(sent));
    }),
    { numRuns: 1000 },
  );
  t.pass();
});

test('batch results: sizes must cut the body exactly, a failure names a task of the batch, an object must be the batch\'s own', (t) => {
  const result = (header: Record<string, unknown>, body = new Uint8Array(0)) => encodeEnvelope({ v: 1, job: 'abc-123', task: 10, worker: 'w', ms: 1, ...header } as never, body);
  t.deepEqual(decodeResult(result({ count: 3, sizes: [1, 0, 2] }, new Uint8Array(3))).header.sizes, [1, 0, 2]);
  t.throws(() => decodeResult(result({ count: 3, sizes: [1, 0, 2] }, new Uint8Array(4))), { instanceOf: TaskRejectedError, message: /add up/ });
  t.throws(() => decodeResult(result({ count: 3, sizes: [1, 2] }, new Uint8Array(3))), { instanceOf: TaskRejectedError, message: /sizes/ });
  t.throws(() => decodeResult(result({ count: 1, sizes: [3] }, new Uint8Array(3))), { instanceOf: TaskRejectedError, message: /batch size/ });
  t.throws(() => decodeResult(result({ sizes: [3] }, new Uint8Array(3))), { instanceOf: TaskRejectedError });
  t.is(decodeResult(result({ count: 3, failed: 2, error: 'boom' })).header.failed, 2);
  t.throws(() => decodeResult(result({ count: 3, failed: 3, error: 'boom' })), { instanceOf: TaskRejectedError, message: /failed/ });
  t.throws(() => decodeResult(result({ count: 3, error: 'boom' })), { instanceOf: TaskRejectedError, message: /failed/ });
  t.throws(() => decodeResult(result({ failed: 0, error: 'boom' })), { instanceOf: TaskRejectedError });
  t.is(decodeResult(result({ count: 3, sizes: [1, 0, 2], object: `${partialObjectName('abc-123', 10, 3)}.0123abcd` })).header.object, 'abc-123.10-12.0123abcd');
  for (const object of ['abc-123.10.0123abcd', 'abc-123.10-11.0123abcd', 'abc-123.11-13.0123abcd']) {
    t.throws(() => decodeResult(result({ count: 3, sizes: [1, 0, 2], object })), { instanceOf: TaskRejectedError, message: /object name/ }, object);
  }
});

test('batch subjects carry their extent: first-last, parsed back; anything else is not ours', (t) => {
  fc.assert(
    fc.property(fc.stringMatching(/^[a-z0-9][a-z0-9-]{2,62}$/), fc.nat({ max: 2 ** 40 }), fc.integer({ min: 1, max: MAX_BATCH_TASKS }), (job, task, count) => {
      const subject = taskSubject(job, task, count);
      const parsed = parseTaskSubject(subject);
      return subject.split('.').length === 4 && parsed?.job === job && parsed.task === task && parsed.count === count && parseTaskSubject(resultSubject(job, task, count))?.count === count;
    }),
    { numRuns: 1000 },
  );
  t.is(taskSubject('abc-123', 5, 3), 'tally.task.abc-123.5-7');
  for (const bad of ['tally.task.abc-123.5-5', 'tally.task.abc-123.7-5', 'tally.task.abc-123.05', 'tally.task.abc-123.5-', 'tally.task.abc-123.', `tally.task.abc-123.0-${MAX_BATCH_TASKS}`, 'tally.task.abc-123.1e3', 'tally.task.abc-123.-1']) {
    t.is(parseTaskSubject(bad), undefined, bad);
  }
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
  let refused = 0;
  await fc.assert(
    fc.asyncProperty(fc.constantFrom(...Object.values(jobKinds)), fc.oneof(fc.anything(), fc.object(), fc.dictionary(fc.constantFrom('from', 'to', 'n', 'lo', 'hi', 'file', 'offset', 'x'), fc.anything())), async (kind, spec) => {
      try {
        // A spec that happens to be valid may run, but only a small one can be generated here:
        // the positive controls below check that valid specs map to the right partials.
        await kind.map(spec, body, { working: () => undefined });
        return true;
      } catch (error) {
        refused++;
        return error instanceof TaskRejectedError;
      }
    }),
    { numRuns: 1500 },
  );
  t.true(refused > 1000, `${refused} of 1500 random specs refused: the property exercised refusal`);
  // Hand-made malformed specs, one per kind and one per way of being wrong: each is refused.
  const malformed: Array<[string, unknown]> = [
    ['sum', null],
    ['sum', { from: 1, to: 2 }],
    ['sum', { from: '1' }],
    ['sum', { from: '5', to: '1x' }],
    ['primes', []],
    ['primes', { from: '1', to: 'ten' }],
    ['factorial', { n: -1, lo: 1, hi: 2 }],
    ['factorial', { n: 10, lo: 'a', hi: 2 }],
    ['count', 'words'],
    ['count', { tokenizer: 'klingon', caseSensitive: false, maxWordBytes: 10, chunks: [[0, 0, 0, 0]] }],
  ];
  for (const [name, spec] of malformed) {
    await t.throwsAsync(Promise.resolve().then(() => jobKinds[name]!.map(spec, body, { working: () => undefined })), { instanceOf: TaskRejectedError }, `${name} ${JSON.stringify(spec)}`);
  }
});

/** π(x) for small x by trial division: slow, independent of the kind's sieve. */
function naivePrimeCount(from: number, to: number): number {
  let count = 0;
  for (let n = Math.max(2, from); n <= to; n++) {
    let prime = true;
    for (let d = 2; d * d <= n; d++) if (n % d === 0) { prime = false; break; }
    if (prime) count++;
  }
  return count;
}

test("positive controls: well-formed specs from each number kind's split map without refusal, to the independent answer", async (t) => {
  // A decoder or map that refused everything would pass the property above; not this one.
  await fc.assert(
    fc.asyncProperty(fc.bigInt({ min: -(10n ** 30n), max: 10n ** 30n }), fc.bigInt({ min: 0n, max: 10n ** 6n }), fc.integer({ min: 1, max: 7 }), async (from, span, tasks) => {
      const to = from + span;
      const run = await runKindLocally(jobKinds.sum!, { from: String(from), to: String(to), tasks } as never);
      return run.tasks.length >= 1 && (run.result as { sum: string }).sum === (((from + to) * (to - from + 1n)) / 2n).toString();
    }),
    { numRuns: 200 },
  );
  await fc.assert(
    fc.asyncProperty(fc.integer({ min: 0, max: 3000 }), fc.integer({ min: 0, max: 3000 }), fc.integer({ min: 1, max: 5 }), async (from, span, tasks) => {
      const run = await runKindLocally(jobKinds.primes!, { from: String(from), to: String(from + span), tasks } as never);
      return (run.result as { count: number }).count === naivePrimeCount(from, from + span);
    }),
    { numRuns: 100 },
  );
  await fc.assert(
    fc.asyncProperty(fc.integer({ min: 0, max: 400 }), fc.integer({ min: 1, max: 4 }), async (n, split) => {
      const run = await runKindLocally(jobKinds.factorial!, { numbers: [String(n)], split, outputDir: null } as never);
      let product = 1n;
      for (let k = 2n; k <= BigInt(n); k++) product *= k;
      const [entry] = (run.result as { results: Array<{ digits: number; leading: string }> }).results;
      return entry!.digits === product.toString().length && entry!.leading === product.toString().slice(0, 20);
    }),
    { numRuns: 100 },
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
  await t.throwsAsync(map('count', { tokenizer: 'unicode', caseSensitive: false, maxWordBytes: 1e12, chunks: [[0, 0, 0, 0]] }), {
    instanceOf: TaskRejectedError,
    message: /maxWordBytes/,
  });
  await t.throwsAsync(map('count', { tokenizer: 'unicode', caseSensitive: false, maxWordBytes: 10, ranges: [[0, '/etc/hostname', 2e8, 0, 0, 2e8]] }), {
    instanceOf: TaskRejectedError,
    message: /at most \d+ bytes/,
  });
  await t.throwsAsync(map('count', { tokenizer: 'unicode', caseSensitive: false, maxWordBytes: 10, chunks: Array.from({ length: 513 }, () => [0, 0, 0, 0]) }), {
    instanceOf: TaskRejectedError,
    message: /1 to 512 entries/,
  });
  // One past the limit (0..span holds span + 1 integers) is refused before any sieving.
  const started = performance.now();
  await t.throwsAsync(map('primes', { from: '0', to: String(span) }), { instanceOf: TaskRejectedError });
  t.true(performance.now() - started < 1000, 'refusal is immediate');
});
