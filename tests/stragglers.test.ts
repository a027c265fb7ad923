/**
 * Stragglers and retries, with real processes and real signals (the MapReduce paper's backup
 * tasks, §3.6): a worker frozen by SIGSTOP mid-job, a worker ten times slower than the others,
 * a backup and its original finishing at the same moment, a task that fails twice before it
 * succeeds. Every result is compared with the reference counter over the same files.
 *
 * The ack wait is 60 s here: a job that waited for its frozen worker's task to come back would
 * outlast the test's timeout, so finishing at all proves the backup did the work.
 */
import test, { type ExecutionContext } from 'ava';
import { execFileSync } from 'node:child_process';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { jetstreamManager } from '@nats-io/jetstream';
import type { JobFeed } from '../shared/job-feed.js';
import { JOB_FEED_SUBJECTS, RESULT_STREAM, jobResultSubjects } from '../shared/subjects.js';
import { referenceCount } from './helpers/reference-counter.js';
import { cleanEnv, collect, runTally, spawnTally, startTestServer, startWorkers, tempDir, type RunResult, type TestServer, type WorkerFleet } from './helpers/tally.js';
import { jsonLines, waitFor } from './helpers/watch.js';

const ACK_WAIT_MS = 60_000;
let server: TestServer;
let corpus: ReturnType<typeof tempDir>;
let nc: NatsConnection;
/** The last feed message of each job. */
const feeds = new Map<string, JobFeed>();
const fleets: WorkerFleet[] = [];

test.before(async () => {
  server = await startTestServer();
  corpus = tempDir('tally-stragglers-');
  nc = await connect({ servers: server.url });
  nc.subscribe(JOB_FEED_SUBJECTS, {
    callback: (error, message) => {
      if (error) return;
      const feed = message.json<JobFeed>();
      feeds.set(feed.job, feed);
    },
  });
});

// A test that failed before stopping its workers must not leave them to take the next test's
// tasks (without its hooks: held tasks never held, failures never injected).
test.afterEach.always(async () => {
  for (const leftover of [...fleets]) await stop(leftover);
});

test.after.always(async () => {
  for (const fleet of fleets) await fleet.stop();
  await nc?.close();
  await server?.stop();
  corpus?.remove();
});

function fleet(processes: number, hooks: Record<string, unknown> = {}, args: string[] = []): WorkerFleet {
  const started = startWorkers(server.url, processes, { TALLY_ACK_WAIT_MS: String(ACK_WAIT_MS), TALLY_TEST_HOOKS: JSON.stringify({ announceMaps: true, ...hooks }) }, args);
  fleets.push(started);
  return started;
}

async function stop(f: WorkerFleet): Promise<void> {
  await f.stop();
  fleets.splice(fleets.indexOf(f), 1);
}

/** `files` files of different words, each of `lines` lines (the first `firstLines`); returns their paths and bytes. */
function writeFiles(name: string, files: number, lines: number, firstLines = lines, padTo = 0): { paths: string[]; texts: Uint8Array[] } {
  const paths: string[] = [];
  const texts: Uint8Array[] = [];
  for (let f = 0; f < files; f++) {
    const text = Array.from({ length: f === 0 ? firstLines : lines }, (_, i) => `the ${name} file ${f} line ${i} word${i % 97} again${(i * 7) % 13}\n`).join('').padEnd(padTo, ' ');
    if (padTo > 0 && text.length !== padTo) throw new Error(`${name}-${f}: ${text.length} bytes, more than ${padTo}`);
    const path = join(corpus.path, `${name}-${f}.txt`);
    writeFileSync(path, text);
    paths.push(path);
    texts.push(Buffer.from(text));
  }
  return { paths, texts };
}

function truthOf(texts: Uint8Array[]) {
  const reference = referenceCount(texts, { tokenizer: 'unicode', caseSensitive: false, maxWordBytes: 1024 });
  return { totalWords: reference.totalWords, counts: reference.counts.slice(0, 20) };
}

