/**
 * Tiny tasks travel several to a message (coordinator/job-runner.ts): real nats-server, real
 * `tally worker` processes, the real CLI. Exactly once per task id is checked against Gauss's
 * formula n(n+1)/2 and published values of π(x), with every worker's own count of tasks
 * mapped, with workers killed mid-job and with a killed coordinator resumed; a poison task in a
 * batch (one that throws, one that kills its process) fails its job naming that task's input;
 * small-bodied count tasks agree with the reference counter; batch results that go through the
 * Object Store are exact and leave nothing behind.
 *
 * The ack wait is shortened to 2 s so that lost messages come back quickly.
 */
import test from 'ava';
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { connect, type NatsConnection, type Subscription } from '@nats-io/transport-node';
import { Objm } from '@nats-io/obj';
import { REPO_ROOT, cleanEnv, collect, runTally, spawnTally, startTestServer, startWorkers, tempDir, type TestServer, type WorkerFleet } from './helpers/tally.js';
import { referenceUnicodeCount } from './helpers/reference-counter.js';
import { watchResults } from './helpers/watch.js';

/** Task 700 of `sum 1 100000 --tasks 10000` (ten integers per task). */
const THROWS = 'range 7001..7010';
/** Task 3333 of `sum 100001 200000 --tasks 10000`. */
const CRASHES = 'range 133331..133340';
const env = cleanEnv({ TALLY_ACK_WAIT_MS: '2000', TALLY_TEST_HOOKS: JSON.stringify({ throwWhenInputIncludes: THROWS, crashWhenInputIncludes: CRASHES }) });

let server: TestServer;
let fleet: WorkerFleet;
let watcher: NatsConnection;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const gauss = (a: bigint, b: bigint) => ((a + b) * (b - a + 1n)) / 2n;

test.before(async () => {
  server = await startTestServer();
  fleet = startWorkers(server.url, 2, env);
  watcher = await connect({ servers: server.url });
  await waitForWorkers(server.url, 2);
});

test.after.always(async () => {
  await watcher?.close().catch(() => undefined);
  await fleet?.stop();
  await server?.stop();
});

function tally(args: string[], url = server.url) {
  return runTally([...args, '--server', url], { env });
}

async function workerStats(url = server.url): Promise<Array<{ pid: number; tasksDone: number }>> {
  const run = await tally(['workers', '--format', 'json'], url);
  return run.code === 0 ? JSON.parse(run.stdout) : [];
}

async function waitForWorkers(url: string, n: number): Promise<void> {
  for (let i = 0; i < 100 && (await workerStats(url)).length < n; i++) await sleep(200);
}

/** Counts the task messages published on the server and the tasks they carry, per job. */
function watchTaskMessages(): { messages: Map<string, number>; batches: Map<string, number>; stop(): void } {
  const messages = new Map<string, number>();
  const batches = new Map<string, number>();
  const sub: Subscription = watcher.subscribe('tally.task.>', {
    callback: (_error, message) => {
      const [, , job, label] = message.subject.split('.');
      messages.set(job!, (messages.get(job!) ?? 0) + 1);
      if (label!.includes('-')) batches.set(job!, (batches.get(job!) ?? 0) + 1);
    },
  });
  return { messages, batches, stop: () => sub.unsubscribe() };
}

