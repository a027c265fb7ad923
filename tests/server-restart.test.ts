/**
 * The nats-server restarted in the middle of a job, on the same port and JetStream store: once
 * gracefully (SIGTERM, JetStream flushes) and once abruptly (SIGKILL). The coordinator and the
 * worker processes reconnect by themselves; the job completes with the result of a fault-free
 * run of the same job. The time from the new server being ready to the first result published
 * after it is logged as the time to recover.
 *
 * The ack wait is shortened to 2 s so that tasks in hand when the server died come back quickly.
 */
import test from 'ava';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { startNatsServer, type NatsServerProcess } from '../coordinator/nats-server.js';
import { REPO_ROOT, cleanEnv, collect, runTally, spawnTally, startWorkers, tempDir, type WorkerFleet } from './helpers/tally.js';
import { waitFor } from './helpers/watch.js';

// Each map is slowed down a little so that the job lasts several seconds on a fast machine.
const env = cleanEnv({ TALLY_ACK_WAIT_MS: '2000', TALLY_TEST_HOOKS: JSON.stringify({ busyMs: 15 }) });
let store: { path: string; remove(): void };
let corpus: { path: string; remove(): void };
let server: NatsServerProcess;
let fleet: WorkerFleet;
let watcher: NatsConnection;
/** When each result was published (seen by a plain subscriber on the result subjects). */
let resultTimes: number[] = [];
/** How many times the watcher's connection was lost (its status events). */
let disconnects = 0;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

test.before(async () => {
  store = tempDir('tally-restart-store-');
  corpus = tempDir('tally-restart-');
  server = await startNatsServer({ storeDir: store.path });
  fleet = startWorkers(server.url, 2, env);
  // ~8 MB of multilingual text: TypeScript's localized diagnostics.
  const parts = ['de', 'ru', 'ja', 'fr'].map((l) => readFileSync(join(REPO_ROOT, 'node_modules', 'typescript', 'lib', l, 'diagnosticMessages.generated.json')));
  writeFileSync(join(corpus.path, 'big.txt'), Buffer.concat([...parts, ...parts]));
  watcher = await connect({ servers: server.url, maxReconnectAttempts: -1, reconnectTimeWait: 200 });
  watcher.subscribe('tally.result.>', { callback: () => void resultTimes.push(Date.now()) });
  void (async () => {
    for await (const status of watcher.status()) if (status.type === 'disconnect') disconnects++;
  })();
});

test.after.always(async () => {
  await watcher?.close().catch(() => undefined);
  await fleet?.stop();
  await server?.stop();
  store?.remove();
  corpus?.remove();
});

function withoutJob(stdout: string): unknown {
  const { job: _job, ...rest } = JSON.parse(stdout);
  return rest;
}

const countArgs = () => ['count', join(corpus.path, 'big.txt'), '--format', 'json', '--top', '0', '--chunk-size', '16K', '--server', server.url];

/** Waits until `n` more results were published than `from`; false if that did not happen in time. */
async function resultsAfter(from: number, n: number, timeoutMs = 30_000): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (resultTimes.length < from + n && Date.now() < deadline) await sleep(20);
  return resultTimes.length >= from + n;
}

/** Results stored before the server is restarted. */
const RESTART_AFTER = 60;

/**
 * Runs the job, restarts the server mid-job with `how`, returns the run and the recovery time.
 * Throws (failing the test) when the job ends before RESTART_AFTER of its results are stored.
 */
async function restartMidJob(how: 'stop' | 'kill', args: string[]) {
  const before = resultTimes.length;
  const child = spawnTally(args, { env });
  const running = collect(child);
  // Let a good part of the job happen first; a job that ended before that tested no restart.
  const reached = await resultsAfter(before, RESTART_AFTER);
  if (!reached || child.exitCode !== null) {
    child.kill('SIGKILL');
    const run = await running;
    throw new Error(`the job ${child.exitCode !== null ? 'ended' : 'had not stored enough results'} before the restart point (${resultTimes.length - before} of ${RESTART_AFTER} results): no restart was tested. ${run.stderr.slice(-500)}`);
  }
  const port = server.port;
  const downAt = Date.now();
  const lost = disconnects;
  if (how === 'stop') await server.stop();
  else await server.kill();
  const resultsBefore = resultTimes.length - before;
  // The clients notice (the watcher's own connection is one of them) and start reconnecting.
  await waitFor(() => disconnects > lost, 'the watcher to see the server go', 30_000);
  server = await startNatsServer({ storeDir: store.path, port });
  const upAt = Date.now();
  const seen = resultTimes.length;
  await resultsAfter(seen, 1, 60_000);
  const recoveryMs = resultTimes[seen] !== undefined ? resultTimes[seen]! - upAt : NaN;
  const run = await running;
  return { run, recoveryMs, downMs: upAt - downAt, resultsBefore };
}

