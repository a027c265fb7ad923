/**
 * Documented behaviour of the CLI that no other test exercised, end to end with real
 * nats-server and worker processes and real signals:
 * - Ctrl-C while the server is down exits 130 in under a second (docs/RELIABILITY.md #15);
 * - a file changed while its job runs, with workers reading the files, fails the job with one
 *   line naming the file (README, `--workers-read-files`; RELIABILITY "Bad input");
 * - `tally jobs --delete` refuses a running job whose coordinator is alive on this machine
 *   (exit 2, nothing deleted) and `--force` deletes it with everything it left on the server;
 *   the coordinator, when it runs again, stops without writing anything back.
 */
import test, { type ExecutionContext } from 'ava';
import { appendFileSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { jetstreamManager } from '@nats-io/jetstream';
import { Kvm } from '@nats-io/kv';
import { Objm } from '@nats-io/obj';
import { startNatsServer } from '../coordinator/nats-server.js';
import { cleanEnv, collect, runTally, spawnTally, startTestServer, tempDir, type RunResult, type TestServer } from './helpers/tally.js';
import { jsonLines, spawnWorker, waitFor, type OwnedFleet } from './helpers/watch.js';

const hooks = (settings: Record<string, unknown>) => cleanEnv({ TALLY_TEST_HOOKS: JSON.stringify(settings) });

/** A server, a watcher connection that records the result subjects published, and cleanup. */
async function serverWithWatcher(t: ExecutionContext): Promise<{ server: TestServer; nc: NatsConnection; results: string[] }> {
  const server = await startTestServer();
  t.teardown(() => server.stop());
  const nc = await connect({ servers: server.url });
  t.teardown(() => nc.close().catch(() => undefined));
  const results: string[] = [];
  nc.subscribe('tally.result.>', { callback: (_e, m) => void results.push(m.subject) });
  await nc.flush();
  return { server, nc, results };
}

async function readyFleet(t: ExecutionContext, url: string, env: NodeJS.ProcessEnv, args: string[] = []): Promise<OwnedFleet> {
  const fleet = spawnWorker(url, 1, env, ['--log-level', 'info', ...args]);
  t.teardown(() => fleet.kill());
  await waitFor(() => fleet.stderr().includes('"worker ready"'), 'the worker to be ready');
  return fleet;
}

/** One line on stderr, no stack trace. */
function oneLine(t: ExecutionContext, run: RunResult): string {
  const lines = run.stderr.trimEnd().split('\n');
  t.is(lines.length, 1, `exactly one line on stderr: ${run.stderr}`);
  t.notRegex(run.stderr, /\n\s+at |node:internal/, 'no stack trace');
  return lines[0]!;
}

for (const how of ['stopped (SIGTERM), Ctrl-C as soon as it is gone', 'SIGKILLed, Ctrl-C after 2 s of reconnecting'] as const) {
  test(`Ctrl-C while the server is down exits 130 in under a second: server ${how}`, async (t) => {
    const { server, nc, results } = await serverWithWatcher(t);
    // Slow maps keep the job running for tens of seconds.
    await readyFleet(t, server.url, hooks({ busyMs: 200 }));
    const cli = spawnTally(['sum', '1', '1e12', '--tasks', '200', '--server', server.url, '--format', 'json', '--no-progress']);
    t.teardown(() => void cli.kill('SIGKILL'));
    const job = collect(cli);
    await waitFor(() => results.length >= 1, 'a first result: the job is under way');
    await nc.close();
    if (how.startsWith('stopped')) await server.server.stop();
    else {
      await server.server.kill();
      // Part of the scenario, not a synchronisation: the client has been retrying (every
      // 500 ms) for a while when the user gives up.
      await new Promise((resolve) => setTimeout(resolve, 2000));
    }
    t.is(cli.exitCode, null, 'still running while the server is down');
    const signalled = Date.now();
    cli.kill('SIGINT');
    const run = await job;
    const ms = Date.now() - signalled;
    t.is(run.code, 130, run.stderr);
    t.is(run.stdout, '');
    t.notRegex(run.stderr, /\n\s+at |node:internal/, 'no stack trace');
    // Documented: under a second (measured 20-110 ms; it was ~55 s when the job waited out the
    // server's timeouts, and ~0.8 s when closing asked a reconnecting client to drain).
    t.true(ms < 1000, `exit ${ms} ms after SIGINT`);
    const id = results[0]!.split('.')[2]!;
    t.is(oneLine(t, run), `tally: job ${id} interrupted while the server is unreachable; its record still says running: once the server is back, \`tally resume ${id}\` finishes it`);
    t.log(`exit 130 ${ms} ms after SIGINT`);
    // What the line says: the server, back on its store, has the job running (resumable).
    const back = await startNatsServer({ storeDir: server.storeDir, port: server.server.port });
    t.teardown(() => back.stop());
    const jobs = await runTally(['jobs', '--format', 'json', '--server', back.url]);
    t.is(jobs.code, 0, jobs.stderr);
    t.like(JSON.parse(jobs.stdout), [{ id, status: 'running' }]);
  });
}

/** ~190 KB of words: 12 tasks of 16 KiB. */
function words(): string {
  let text = '';
  for (let i = 0; i < 24_000; i++) text += `w${i % 997} ${i % 7 === 0 ? '\n' : ''}`;
  return text;
}

/** Waits for the first map, changes the file as `change` says, and returns the run. */
async function changedDuringJob(t: ExecutionContext, path: string, job: Promise<RunResult>, stderr: () => string, change: 'append' | 'touch'): Promise<RunResult> {
  await waitFor(() => jsonLines(stderr()).some((l) => l.hook === 'map'), 'the first task to be in hand');
  if (change === 'append') appendFileSync(path, 'one more line\n');
  else {
    // Same size, modification time one minute later.
    const { mtime } = statSync(path);
    utimesSync(path, new Date(), new Date(mtime.getTime() + 60_000));
  }
  return job;
}

test('a file changed while its job runs (tally worker --read-files, --workers-read-files): exit 1, one line naming the file', async (t) => {
  const { server } = await serverWithWatcher(t);
  const dir = tempDir('tally-changed-');
  t.teardown(dir.remove);
  const path = join(dir.path, 'growing.txt');
  writeFileSync(path, words());
  const size = statSync(path).size;
  // 300 ms a task, one process: the job has seconds of tasks left when the file changes.
  const fleet = await readyFleet(t, server.url, hooks({ busyMs: 300, announceMaps: true }), ['--read-files']);
  const job = runTally(['count', path, '--workers-read-files', '--chunk-size', '16K', '--server', server.url, '--format', 'json', '--no-progress']);
  const run = await changedDuringJob(t, path, job, fleet.stderr, 'append');
  t.is(run.code, 1, run.stderr);
  t.is(run.stdout, '');
  const line = oneLine(t, run);
  t.true(line.includes(`${path} changed while it was being counted`), line);
  t.true(line.includes(`it has ${size + 14} bytes, not ${size}`), line);
  t.log(line);
});

/**
 * One embedded count whose file is touched (same size, a later modification time) while its
 * tasks run, shared by the two tests below.
 */
let touchedRun: Promise<RunResult & { path: string }> | undefined;
function touchedDuringEmbeddedJob(t: ExecutionContext): Promise<RunResult & { path: string }> {
  touchedRun ??= (async () => {
    const dir = tempDir('tally-touched-');
    const path = join(dir.path, 'touched.txt');
    writeFileSync(path, words());
    // The embedded workers inherit the CLI's environment, test hooks included; their stderr is
    // the CLI's. A store of its own, so that no other embedded run shares this one's server.
    const env = { ...hooks({ busyMs: 300, announceMaps: true }), TALLY_DATA_DIR: join(dir.path, 'store') };
    const cli = spawnTally(['count', path, '--workers', '1', '--chunk-size', '16K', '--format', 'json', '--no-progress'], { env });
    let stderr = '';
    cli.stderr!.on('data', (d: Buffer) => (stderr += String(d)));
    try {
      const run = await changedDuringJob(t, path, collect(cli), () => stderr, 'touch');
      // The hook's own lines are the test's doing; what tally says is the rest.
      return { ...run, stderr: run.stderr.split('\n').filter((l) => !l.startsWith('{"hook"')).join('\n'), path };
    } finally {
      cli.kill('SIGKILL');
      dir.remove();
    }
  })();
  return touchedRun;
}

test('a file touched while its job runs (embedded default: workers read the files): exit 1, a line naming the file', async (t) => {
  const run = await touchedDuringEmbeddedJob(t);
  t.is(run.code, 1, run.stderr);
  t.is(run.stdout, '');
  t.notRegex(run.stderr, /\n\s+at |node:internal/, 'no stack trace');
  const said = run.stderr.trimEnd().split('\n').filter((l) => l.startsWith('tally: '));
  t.is(said.length, 1, run.stderr);
  t.true(said[0]!.includes(`${run.path} changed while it was being counted: modified `), said[0]);
  t.log(said[0]);
});

// The workers' own logs (pino JSON on the same stderr) must not add lines: an input edited
// mid-job is the user's doing, reported once by the coordinator.
test('a file touched while its embedded job runs: stderr is exactly that one line', async (t) => {
  const run = await touchedDuringEmbeddedJob(t);
  oneLine(t, run);
});

/** What a job has on the server: its record, result, tasks, results, map outputs, consumer, partials. */
async function onServer(nc: NatsConnection, job: string) {
  const jsm = await jetstreamManager(nc);
  const subjects = (stream: string, filter: string) => jsm.streams.info(stream, { subjects_filter: filter }).then((info) => info.state.subjects ?? {});
  const record = await (await new Kvm(nc).open('tally-jobs')).get(job);
  const objm = new Objm(nc);
  const partials = await (await objm.open('tally-partials')).list();
  return {
    record: record?.operation === 'PUT' ? (JSON.parse(record.string()) as { status: string }).status : null,
    result: (await (await objm.open('tally-results')).info(job)) !== null,
    tasks: await subjects('TALLY_TASKS', `tally.task.${job}.>`),
    results: await subjects('TALLY_RESULTS', `tally.result.${job}.>`),
    shares: await subjects('TALLY_SHUFFLE', `tally.shuffle.${job}.>`),
    resultConsumer: await jsm.consumers.info('TALLY_RESULTS', `tally-job-${job}`).then(
      () => true,
      () => false,
    ),
    partials: partials.filter((info) => info.name.startsWith(`${job}.`)).map((info) => info.name),
  };
}

test('tally jobs --delete refuses a running job whose coordinator is alive here (exit 2, nothing deleted); --force deletes it and all it left on the server; the coordinator, continued, stops', async (t) => {
  const { server, nc, results } = await serverWithWatcher(t);
  const dir = tempDir('tally-delete-');
  t.teardown(dir.remove);
  const path = join(dir.path, 'words.txt');
  writeFileSync(path, words());
  const fleet = await readyFleet(t, server.url, hooks({ busyMs: 300 }));
  const cli = spawnTally(['count', path, '--chunk-size', '16K', '--server', server.url, '--format', 'json', '--no-progress']);
  // SIGKILL ends a stopped process too.
  t.teardown(() => void cli.kill('SIGKILL'));
  const job = collect(cli);
  await waitFor(() => results.length >= 2, 'two results: the job is under way');
  // The coordinator stops (alive, as a process stopped in a terminal with Ctrl-Z is), and the
  // fleet goes away after the task in hand: the job's state on the server holds still.
  cli.kill('SIGSTOP');
  fleet.child.kill('SIGTERM');
  t.is((await fleet.done).code, 0);
  const id = results[0]!.split('.')[2]!;
  const before = await onServer(nc, id);
  t.is(before.record, 'running');
  t.true(Object.keys(before.tasks).length > 0, 'tasks still queued');
  t.true(Object.keys(before.results).length >= 2, 'results stored');
  t.true(Object.keys(before.shares).length >= 2, 'map outputs stored');
  t.true(before.resultConsumer);

  const refused = await runTally(['jobs', '--delete', id, '--server', server.url]);
  t.is(refused.code, 2, refused.stderr);
  t.is(refused.stdout, '');
  const line = oneLine(t, refused);
  t.regex(line, new RegExp(`^tally: job '${id}' is still being run by process \\S+:${cli.pid}\\b.*nothing deleted$`));
  t.deepEqual(await onServer(nc, id), before, 'nothing deleted');

  const forced = await runTally(['jobs', '--delete', id, '--force', '--server', server.url]);
  t.is(forced.code, 0, forced.stderr);
  t.is(forced.stdout, `deleted ${id}\n`);
  t.deepEqual(await onServer(nc, id), { record: null, result: false, tasks: {}, results: {}, shares: {}, resultConsumer: false, partials: [] });
  const listed = await runTally(['jobs', '--format', 'json', '--server', server.url]);
  t.deepEqual(JSON.parse(listed.stdout), []);

  // The coordinator, let go again, finds its job gone: it stops, and writes nothing back.
  cli.kill('SIGCONT');
  const resumed = await job;
  t.is(resumed.code, 1, resumed.stderr);
  t.is(oneLine(t, resumed), `tally: job ${id} was deleted while this coordinator was running it; stopped without touching it`);
  t.deepEqual(await onServer(nc, id), { record: null, result: false, tasks: {}, results: {}, shares: {}, resultConsumer: false, partials: [] });
});