/** Checks a finished count: exit 0 and the reference counter's totals; returns it and its job's last feed message. */
async function exactAndDone(t: ExecutionContext, result: RunResult, texts: Uint8Array[]): Promise<{ printed: { job: string; totalWords: number; counts: [string, number][] }; feed: JobFeed }> {
  t.is(result.code, 0, result.stderr);
  const printed = JSON.parse(result.stdout) as { job: string; totalWords: number; counts: [string, number][] };
  t.deepEqual({ totalWords: printed.totalWords, counts: printed.counts }, truthOf(texts));
  await waitFor(() => feeds.get(printed.job)?.status === 'done', 'the job feed to say done');
  return { printed, feed: feeds.get(printed.job)! };
}

function countArgs(paths: string[], extra: string[] = []): string[] {
  return ['count', ...paths, '--server', server.url, '--chunk-size', '16K', '--reducers', '2', '--format', 'json', '--top', '20', '--no-progress', ...extra];
}

/**
 * A count over 3 files of `name` whose first, small file is one task that the workers' test hook
 * holds while the gate file exists (a copy of it too); `end()` opens the gate and cleans up.
 */
function heldJob(name: string, extraArgs: string[] = []) {
  const gate = join(corpus.path, `${name}-gate`);
  writeFileSync(gate, '');
  const workers = fleet(2, { holdWhenInputIncludes: `${name}-0.txt`, holdWhileFileExists: gate });
  const { paths, texts } = writeFiles(name, 3, 1000, 50);
  const finished = collect(spawnTally(countArgs(paths, extraArgs), { env: cleanEnv() }), Date.now(), 50_000);
  const end = async () => {
    rmSync(gate, { force: true });
    await finished;
    await stop(workers);
  };
  return { gate, workers, texts, finished, end };
}

