/**
 * `--skip-failed N` (skipping bad records, the MapReduce paper's §4.6), with a real nats-server
 * and real worker processes whose test hooks make some tasks fail on every delivery: files whose
 * name holds "poison" throw; in number ranges, `range 101..200` throws (reported by its worker)
 * and `range 201..300` kills its process (found by the server's max-deliveries advisory). A job
 * with at most N such tasks finishes, its result lists exactly what was left out and its totals
 * are exact for the rest; one more fails the job naming the input.
 * The ack wait is shortened to 2 s so that the crashing task's deliveries come quickly.
 */
import test from 'ava';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { cleanEnv, runTally, startTestServer, startWorkers, tempDir, type TestServer, type WorkerFleet } from './helpers/tally.js';
import { referenceNgrams, referenceWhitespaceCount } from './helpers/reference-counter.js';
import { MAX_SKIPPED_TASKS, decodeTask, encodeEnvelope, type TaskHeader } from '../shared/nats/envelope.js';
import { TaskRejectedError, UsageError } from '../shared/errors.js';
import { parseSkipFailed } from '../coordinator/skipped-tasks.js';
import { renderJobs } from '../coordinator/commands/jobs.js';
import type { JobRecord } from '../coordinator/job-store.js';

const HOOKS = JSON.stringify({ throwWhenInputIncludes: 'poison', failWhenInputIncludes: 'range 101..200', failDeliveries: 99, crashWhenInputIncludes: 'range 201..300' });
const env = cleanEnv({ TALLY_ACK_WAIT_MS: '2000', TALLY_TEST_HOOKS: HOOKS });
let server: TestServer;
let fleet: WorkerFleet;
let corpus: { path: string; remove(): void };
const good: string[] = [];
const poison: string[] = [];

test.before(async () => {
  server = await startTestServer();
  fleet = startWorkers(server.url, 2, env);
  corpus = tempDir('tally-skip-');
  for (let f = 0; f < 5; f++) {
    const words: string[] = [];
    // Words shared between files and words of one file, so that the merged table is not trivial.
    for (let i = 0; i < 250 + f * 29; i++) words.push(i % 3 === 0 ? `file${f}word${i % 11}` : `shared${(i * (f + 1)) % 23}`);
    const path = join(corpus.path, `good-${f}.txt`);
    writeFileSync(path, padded(words.join(i3(f))));
    good.push(path);
  }
  for (const name of ['a', 'b', 'c']) {
    const path = join(corpus.path, `poison-${name}.txt`);
    // Counted, these words would show: they must not be in any result.
    writeFileSync(path, padded(`never counted ${name} shared1 shared2`));
    poison.push(path);
  }
});

/**
 * Count packs small files into one task up to the chunk size: files of exactly CHUNK bytes are
 * each one task of their own, so that a poison file's task holds nothing else.
 */
const CHUNK = 4096;

function padded(text: string): string {
  if (text.length >= CHUNK) throw new Error('test text too long');
  return text + ' '.repeat(CHUNK - 1 - text.length) + '\n';
}

/** Separators that vary by file: the whitespace tokenizer must cut them all. */
function i3(f: number): string {
  return [' ', '\n', '\t', '  ', ' \n'][f]!;
}

test.after.always(async () => {
  await fleet?.stop();
  await server?.stop();
  corpus?.remove();
});

function tally(args: string[]) {
  return runTally([...args, '--server', server.url, '--no-progress'], { env });
}

interface JobRecordJson {
  id: string;
  status: string;
  skipped?: number;
  error: string | null;
}

async function recordOf(job: string): Promise<JobRecordJson | undefined> {
  const jobs = await tally(['jobs', '--format', 'json', '--limit', '100']);
  return (JSON.parse(jobs.stdout) as JobRecordJson[]).find((r) => r.id === job);
}

test('three poison files with --skip-failed 2: the job fails naming an input and saying two were skipped before it', async (t) => {
  const run = await tally(['count', ...good, ...poison, '--skip-failed', '2', '--format', 'json', '--tokenizer', 'whitespace', '--chunk-size', String(CHUNK)]);
  t.is(run.code, 1, run.stderr);
  t.is(run.stdout, '');
  t.regex(run.stderr, /poison-[abc]\.txt bytes 0-\d+/);
  t.regex(run.stderr, /2 failed tasks were skipped before it \(--skip-failed allows 2\)/);
});