/** The worker processes forked by a `tally worker` supervisor. */
function childPids(parent: number): number[] {
  try {
    return execFileSync('pgrep', ['-P', String(parent)], { encoding: 'utf8' }).trim().split('\n').filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

test.serial('a batched job folds each task exactly once: sums equal n(n+1)/2, and the workers mapped each task once', async (t) => {
  await waitForWorkers(server.url, 2);
  const before = await workerStats();
  const watch = watchTaskMessages();
  t.teardown(() => watch.stop());
  const run = await tally(['sum', '1', '9999991', '--tasks', '20000', '--format', 'json']);
  t.is(run.code, 0, run.stderr);
  const result = JSON.parse(run.stdout);
  t.is(result.sum, gauss(1n, 9_999_991n).toString());
  t.is(result.tasks, 20000);
  await watcher.flush();
  const messages = watch.messages.get(result.job) ?? 0;
  t.true(messages > 0 && messages <= 20000 / 32, `20000 tasks went in ${messages} messages`);
  t.true((watch.batches.get(result.job) ?? 0) > 0, 'batches were sent');
  // Each worker process counts the tasks it mapped: together, each task once.
  const after = await workerStats();
  const done = (list: Array<{ pid: number; tasksDone: number }>, pids: Set<number>) => list.filter((w) => pids.has(w.pid)).reduce((sum, w) => sum + w.tasksDone, 0);
  const both = new Set(before.map((w) => w.pid).filter((pid) => after.some((w) => w.pid === pid)));
  t.is(both.size, 2, 'the same two worker processes before and after');
  t.is(done(after, both) - done(before, both), 20000);
  t.true(after.every((w) => w.tasksDone > (before.find((b) => b.pid === w.pid)?.tasksDone ?? 0)), 'both processes took batches');
  // Progress counts tasks, not messages.
  const record = JSON.parse((await tally(['jobs', '--format', 'json'])).stdout).find((r: { id: string }) => r.id === result.job);
  t.like(record, { status: 'done', progress: { tasksDone: 20000, tasksTotal: 20000 } });

  const [from, to] = [-(7n * 10n ** 20n), 5n * 10n ** 21n];
  const big = await tally(['sum', from.toString(), to.toString(), '--tasks', '5000', '--format', 'json']);
  t.is(big.code, 0, big.stderr);
  t.is(JSON.parse(big.stdout).sum, gauss(from, to).toString());
});

test.serial('a small job still spreads over both workers (one task per message)', async (t) => {
  const before = await workerStats();
  const watch = watchTaskMessages();
  t.teardown(() => watch.stop());
  const run = await tally(['sum', '1', '1000', '--tasks', '200', '--format', 'json']);
  t.is(run.code, 0, run.stderr);
  const { job, sum } = JSON.parse(run.stdout);
  t.is(sum, '500500');
  await watcher.flush();
  t.is(watch.messages.get(job), 200, 'fewer than 256 tasks: no batching');
  const after = await workerStats();
  t.true(after.every((w) => w.tasksDone > (before.find((b) => b.pid === w.pid)?.tasksDone ?? 0)), `both processes took tasks: ${JSON.stringify({ before, after })}`);
});

test.serial('workers killed with SIGKILL mid-job: a batched job is still exact (pi(2e9), published)', async (t) => {
  const child = spawnTally(['primes', '1', '2e9', '--tasks', '2560', '--format', 'json', '--server', server.url], { env });
  const running = collect(child);
  let kills = 0;
  await sleep(300);
  while (child.exitCode === null && kills < 6) {
    const pids = childPids(fleet.child.pid!);
    if (pids.length > 0) {
      try {
        process.kill(pids[Math.floor(Math.random() * pids.length)]!, 'SIGKILL');
        kills++;
      } catch {
        // it died on its own meanwhile
      }
    }
    await sleep(400);
  }
  const run = await running;
  t.is(run.code, 0, run.stderr);
  t.true(kills >= 2, `only ${kills} kills happened`);
  t.log(`${kills} worker processes killed during the job (${run.ms} ms)`);
  t.is(JSON.parse(run.stdout).count, 98_222_287);
  await waitForWorkers(server.url, 2);
});

test.serial("a batched job with a task that throws fails naming that task's input", async (t) => {
  const watch = watchTaskMessages();
  t.teardown(() => watch.stop());
  const run = await tally(['sum', '1', '100000', '--tasks', '10000', '--format', 'json']);
  t.is(run.code, 1);
  t.is(run.stdout, '');
  t.true(run.stderr.includes(THROWS), run.stderr);
  t.regex(run.stderr, /failed 5 times/);
  // It was in a batch.
  t.true([...watch.batches.values()].some((n) => n > 0));
  const record = JSON.parse((await tally(['jobs', '--format', 'json'])).stdout).find((r: { args: { to?: string } }) => r.args.to === '100000');
  t.is(record.status, 'failed');
  t.true(record.error.includes(THROWS), record.error);
});

test.serial("a batched job with a task that kills its worker fails naming that task's input; it never hangs", async (t) => {
  const run = await tally(['sum', '100001', '200000', '--tasks', '10000', '--format', 'json']);
  t.is(run.code, 1);
  t.true(run.stderr.includes(CRASHES), run.stderr);
  t.regex(run.stderr, /delivered 5 times/);
  t.true(run.ms < 120_000, `took ${run.ms} ms`);
  t.log(`failed after ${run.ms} ms`);
  await waitForWorkers(server.url, 2);
});

test.serial('a killed coordinator of a batched job is finished by tally resume with the published value', async (t) => {
  await waitForWorkers(server.url, 2);
  // Kill the coordinator once results are flowing, before the job can finish.
  let job: string | undefined;
  let results = 0;
  const child = spawnTally(['primes', '1', '2e9', '--tasks', '2560', '--format', 'json', '--server', server.url], { env });
  const running = collect(child);
  const sub = watcher.subscribe('tally.result.>', {
    callback: (_error, message) => {
      job = message.subject.split('.')[2];
      if (++results === 40) child.kill('SIGKILL');
    },
  });
  t.teardown(() => sub.unsubscribe());
  const killed = await running;
  t.is(killed.signal, 'SIGKILL', killed.stderr);
  t.truthy(job);
  const before = JSON.parse((await tally(['jobs', '--format', 'json'])).stdout).find((r: { id: string }) => r.id === job);
  t.is(before.status, 'running', 'the coordinator died mid-job');
  t.true(before.progress.tasksDone < 2560);
  const resumed = await tally(['resume', job!, '--format', 'json']);
  t.is(resumed.code, 0, resumed.stderr);
  const result = JSON.parse(resumed.stdout);
  t.is(result.job, job);
  t.is(result.count, 98_222_287, 'pi(2e9), published');
  t.is(result.tasks, 2560);
});

test.serial('small-bodied count tasks share messages; counts equal the reference counter', async (t) => {
  const dir = tempDir('tally-batch-count-');
  t.teardown(dir.remove);
  const files: string[] = [];
  const text = readFileSync(join(REPO_ROOT, 'node_modules', 'typescript', 'lib', 'ru', 'diagnosticMessages.generated.json'));
  files.push(join(dir.path, 'ru.json'));
  writeFileSync(files[0]!, text.subarray(0, 600_000));
  for (let i = 0; i < 300; i++) {
    const file = join(dir.path, `small-${i}.txt`);
    writeFileSync(file, text.subarray(i * 997, i * 997 + 200 + (i % 7) * 50));
    files.push(file);
  }
  const watch = watchTaskMessages();
  t.teardown(() => watch.stop());
  const run = await tally(['count', dir.path, '--chunk-size', '512', '--top', '0', '--format', 'json']);
  t.is(run.code, 0, run.stderr);
  const result = JSON.parse(run.stdout);
  const reference = referenceUnicodeCount(files.sort().map((f) => readFileSync(f)));
  t.is(result.totalWords, reference.totalWords);
  t.deepEqual(result.counts, reference.counts);
  await watcher.flush();
  const messages = watch.messages.get(result.job) ?? 0;
  t.true(result.tasks > 1000, `${result.tasks} tasks`);
  // Each new file is a pause of the splitter (its reads are asynchronous), which sends the batch
  // at hand: chunks of one file share messages, files rarely do.
  t.true(messages < result.tasks && (watch.batches.get(result.job) ?? 0) > 0, `${result.tasks} tasks went in ${messages} messages`);
  t.log(`${result.tasks} tasks went in ${messages} messages`);
});

test.serial('each task of a batch also stored on its own (differently batched attempts): every task id is folded once, by the coordinator and by the reducers', async (t) => {
  // A server and fleet of their own whose workers store each batch's tasks twice: one by one
  // (results and shares), then as the batch.
  const own = await startTestServer();
  const twiceFleet = startWorkers(own.url, 2, { ...env, TALLY_TEST_HOOKS: JSON.stringify({ duplicateBatchesAsSingles: true }) });
  t.teardown(async () => {
    await twiceFleet.stop();
    await own.stop();
  });
  await waitForWorkers(own.url, 2);
  const nc = await connect({ servers: own.url });
  t.teardown(() => nc.close());
  const subjects: string[] = [];
  const sub = nc.subscribe('tally.result.>', { callback: (_error, message) => void subjects.push(message.subject) });
  t.teardown(() => sub.unsubscribe());
  await nc.flush();
  /** Task ids that have a result of their own and are also in a batch result of the job. */
  const foldedTwice = (job: string) => {
    const labels = subjects.filter((subject) => subject.split('.')[2] === job).map((subject) => subject.split('.')[3]!);
    const singles = new Set(labels.filter((label) => !label.includes('-')).map(Number));
    let both = 0;
    for (const [from, to] of labels.filter((label) => label.includes('-')).map((label) => label.split('-').map(Number))) {
      for (let id = from!; id <= to!; id++) if (singles.has(id)) both++;
    }
    return both;
  };

  const sum = await tally(['sum', '1', '1000000', '--tasks', '2000', '--format', 'json'], own.url);
  t.is(sum.code, 0, sum.stderr);
  t.is(JSON.parse(sum.stdout).sum, gauss(1n, 1_000_000n).toString());
  await nc.flush();
  t.true(foldedTwice(JSON.parse(sum.stdout).job) > 0, 'tasks had two results each');

  // Small-bodied count tasks: batched, and their shares reduced on the workers.
  const dir = tempDir('tally-batch-twice-');
  t.teardown(dir.remove);
  const text = readFileSync(join(REPO_ROOT, 'node_modules', 'typescript', 'lib', 'fr', 'diagnosticMessages.generated.json'));
  const files: string[] = [];
  // Chunks of one file share messages (see the test above): one file of 300 KB, and a few small ones.
  for (let i = 0; i < 4; i++) {
    const file = join(dir.path, `part-${i}.txt`);
    writeFileSync(file, i === 0 ? text.subarray(0, 300_000) : text.subarray(i * 4001, i * 4001 + 3000));
    files.push(file);
  }
  const count = await tally(['count', dir.path, '--chunk-size', '512', '--top', '0', '--reducers', '3', '--format', 'json'], own.url);
  t.is(count.code, 0, count.stderr);
  const result = JSON.parse(count.stdout);
  const reference = referenceUnicodeCount(files.map((f) => readFileSync(f)));
  t.is(result.totalWords, reference.totalWords);
  t.deepEqual(result.counts, reference.counts);
  await nc.flush();
  t.true(foldedTwice(result.job) > 0, 'count tasks had two results (and two shares) each');
});

test.serial('batch results through the Object Store: exact, and no partial left behind', async (t) => {
  // A server and fleet of its own whose workers store every partial in the Object Store.
  const own = await startTestServer();
  const objectFleet = startWorkers(own.url, 2, { ...env, TALLY_INLINE_PARTIAL_LIMIT: '0' });
  t.teardown(async () => {
    await objectFleet.stop();
    await own.stop();
  });
  await waitForWorkers(own.url, 2);
  const nc = await connect({ servers: own.url });
  t.teardown(() => nc.close());
  const watch = watchResults(nc);
  t.teardown(() => watch.stop());
  await nc.flush();
  const run = await tally(['sum', '1', '1000000', '--tasks', '2560', '--format', 'json'], own.url);
  t.is(run.code, 0, run.stderr);
  t.is(JSON.parse(run.stdout).sum, gauss(1n, 1_000_000n).toString());
  await nc.flush();
  // Every result on the wire named an object (an inline limit of 0), and batches were among them.
  const job = JSON.parse(run.stdout).job as string;
  t.true(watch.viaObjectStore(job) > 0, `${watch.viaObjectStore(job)} results went through the Object Store`);
  t.is(watch.inline(job), 0, 'no result was carried inline');
  t.true(watch.viaObjectStore(job) < 2560, 'results of batches, several tasks to an object');
  const partials = await new Objm(nc).open('tally-partials');
  t.deepEqual(await partials.list(), [], 'partials are deleted when the job ends');
});