/** The worker processes a `tally worker` supervisor forked (none yet: []). */
function pidsOf(parent: number): number[] {
  try {
    return execFileSync('pgrep', ['-P', String(parent)], { encoding: 'utf8' }).trim().split('\n').filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

test.serial('a worker frozen by SIGSTOP mid-job: its task is backed up and the job ends without waiting out the ack wait; thawed after the job, its late result changes nothing', async (t) => {
  // The worker that takes frozen-0.txt's task holds it 3 s (its start reported, the task in
  // hand), and is frozen meanwhile; a map of a few ms could end before a signal lands.
  const workers = fleet(2, { holdWhenInputIncludes: 'frozen-0.txt', holdMs: 3000 });
  await waitFor(() => pidsOf(workers.child.pid!).length === 2, 'two worker processes');
  const { paths, texts } = writeFiles('frozen', 12, 600);
  const run = spawnTally(countArgs(paths), { env: cleanEnv() });
  const finished = collect(run, Date.now(), 50_000);
  await waitFor(() => jsonLines(workers.stderr()).some((line) => line.hook === 'hold'), 'the task to be in hand');
  const frozen = Number(jsonLines(workers.stderr()).find((line) => line.hook === 'hold')!.pid);
  process.kill(frozen, 'SIGSTOP');
  try {
    const result = await finished;
    const { printed, feed } = await exactAndDone(t, result, texts);
    t.true(feed.backedUp.count >= 1, 'a backup was made');
    t.true(feed.backedUp.won >= 1, "a backup's result was the one folded");
    t.true(feed.backedUp.recent.some((event) => event.worker.includes(`:${frozen}`)), `the backed-up task was the frozen worker's (${JSON.stringify(feed.backedUp.recent)})`);
    const record = JSON.parse((await runTally(['jobs', printed.job, '--server', server.url, '--format', 'json'])).stdout) as { incidents?: Array<{ outcomes: string[]; events: Array<{ what: string; worker?: string }> }> };
    t.true(
      (record.incidents ?? []).some((incident) => incident.outcomes.includes('backed-up') && incident.events.some((event) => event.what === 'backed up' && event.worker?.endsWith(`:${frozen}`))),
      `the job's record names the backed-up task and its straggler: ${JSON.stringify(record.incidents)}`,
    );
    const stored = await runTally(['result', printed.job, '--server', server.url, '--format', 'json', '--top', '20']);

    // Thawed: it finishes (or drops) its task, and the job's result stays as it was.
    process.kill(frozen, 'SIGCONT');
    await waitFor(async () => {
      const listed = JSON.parse((await runTally(['workers', '--server', server.url, '--format', 'json'])).stdout) as Array<{ pid: number; busy: boolean }>;
      return listed.some((w) => w.pid === frozen && !w.busy);
    }, 'the thawed worker to be idle again');
    const after = await runTally(['result', printed.job, '--server', server.url, '--format', 'json', '--top', '20']);
    t.is(after.stdout, stored.stdout);
    const info = await (await jetstreamManager(nc)).streams.info(RESULT_STREAM, { subjects_filter: jobResultSubjects(printed.job) });
    t.deepEqual(info.state.subjects ?? {}, {}, 'no late result was left in the results stream');
  } finally {
    try {
      process.kill(frozen, 'SIGCONT');
    } catch {
      // gone already
    }
    await finished;
    await stop(workers);
  }
});

test.serial('a worker ten times slower than the others: its task is backed up, the slow copy is dropped unfinished, the count is exact', async (t) => {
  // Tasks here take ~10-30 ms; the slow process busy-waits 5 s before each: on a loaded machine
  // (a CI run's test files in parallel on 2 cores) a 2 s wait once ended before the fast worker
  // had done the rest of the job, and the slow copy's result was the one folded.
  const fast = fleet(1);
  const slow = fleet(1, { busyMs: 5000 }, ['--log-level', 'debug']);
  await waitFor(() => pidsOf(fast.child.pid!).length === 1 && pidsOf(slow.child.pid!).length === 1, 'both worker processes');
  const slowPid = pidsOf(slow.child.pid!)[0]!;
  const { paths, texts } = writeFiles('slow', 8, 600);
  const result = await runTally(countArgs(paths), { env: cleanEnv(), timeoutMs: 50_000 });
  const { printed, feed } = await exactAndDone(t, result, texts);
  t.true(feed.backedUp.count >= 1, 'a backup was made');
  t.true(feed.backedUp.recent.every((event) => event.worker === `${event.worker.split(':')[0]}:${slowPid}` || event.worker === ''), `only the slow worker's tasks were backed up: ${JSON.stringify(feed.backedUp.recent)}`);
  // Every task was folded from the fast worker; the slow copy, superseded, was dropped without
  // publishing a result (a worker counts a task done once its result is stored or refused).
  t.deepEqual(
    feed.workers.map((share) => share.worker.split(':').pop()),
    [String(pidsOf(fast.child.pid!)[0])],
  );
  let slowStats: { tasksDone: number; busy: boolean } | undefined;
  await waitFor(async () => {
    const listed = JSON.parse((await runTally(['workers', '--server', server.url, '--format', 'json'])).stdout) as Array<{ pid: number; busy: boolean; tasksDone: number }>;
    slowStats = listed.find((w) => w.pid === slowPid);
    return slowStats !== undefined && !slowStats.busy;
  }, 'the slow worker to be idle again');
  t.is(slowStats!.tasksDone, 0, 'the slow worker delivered nothing');
  // It heard that another copy's result was in (before it heard that the job ended).
  t.true(jsonLines(slow.stderr()).some((line) => line.msg === "dropping a task: another copy's result is in"), 'the slow copy was dropped as superseded');
  await stop(fast);
  await stop(slow);
});

test.serial('a backup and its original finishing at the same moment: one result is folded, the other refused; the count is exact', async (t) => {
  // Both copies of the held task wait for the gate; the test opens it once both are held.
  const { gate, workers, texts, finished, end } = heldJob('held');
  try {
    const holders = () => {
      const holds = jsonLines(workers.stderr()).filter((line) => line.hook === 'hold');
      return new Set(holds.filter((line) => line.input === holds[0]?.input).map((line) => line.pid)).size;
    };
    await waitFor(() => holders() === 2, 'both copies of the task to be held', 40_000);
    rmSync(gate);
    const result = await finished;
    const { printed, feed } = await exactAndDone(t, result, texts);
    t.is(feed.backedUp.count, 1);
    t.is(feed.workers.reduce((tasks, share) => tasks + share.tasks, 0), feed.tasksTotal! - feed.partitions, 'each map task folded once');
  } finally {
    await end();
  }
});

test.serial('--no-backup-tasks: a held task is not backed up', async (t) => {
  const { gate, workers, texts, finished, end } = heldJob('nobackup', ['--no-backup-tasks']);
  try {
    await waitFor(() => jsonLines(workers.stderr()).some((line) => line.hook === 'hold'), 'the task to be held');
    // Three times the 1 s floor after every other task is done: no copy was made.
    await waitFor(() => [...feeds.values()].some((feed) => feed.status === 'running' && feed.tasksTotal !== null && feed.tasksDone === feed.tasksTotal - feed.partitions - 1), 'the other tasks to be done');
    await new Promise((resolve) => setTimeout(resolve, 3000));
    t.is(jsonLines(workers.stderr()).filter((line) => line.hook === 'hold').length, 1, 'held once, never copied');
    rmSync(gate);
    const result = await finished;
    t.is(result.code, 0, result.stderr);
    const printed = JSON.parse(result.stdout) as { job: string; totalWords: number; counts: [string, number][] };
    t.deepEqual({ totalWords: printed.totalWords, counts: printed.counts }, truthOf(texts));
    t.is(feeds.get(printed.job)?.backedUp.count, 0);
  } finally {
    await end();
  }
});

test.serial('a task that fails twice, then succeeds: retried after 1 s, then after 2 s (backoff), and counted once', async (t) => {
  const workers = fleet(2, { failWhenInputIncludes: 'flaky-1.txt', failDeliveries: 2 });
  const { paths, texts } = writeFiles('flaky', 3, 300);
  const result = await runTally(countArgs(paths, ['--chunk-size', '1M']), { env: cleanEnv(), timeoutMs: 50_000 });
  const { printed, feed } = await exactAndDone(t, result, texts);
  const retries = feed.retried.recent;
  t.deepEqual(
    retries.map((event) => [event.deliveries, /flaky-1\.txt/.test(event.input)]),
    [
      [1, true],
      [2, true],
    ],
  );
  const redelivered = feed.redelivered.recent;
  t.is(redelivered.length, 1);
  t.is(redelivered[0]!.deliveries, 3);
  // The delays between deliveries grow: 1 s after the first failure, 2 s after the second.
  t.true(retries[1]!.at - retries[0]!.at >= 900, `second delivery ${retries[1]!.at - retries[0]!.at} ms after the first failed`);
  t.true(redelivered[0]!.at - retries[1]!.at >= 1900, `third delivery done ${redelivered[0]!.at - retries[1]!.at} ms after the second failed`);

  // The job's dead-letter record keeps the story: each delivery, its worker and its error.
  const shown = await runTally(['jobs', printed.job, '--server', server.url, '--format', 'json']);
  t.is(shown.code, 0, shown.stderr);
  const incidents = (JSON.parse(shown.stdout) as { incidents: Array<{ task: number; input: string; outcomes: string[]; events: Array<{ what: string; delivery?: number; worker?: string; error?: string }> }> }).incidents;
  t.is(incidents.length, 1);
  t.regex(incidents[0]!.input, /flaky-1\.txt/);
  t.deepEqual(incidents[0]!.outcomes, ['retried', 'redelivered']);
  t.deepEqual(
    incidents[0]!.events.map((event) => [event.what, event.delivery, /^[^:]+:\d+$/.test(event.worker ?? ''), event.error?.replace(/ on .*/, '')]),
    [
      ['delivery failed', 1, true, 'test hook: injected failure of delivery 1'],
      ['delivery failed', 2, true, 'test hook: injected failure of delivery 2'],
      ['done', 3, true, undefined],
    ],
  );
  const table = await runTally(['jobs', printed.job, '--server', server.url]);
  t.regex(table.stdout, new RegExp(`task ${incidents[0]!.task}  .*flaky-1\\.txt.*  retried, redelivered\n`));
  t.regex(table.stdout, /delivery failed \(delivery 2\) worker [^:]+:\d+: test hook: injected failure of delivery 2/);
  await stop(workers);
});

test.serial('skip and backup together across tally resume: a poison file skipped, a frozen worker backed up, the killed coordinator resumed; exact for the rest', async (t) => {
  const gate = join(corpus.path, 'gate3');
  writeFileSync(gate, '');
  const workers = fleet(2, { throwWhenInputIncludes: 'mixed-poison', holdWhenInputIncludes: 'mixed-0.txt', holdWhileFileExists: gate });
  await waitFor(() => pidsOf(workers.child.pid!).length === 2, 'two worker processes');
  // Every file exactly one chunk, so each is one task (the first held, the poison one alone).
  const { paths, texts } = writeFiles('mixed', 6, 300, 300, 16 * 1024);
  const poison = join(corpus.path, 'mixed-poison.txt');
  writeFileSync(poison, 'this file makes its task throw on every delivery\n'.padEnd(16 * 1024, ' '));
  const run = spawnTally(countArgs([...paths, poison], ['--chunk-size', '16K', '--skip-failed', '1']), { env: cleanEnv() });
  const first = collect(run, Date.now(), 50_000);
  let frozen = 0;
  try {
    await waitFor(() => jsonLines(workers.stderr()).some((line) => line.hook === 'hold'), 'the small file to be held');
    frozen = Number(jsonLines(workers.stderr()).find((line) => line.hook === 'hold')!.pid);
    process.kill(frozen, 'SIGSTOP');
    // Frozen with the task in hand: a copy of it is not held.
    rmSync(gate);
    // The coordinator dies once it has folded some results.
    await waitFor(() => [...feeds.values()].some((feed) => feed.status === 'running' && feed.tasksDone >= 3), 'some results folded');
    const job = [...feeds.values()].find((feed) => feed.status === 'running')!.job;
    run.kill('SIGKILL');
    await first;
    const resumed = await runTally(['resume', job, '--server', server.url, '--format', 'json', '--top', '20', '--no-progress'], { env: cleanEnv(), timeoutMs: 50_000 });
    t.is(resumed.code, 0, resumed.stderr);
    const result = JSON.parse(resumed.stdout) as { job: string; totalWords: number; counts: [string, number][]; skipped?: Array<{ input: string }> };
    t.is(result.job, job);
    t.deepEqual({ totalWords: result.totalWords, counts: result.counts }, truthOf(texts), 'exact for every file but the poison one');
    t.deepEqual(result.skipped?.map((s) => /mixed-poison\.txt/.test(s.input)), [true]);
    const record = JSON.parse((await runTally(['jobs', job, '--server', server.url, '--format', 'json'])).stdout) as { status: string; skipped?: number; incidents?: Array<{ outcomes: string[] }> };
    t.is(record.status, 'done');
    t.is(record.skipped, 1);
    const outcomes = (record.incidents ?? []).flatMap((incident) => incident.outcomes);
    t.true(outcomes.includes('skipped') && outcomes.includes('backed-up'), `skipped and backed up: ${JSON.stringify(record.incidents)}`);
  } finally {
    if (frozen) process.kill(frozen, 'SIGCONT');
    rmSync(gate, { force: true });
    await first;
    await stop(workers);
  }
});
