/**
 * Faults, with real processes and real signals: workers killed with SIGKILL mid-task, poison
 * tasks, a killed coordinator resumed, Ctrl-C, no workers for a while, long tasks, two jobs at
 * once. Each final result is compared with a fault-free run or a published value.
 * The ack wait is shortened to 2 s (TALLY_ACK_WAIT_MS) so that lost tasks come back quickly.
 */
import test from 'ava';
import { execFileSync } from 'node:child_process';
import { closeSync, openSync, readFileSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { connect } from '@nats-io/transport-node';
import { jetstreamManager } from '@nats-io/jetstream';
import { Objm } from '@nats-io/obj';
import { REPO_ROOT, cleanEnv, collect, runTally, spawnTally, startTestServer, startWorkers, tempDir, type TestServer, type WorkerFleet } from './helpers/tally.js';
import { jsonLines, waitFor, watchResults } from './helpers/watch.js';

/** How long the test hook holds the map of long.txt: two and a half ack waits. */
const HOLD_MS = 5000;
const HOOKS = JSON.stringify({ throwWhenInputIncludes: 'poison.txt', crashWhenInputIncludes: 'crash.txt', holdWhenInputIncludes: 'long.txt', holdMs: HOLD_MS });
// Partials above 512 KiB go through the Object Store (the test server would take 4 MiB inline).
const env = cleanEnv({ TALLY_ACK_WAIT_MS: '2000', TALLY_TEST_HOOKS: HOOKS, TALLY_INLINE_PARTIAL_LIMIT: String(512 * 1024 - 1) });
let server: TestServer;
let fleet: WorkerFleet;
let corpus: { path: string; remove(): void };

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

test.before(async () => {
  server = await startTestServer();
  fleet = startWorkers(server.url, 2, env);
  corpus = tempDir('tally-faults-');
  // ~16 MB of real multilingual text: TypeScript's localized diagnostics, replicated.
  const parts = ['de', 'ru', 'ja', 'fr'].map((l) => readFileSync(join(REPO_ROOT, 'node_modules', 'typescript', 'lib', l, 'diagnosticMessages.generated.json')));
  const text = Buffer.concat([...parts, ...parts, ...parts, ...parts]);
  writeFileSync(join(corpus.path, 'big.txt'), text);
  writeFileSync(join(corpus.path, 'poison.txt'), 'this file always makes its task throw\n');
  writeFileSync(join(corpus.path, 'crash.txt'), 'this file always kills the worker process that maps it\n');
  writeFileSync(join(corpus.path, 'long.txt'), 'the map of this file is held by the test hook for longer than two ack waits\n');
});

test.after.always(async () => {
  await fleet?.stop();
  await server?.stop();
  corpus?.remove();
});

function tally(args: string[]) {
  return runTally([...args, '--server', server.url], { env });
}

function withoutJob(stdout: string): unknown {
  const { job: _job, ...rest } = JSON.parse(stdout);
  return rest;
}

/** The worker processes forked by a `tally worker` supervisor. */
function childPids(parent: number): number[] {
  try {
    return execFileSync('pgrep', ['-P', String(parent)], { encoding: 'utf8' }).trim().split('\n').filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

test.serial('a worker process killed with SIGKILL every 300 ms while the map tasks run: the result is identical to a fault-free run', async (t) => {
  const args = ['count', join(corpus.path, 'big.txt'), '--format', 'json', '--top', '0', '--chunk-size', '16K'];
  const clean = await tally(args);
  t.is(clean.code, 0, clean.stderr);
  // The map phase ends when the first reduce task goes out (tests/reducers.test.ts kills reducers).
  const nc = await connect({ servers: server.url });
  t.teardown(() => nc.close());
  let reducing = false;
  nc.subscribe('tally.task.>', { callback: (_error, message) => void (reducing ||= new TextDecoder().decode(message.data.subarray(0, 4096)).includes('"reduce":')) });
  await nc.flush();
  const child = spawnTally([...args, '--server', server.url], { env });
  const running = collect(child);
  let kills = 0;
  while (child.exitCode === null && !reducing) {
    await sleep(300);
    const pids = childPids(fleet.child.pid!);
    // One of the two at a time: a fleet whose every process dies every 300 ms does no work at
    // all (each restart takes about that long), and a task it held 5 times would count as poison.
    if (pids.length < 2 || child.exitCode !== null) continue;
    try {
      process.kill(pids[Math.floor(Math.random() * pids.length)]!, 'SIGKILL');
      kills++;
    } catch {
      // it died on its own meanwhile
    }
  }
  const faulty = await running;
  t.is(faulty.code, 0, faulty.stderr);
  t.true(kills >= 2, `only ${kills} kills happened`);
  t.log(`${kills} worker processes killed during the job`);
  t.deepEqual(withoutJob(faulty.stdout), withoutJob(clean.stdout));
  // The supervisor restarts them all (with backoff for a slot that keeps dying).
  for (let i = 0; i < 100 && childPids(fleet.child.pid!).length < 2; i++) await sleep(100);
  t.is(childPids(fleet.child.pid!).length, 2);
});

test.serial('a task that always throws fails its job, naming the file and byte range; another job completes', async (t) => {
  const [poisoned, healthy] = await Promise.all([
    tally(['count', join(corpus.path, 'poison.txt'), '--format', 'json']),
    tally(['sum', '1', '1e6', '--format', 'json', '--tasks', '50']),
  ]);
  t.is(poisoned.code, 1);
  t.regex(poisoned.stderr, /poison\.txt bytes 0-\d+/);
  t.regex(poisoned.stderr, /failed 5 times/);
  t.is(poisoned.stdout, '');
  t.is(healthy.code, 0, healthy.stderr);
  t.is(JSON.parse(healthy.stdout).sum, '500000500000');
});

test.serial('a task that always kills its process fails the job after max deliveries; it never hangs', async (t) => {
  const run = await tally(['count', join(corpus.path, 'crash.txt'), '--format', 'json']);
  t.is(run.code, 1);
  t.regex(run.stderr, /crash\.txt bytes 0-\d+/);
  t.regex(run.stderr, /delivered 5 times/);
  t.true(run.ms < 60_000, `took ${run.ms} ms`);
});

test.serial('a killed coordinator is finished by tally resume with the same result', async (t) => {
  // Killed outright once some of its results are stored (watched on the results subjects).
  const job = await killCoordinatorAfter(['primes', '1', '2e9', '--tasks', '60', '--format', 'json'], REPO_ROOT, 5);
  t.truthy(job, 'the job made progress');
  const resumed = await tally(['resume', job!, '--format', 'json']);
  t.is(resumed.code, 0, resumed.stderr);
  const result = JSON.parse(resumed.stdout);
  t.is(result.job, job);
  t.is(result.count, 98_222_287, 'pi(2e9), published');
  const record = JSON.parse((await tally(['jobs', '--format', 'json'])).stdout).find((r: { id: string }) => r.id === job);
  t.is(record.status, 'done');
});

/** Starts `tally ARGS` in `cwd` and SIGKILLs it once `results` of its results are stored; returns the job id. */
async function killCoordinatorAfter(args: string[], cwd: string, results: number): Promise<string> {
  const nc = await connect({ servers: server.url });
  try {
    const seen = new Map<string, number>();
    nc.subscribe('tally.result.>', { callback: (_error, message) => void seen.set(message.subject.split('.')[2]!, (seen.get(message.subject.split('.')[2]!) ?? 0) + 1) });
    await nc.flush();
    const child = spawnTally([...args, '--server', server.url], { env, cwd });
    const running = collect(child);
    let job: string | undefined;
    for (let i = 0; i < 3000 && !job && child.exitCode === null; i++) {
      await sleep(10);
      job = [...seen.entries()].find(([, n]) => n >= results)?.[0];
    }
    child.kill('SIGKILL');
    const run = await running;
    if (!job) throw new Error(`no job reached ${results} results: ${run.stderr}`);
    return job;
  } finally {
    await nc.close();
  }
}

test.serial('a killed count coordinator is resumed from another directory with the same result; a changed input is refused', async (t) => {
  const args = ['count', 'big.txt', '--format', 'json', '--top', '0', '--chunk-size', '16K'];
  const clean = await runTally([...args, '--server', server.url], { env, cwd: corpus.path });
  t.is(clean.code, 0, clean.stderr);
  const job = await killCoordinatorAfter(args, corpus.path, 20);
  // From the repository's directory, where no big.txt exists: the job's own directory is used.
  const resumed = await tally(['resume', job, '--format', 'json', '--top', '0']);
  t.is(resumed.code, 0, resumed.stderr);
  t.deepEqual(withoutJob(resumed.stdout), withoutJob(clean.stdout));

  writeFileSync(join(corpus.path, 'edited.txt'), readFileSync(join(corpus.path, 'big.txt')));
  const edited = await killCoordinatorAfter(['count', 'edited.txt', '--format', 'json', '--chunk-size', '16K'], corpus.path, 5);
  // One byte changed in place: same size, different words.
  const fd = openSync(join(corpus.path, 'edited.txt'), 'r+');
  writeSync(fd, 'Z', 1000);
  closeSync(fd);
  const refused = await tally(['resume', edited, '--format', 'json']);
  t.is(refused.code, 2, refused.stderr);
  t.regex(refused.stderr, new RegExp(`^tally: edited\\.txt: changed since job '${edited}' started \\(modified `));
  // A job that cannot be resumed is deleted instead, with what it left on the server (checked
  // by the test below: no task, result or partial object left).
  const deleted = await tally(['jobs', '--delete', edited]);
  t.is(deleted.code, 0, deleted.stderr);
  const records = JSON.parse((await tally(['jobs', '--format', 'json'])).stdout) as Array<{ id: string }>;
  t.false(records.some((r) => r.id === edited), 'its record is gone');
});

test.serial('Ctrl-C cancels the job: exit 130, status cancelled, its tasks withdrawn', async (t) => {
  // Interrupted once its first results are stored (watched on the wire): the job provably runs,
  // and with 2000 tasks of minutes' work in all it cannot have finished.
  const nc = await connect({ servers: server.url });
  t.teardown(() => nc.close());
  const watch = watchResults(nc);
  t.teardown(() => watch.stop());
  await nc.flush();
  // Jobs that existed before (a late result of one of them is not this job's).
  const known = new Set((JSON.parse((await tally(['jobs', '--format', 'json'])).stdout) as Array<{ id: string }>).map((r) => r.id));
  const child = spawnTally(['primes', '1', '1e11', '--tasks', '2000', '--format', 'json', '--server', server.url], { env });
  const running = collect(child);
  const newJob = () => watch.jobs().find((id) => !known.has(id));
  await waitFor(() => newJob() !== undefined || child.exitCode !== null, 'a first result of the job', 60_000);
  t.is(child.exitCode, null, 'still running when interrupted');
  const job = newJob();
  child.kill('SIGINT');
  const run = await running;
  t.is(run.code, 130, run.stderr);
  const jobs = JSON.parse((await tally(['jobs', '--format', 'json'])).stdout) as Array<{ id: string; args: { to?: string }; status: string }>;
  const record = jobs.find((r) => r.id === job);
  t.is(record?.args.to, '100000000000');
  t.is(record?.status, 'cancelled');
  const jsm = await jetstreamManager(nc);
  const info = await jsm.streams.info('TALLY_TASKS', { subjects_filter: `tally.task.${record!.id}.>` });
  t.is(Object.keys(info.state.subjects ?? {}).length, 0, 'no task of the cancelled job is left');
});

test.serial('a task longer than the ack wait is not redelivered while its worker lives', async (t) => {
  // The test hook holds the map of long.txt for HOLD_MS (two and a half 2 s ack waits) with the
  // event loop free: the worker's lease renewals are all that keep the task from coming back.
  const before = JSON.parse((await tally(['workers', '--format', 'json'])).stdout) as Array<{ tasksDone: number }>;
  const holds = () => jsonLines(fleet.stderr()).filter((line) => line.hook === 'hold' && String(line.input).includes('long.txt'));
  const heldBefore = holds().length;
  const input = join(corpus.path, 'long.txt');
  const run = await tally(['count', input, '--format', 'json', '--top', '0', '--reducers', '1']);
  t.is(run.code, 0, run.stderr);
  const after = JSON.parse((await tally(['workers', '--format', 'json'])).stdout) as Array<{ tasksDone: number }>;
  const done = (list: Array<{ tasksDone: number }>) => list.reduce((sum, w) => sum + w.tasksDone, 0);
  t.is(done(after) - done(before), 2, 'its map task and its one reduce task, each computed by exactly one process');
  // A redelivered copy would have been held (and announced) again, by either process.
  t.is(holds().length - heldBefore, 1, 'the task was held once: it was never redelivered');
  const words = Number(execFileSync('wc', ['-w', input], { env: { ...process.env, LC_ALL: 'C' }, encoding: 'utf8' }).trim().split(/\s+/)[0]);
  t.is(JSON.parse(run.stdout).totalWords, words, 'its result is the one computed');
});

test.serial('two jobs at once from two CLIs on one fleet are both exact', async (t) => {
  const [a, b] = await Promise.all([
    tally(['primes', '1', '1e8', '--tasks', '30', '--format', 'json']),
    tally(['sum', '-5e20', '7e20', '--tasks', '300', '--format', 'json']),
  ]);
  t.is(a.code, 0, a.stderr);
  t.is(b.code, 0, b.stderr);
  t.is(JSON.parse(a.stdout).count, 5_761_455);
  const [x, y] = [-(5n * 10n ** 20n), 7n * 10n ** 20n];
  t.is(JSON.parse(b.stdout).sum, (((x + y) * (y - x + 1n)) / 2n).toString());
});

test.serial('with every worker gone the job waits, says so, and completes when a new fleet starts', async (t) => {
  await fleet.stop();
  const child = spawnTally(['sum', '1', '1000', '--tasks', '10', '--format', 'json', '--server', server.url], { env });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer | string) => (stderr += String(d)));
  const running = collect(child);
  await waitFor(() => /waiting for workers/.test(stderr) || child.exitCode !== null, 'the job to say it waits for workers', 60_000);
  t.is(child.exitCode, null, `still waiting: ${stderr}`);
  fleet = startWorkers(server.url, 2, env);
  const run = await running;
  t.is(run.code, 0, run.stderr);
  t.is(JSON.parse(run.stdout).sum, '500500');
  t.regex(run.stderr, /waiting for workers/);
});

test.serial('finished and failed jobs leave nothing on the server but records and results', async (t) => {
  // Jobs of its own, whatever ran before: one whose partial travels through the Object Store
  // (a factorial of several MB, watched on the wire), one that fails, one that is deleted.
  const nc = await connect({ servers: server.url });
  t.teardown(() => nc.close());
  const watch = watchResults(nc);
  t.teardown(() => watch.stop());
  await nc.flush();
  const big = await tally(['factorial', '500000', '--split', '1', '--format', 'json']);
  t.is(big.code, 0, big.stderr);
  await nc.flush();
  t.true(watch.viaObjectStore(JSON.parse(big.stdout).job) >= 1, 'the factorial\'s partial went through the Object Store');
  const poisoned = await tally(['count', join(corpus.path, 'poison.txt'), '--format', 'json']);
  t.is(poisoned.code, 1, poisoned.stderr);
  const cut = await killCoordinatorAfter(['primes', '1', '2e9', '--tasks', '60', '--format', 'json'], REPO_ROOT, 3);
  const deleted = await tally(['jobs', '--delete', cut]);
  t.is(deleted.code, 0, deleted.stderr);
  const jsm = await jetstreamManager(nc);
  const tasks = await jsm.streams.info('TALLY_TASKS');
  t.is(tasks.state.messages, 0, 'no task left in the work queue');
  const results = await jsm.streams.info('TALLY_RESULTS');
  t.is(results.state.messages, 0, 'no partial result left');
  const partials = await new Objm(nc).open('tally-partials');
  t.deepEqual(await partials.list(), []);
  const consumers: string[] = [];
  for await (const page of jsm.consumers.list('TALLY_TASKS')) consumers.push(page.name);
  t.deepEqual(consumers, ['tally-workers']);
  const resultConsumers: string[] = [];
  for await (const page of jsm.consumers.list('TALLY_RESULTS')) resultConsumers.push(page.name);
  t.deepEqual(resultConsumers, [], 'no stray result consumers');
});