test('two poison files with --skip-failed 2 and two reducers: done, both inputs listed, totals exact for the other files', async (t) => {
  const inputs = [...good.slice(0, 2), poison[0]!, ...good.slice(2), poison[1]!];
  const run = await tally(['count', ...inputs, '--skip-failed', '2', '--reducers', '2', '--format', 'json', '--top', '0', '--tokenizer', 'whitespace', '--chunk-size', String(CHUNK)]);
  t.is(run.code, 0, run.stderr);
  // (A reducer waiting for the shares of a skipped task would wait 15 s for them, fail, and
  // after max_deliver fail the job: the exit code above.)
  const result = JSON.parse(run.stdout);
  const reference = referenceWhitespaceCount(good.map((path) => readFileSync(path)));
  t.is(result.totalWords, reference.totalWords);
  t.deepEqual(result.counts, reference.counts);
  t.is(result.bytes, good.reduce((sum, path) => sum + readFileSync(path).length, 0));
  t.is(result.tasks, 7);
  const skipped = result.skipped as Array<{ task: number; input: string; error: string }>;
  t.deepEqual(
    skipped.map((s) => s.input).sort(),
    poison.slice(0, 2).map((path) => `${path} bytes 0-${readFileSync(path).length - 1}`),
  );
  t.deepEqual(skipped.map((s) => s.task).sort(), [2, 6]);
  for (const s of skipped) t.regex(s.error, /injected failure/);
  // The JSON on stdout is the result; the note goes to stderr.
  t.regex(run.stderr, /^tally: note: 2 tasks skipped \(their inputs were not counted; the totals exclude them\): .*poison-a\.txt bytes 0-\d+ \(.*injected failure/m);

  const record = await recordOf(result.job);
  t.is(record?.status, 'done');
  t.is(record?.skipped, 2);
  const table = await tally(['jobs']);
  t.regex(table.stdout, new RegExp(`${result.job}.*done, 2 tasks skipped`));
  // Printed again as a table: the note follows the totals on stdout.
  const printed = await tally(['result', result.job, '--top', '3']);
  t.is(printed.code, 0, printed.stderr);
  const lines = printed.stdout.trimEnd().split('\n');
  t.regex(lines.at(-2)!, new RegExp(`^${reference.totalWords} words, .* · 7 files, .* · job ${result.job}$`));
  t.regex(lines.at(-1)!, /^note: 2 tasks skipped \(their inputs were not counted; the totals exclude them\): /);
});

test('a fraction: --skip-failed 0.3 of 6 tasks allows one; the second poison file fails the job', async (t) => {
  const run = await tally(['count', ...good.slice(0, 4), poison[0]!, poison[2]!, '--skip-failed', '0.3', '--format', 'json', '--chunk-size', String(CHUNK)]);
  t.is(run.code, 1, run.stderr);
  t.regex(run.stderr, /poison-[ac]\.txt bytes 0-\d+.*1 failed task was skipped before it \(--skip-failed allows 1\)/);
});

test.serial('a sum of 10,000 tasks sent in batches, one range throwing and one killing its process: each skipped alone, the sum exact for the rest', async (t) => {
  // A batch whose other tasks never ran again would leave the job waiting for them.
  const run = await runTally(['sum', '1', '1e6', '--tasks', '10000', '--skip-failed', '2', '--format', 'json', '--server', server.url, '--no-progress'], { env, timeoutMs: 90_000 });
  t.is(run.code, 0, run.stderr);
  const result = JSON.parse(run.stdout);
  const gauss = (lo: bigint, hi: bigint) => ((lo + hi) * (hi - lo + 1n)) / 2n;
  t.is(result.sum, String(gauss(1n, 1_000_000n) - gauss(101n, 200n) - gauss(201n, 300n)));
  const skipped = (result.skipped as Array<{ task: number; input: string; error: string }>).sort((a, b) => a.task - b.task);
  t.deepEqual(
    skipped.map(({ task, input }) => ({ task, input })),
    [
      { task: 1, input: 'range 101..200' },
      { task: 2, input: 'range 201..300' },
    ],
  );
  t.regex(skipped[0]!.error, /injected failure/);
  t.regex(skipped[1]!.error, /delivered 5 times and never completed/);
  const record = await recordOf(result.job);
  t.is(record?.status, 'done');
  t.is(record?.skipped, 2);
});

test('--skip-failed is refused for factorial and for values that are not a count or a fraction: one line, exit 2', async (t) => {
  for (const args of [
    ['factorial', '10', '--skip-failed', '1'],
    ['sum', '1', '10', '--skip-failed', 'two'],
    ['sum', '1', '10', '--skip-failed', '150%'],
    ['count', good[0]!, '--skip-failed', '-1'],
  ]) {
    const run = await tally(args);
    t.is(run.code, 2, `${args.join(' ')}: ${run.stderr}`);
    t.is(run.stderr.trimEnd().split('\n').length, 1, run.stderr);
    t.regex(run.stderr, /^tally: .*(--skip-failed|option)/);
  }
  const factorial = await tally(['factorial', '10', '--skip-failed', '1']);
  t.is(factorial.stderr, 'tally: --skip-failed: does not apply to factorial jobs: a product with a missing factor is meaningless\n');
});

test('--skip-failed values: a whole number is tasks, a point or a percent sign makes a fraction of them', (t) => {
  t.deepEqual(parseSkipFailed('2'), { tasks: 2 });
  t.deepEqual(parseSkipFailed('0'), { tasks: 0 });
  t.deepEqual(parseSkipFailed('1_000'), { tasks: 1000 });
  t.deepEqual(parseSkipFailed('0.01'), { fraction: 0.01 });
  t.deepEqual(parseSkipFailed('.5'), { fraction: 0.5 });
  t.deepEqual(parseSkipFailed('1%'), { fraction: 0.01 });
  t.deepEqual(parseSkipFailed('2.5%'), { fraction: 0.025 });
  t.deepEqual(parseSkipFailed('100%'), { fraction: 1 });
  for (const bad of ['', 'two', '-1', '1e3', '1.5', '101%', '%', String(MAX_SKIPPED_TASKS + 1), '1 %x']) {
    t.throws(() => parseSkipFailed(bad), { instanceOf: UsageError, message: /^--skip-failed: / }, bad);
  }
});

test("a reduce order's skipped tasks are checked by the worker: ascending ids below the task count, at most the limit", (t) => {
  const order = (skipped: unknown) => {
    const header = { v: 1, job: 'mwvup2gg-tp26q0', task: 10, kind: 'count', input: 'partition 1 of 2', spec: { top: 20 }, reduce: { partition: 0, partitions: 2, tasks: 10, skipped } };
    return encodeEnvelope(header as unknown as TaskHeader);
  };
  t.deepEqual(decodeTask(order([0, 3, 9])).header.reduce?.skipped, [0, 3, 9]);
  t.is(decodeTask(order(undefined)).header.reduce?.skipped, undefined);
  for (const bad of [[], [3, 3], [4, 2], [10], [-1], [1.5], ['1'], 'all', Array.from({ length: MAX_SKIPPED_TASKS + 1 }, (_, i) => i)]) {
    t.throws(() => decodeTask(order(bad)), { instanceOf: TaskRejectedError }, JSON.stringify(bad).slice(0, 40));
  }
});

test('tally jobs: "done, 1 task skipped" from the record\'s count; a record without one (older versions) shows its status alone', (t) => {
  const older: JobRecord = {
    id: 'mwvup2gg-tp26q0',
    kind: 'sum',
    args: { from: '1', to: '10', tasks: null },
    argsSummary: '1 10',
    status: 'done',
    progress: { tasksDone: 1, tasksTotal: 1, weightDone: 10, weightTotal: 10 },
    created: '2026-11-25T08:17:34.000Z',
    finished: '2026-11-25T08:17:35.000Z',
    elapsedMs: 190,
    error: null,
    coordinator: 'host:1',
  };
  const statusOf = (record: JobRecord) => renderJobs([record], 'table').split('\n')[1]!.split(/\s{2,}/)[3];
  t.is(statusOf(older), 'done');
  t.is(statusOf({ ...older, skipped: 1 }), 'done, 1 task skipped');
  t.is(statusOf({ ...older, skipped: 3 }), 'done, 3 tasks skipped');
});

test('ngrams: the middle chunk of a file skipped, no n-gram joins the chunks on either side of it', async (t) => {
  // A server and a fleet of its own: the hook names one byte range of one file.
  const own = await startTestServer();
  t.teardown(() => own.stop());
  const hooks = cleanEnv({ TALLY_TEST_HOOKS: JSON.stringify({ throwWhenInputIncludes: 'gaps.txt bytes 4096-' }) });
  const workers = startWorkers(own.url, 2, hooks);
  t.teardown(async () => void (await workers.stop()));
  // Blocks of exactly one chunk, each ending in a newline: chunks are cut between words.
  const blocks = [`alpha beta gamma ${'one two '.repeat(40)}lastbefore`, `middle words ${'three four '.repeat(30)}never`, `firstafter ${'five six '.repeat(50)}end`].map(padded);
  const gaps = join(corpus.path, 'gaps.txt');
  writeFileSync(gaps, blocks.join(''));
  const run = await runTally(['ngrams', '2', gaps, good[0]!, '--skip-failed', '1', '--reducers', '2', '--format', 'json', '--top', '0', '--tokenizer', 'whitespace', '--chunk-size', String(CHUNK), '--server', own.url, '--no-progress'], { env: hooks });
  t.is(run.code, 0, run.stderr);
  const result = JSON.parse(run.stdout);
  t.deepEqual(
    result.skipped.map((s: { input: string }) => s.input),
    [`${gaps} bytes 4096-8191`],
  );
  // The file read as two files: what comes before the gap and what comes after.
  const settings = { tokenizer: 'whitespace' as const, caseSensitive: false, maxWordBytes: 1024 };
  const reference = referenceNgrams([Buffer.from(blocks[0]!), Buffer.from(blocks[2]!), readFileSync(good[0]!)], settings, 2);
  t.is(result.totalWords, reference.totalWords);
  t.deepEqual(result.counts, reference.counts);
  t.false(result.counts.some(([gram]: [string]) => gram === 'lastbefore firstafter'));
});