for (const how of ['stop', 'kill'] as const) {
  test.serial(`nats-server ${how === 'stop' ? 'stopped (SIGTERM)' : 'killed (SIGKILL)'} and restarted mid-job: the result is identical to a fault-free run`, async (t) => {
    const clean = await runTally(countArgs(), { env });
    t.is(clean.code, 0, clean.stderr);
    const tasks = JSON.parse(clean.stdout).tasks as number;
    t.log(`fault-free run: ${tasks} tasks in ${clean.ms} ms`);
    const { run, recoveryMs, downMs, resultsBefore } = await restartMidJob(how, countArgs());
    t.is(run.code, 0, run.stderr);
    t.true(resultsBefore > 0 && resultsBefore < tasks, `the server went down mid-job (${resultsBefore} of ${tasks} results before)`);
    t.deepEqual(withoutJob(run.stdout), withoutJob(clean.stdout));
    t.true(Number.isFinite(recoveryMs), 'work resumed after the restart');
    t.log(`server down ${downMs} ms; first result ${recoveryMs} ms after the new server was ready; job took ${run.ms} ms (fault-free ${clean.ms} ms)`);
  });
}

test.serial('a numeric job across a restart equals the published value, and both worker processes are back', async (t) => {
  const tasks = 200;
  const { run, recoveryMs, downMs, resultsBefore } = await restartMidJob('kill', ['primes', '1', '1e9', '--tasks', String(tasks), '--format', 'json', '--server', server.url]);
  t.is(run.code, 0, run.stderr);
  t.true(resultsBefore > 0 && resultsBefore < tasks, `the server went down mid-job (${resultsBefore} of ${tasks} results before)`);
  t.is(JSON.parse(run.stdout).count, 50_847_534, 'pi(1e9), published');
  t.true(Number.isFinite(recoveryMs), 'work resumed after the restart');
  t.log(`server down ${downMs} ms; first result ${recoveryMs} ms after the new server was ready`);
  const workers = await runTally(['workers', '--format', 'json', '--server', server.url], { env });
  t.is(workers.code, 0, workers.stderr);
  t.is((JSON.parse(workers.stdout) as unknown[]).length, 2, 'both worker processes reconnected and registered again');
});

test.serial('a server that does not come back: the job gives up with one line and exit 1, and tally resume finishes it later', async (t) => {
  const clean = await runTally(countArgs(), { env });
  t.is(clean.code, 0, clean.stderr);
  const before = resultTimes.length;
  const child = spawnTally(countArgs(), { env: { ...env, TALLY_SERVER_LOST_MS: '3000' } });
  const running = collect(child);
  t.true(await resultsAfter(before, 30), 'the job stored results before the server died');
  t.is(child.exitCode, null, 'the job was still running when the server died');
  const port = server.port;
  await server.kill();
  const killedAt = Date.now();
  const run = await running;
  const gaveUpMs = Date.now() - killedAt;
  server = await startNatsServer({ storeDir: store.path, port });
  t.is(run.code, 1, run.stderr);
  const said = /^tally: nats:\/\/127\.0\.0\.1:\d+: connection lost for 3 s; once the server is back, `tally resume (\S+)` finishes the job\n$/.exec(run.stderr);
  t.truthy(said, run.stderr);
  // Not a timing target: only that it does not hang (each call that needs the server would wait out its timeouts).
  t.true(gaveUpMs < 30_000, `gave up ${gaveUpMs} ms after the server died`);
  const resumed = await runTally(['resume', said![1]!, '--format', 'json', '--top', '0', '--server', server.url], { env });
  t.is(resumed.code, 0, resumed.stderr);
  t.deepEqual(withoutJob(resumed.stdout), withoutJob(clean.stdout));
});
