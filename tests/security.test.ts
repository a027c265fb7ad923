/**
 * Roles on a secured server (config/nats/secure/tally.conf, passwords generated per run): the
 * whole job works with each role doing its part, and each thing a role must not do is denied
 * by the server, one test per denial. No secret reaches any output, log or job record.
 */
import test, { type ExecutionContext } from 'ava';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { jetstream, jetstreamManager, AckPolicy, type JetStreamManager } from '@nats-io/jetstream';
import { Kvm } from '@nats-io/kv';
import { Objm } from '@nats-io/obj';
import type { NatsConnection } from '@nats-io/transport-node';
import { displayServers, inboxPrefixFor, resolveConnection, withoutSecrets } from '../shared/nats/connection-settings.js';
import { connectToNats } from '../shared/nats/connection.js';
import { permissionViolation } from '../shared/nats/errors.js';
import { ensureTaskTopology, openJobsBucket, openPartialsStore, openResultsStore } from '../shared/nats/topology.js';
import { PartialsWriter } from '../shared/nats/partials.js';
import { encodeEnvelope } from '../shared/nats/envelope.js';
import { JOBS_BUCKET, JOB_FEED_SUBJECTS, PARTIALS_BUCKET, RESULTS_BUCKET, RESULT_STREAM, SHUFFLE_STREAM, TASK_STREAM, jobResultSubjects, jobShuffleSubjects } from '../shared/subjects.js';
import type { JobFeed } from '../shared/job-feed.js';
import { waitFor } from './helpers/watch.js';
import { REPO_ROOT, cleanEnv, collect, runTally, spawnTally, tempDir, type RunResult } from './helpers/tally.js';
import { SECURE_CONFIG_DIR, assertNoSecrets, bcryptHash, configString, newSecret, secureConfig, startSecureServer, type SecureServer } from './helpers/security.js';

type Role = 'coordinator' | 'worker' | 'reader';
const passwords: Record<Role, string> = { coordinator: newSecret('C'), worker: newSecret('W'), reader: newSecret('R') };
/** The coordinator's password reaches the server as a bcrypt hash when crypt(3) can make one. */
const coordinatorHash = bcryptHash(passwords.coordinator);
const secrets = [...Object.values(passwords), ...(coordinatorHash ? [coordinatorHash] : [])];

let server: SecureServer;
const dir = tempDir('tally-security-');
const connections: NatsConnection[] = [];

test.before(async () => {
  server = await startSecureServer(secureConfig('tally.conf'), {
    TALLY_COORDINATOR_PASSWORD: configString(coordinatorHash ?? passwords.coordinator),
    TALLY_WORKER_PASSWORD: configString(passwords.worker),
    TALLY_READER_PASSWORD: configString(passwords.reader),
  });
  // What a coordinator (or an administrator) creates on first use; the denial tests need it.
  const nc = await as('coordinator');
  await ensureTaskTopology(await jetstreamManager(nc));
  await Promise.all([openJobsBucket(nc), openResultsStore(nc), openPartialsStore(nc)]);
});

test.after.always(async () => {
  await Promise.all(connections.map((nc) => nc.close().catch(() => undefined)));
  await server?.stop();
  dir.remove();
});

/** A connection as `role`, through tally's own connection code (inbox prefix _INBOX_<role>). */
async function as(role: Role): Promise<NatsConnection> {
  const nc = await connectToNats({ servers: [server.url], auth: { user: role, password: passwords[role] }, name: `test-${role}` });
  connections.push(nc);
  return nc;
}

/** `tally ARGS` with `role`'s credentials in the environment (NATS_USER, NATS_PASSWORD). */
function tallyAs(role: Role, args: string[], extraEnv: NodeJS.ProcessEnv = {}): Promise<RunResult> {
  return runTally([...args, '--server', server.url], { env: cleanEnv({ NATS_USER: role, NATS_PASSWORD: passwords[role], ...extraEnv }), timeoutMs: 60_000 });
}

/** Asserts that `promise` fails with a permissions violation on `subject` (a RegExp or exact). */
async function assertDenied(t: ExecutionContext, promise: Promise<unknown>, subject: RegExp | string, what: string): Promise<void> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  const violation = permissionViolation(error);
  if (!violation) {
    t.fail(`${what}: expected a permissions violation, got ${error === undefined ? 'success' : String(error)}`);
    return;
  }
  if (typeof subject === 'string') t.is(violation.subject, subject, what);
  else t.regex(violation.subject, subject, what);
}

/** Subscribes and expects the server to refuse the subscription. */
async function assertSubscribeDenied(t: ExecutionContext, nc: NatsConnection, subject: string): Promise<void> {
  const sub = nc.subscribe(subject);
  // The refusal comes asynchronously (-ERR); on a loaded machine it took over 3 s once (a CI run).
  const closed = await Promise.race([sub.closed, new Promise((resolve) => setTimeout(() => resolve('still open'), 15_000))]);
  const violation = permissionViolation(closed);
  t.truthy(violation, `subscribing to ${subject} should be denied`);
  t.is(violation?.operation, 'subscription');
  t.is(violation?.subject, subject);
}

test('the whole job works with each role doing its part, and no secret leaks anywhere', async (t) => {
  // Workers: credentials from the environment; debug logs, to check those too.
  const fleet = spawnTally(['worker', '--server', server.url, '--processes', '2', '--log-level', 'debug'], {
    env: cleanEnv({ NATS_USER: 'worker', NATS_PASSWORD: passwords.worker }),
  });
  const fleetDone = collect(fleet, Date.now(), 120_000);
  t.teardown(() => void fleet.kill('SIGKILL'));
  const outputs: Record<string, string> = {};
  const keep = (name: string, run: RunResult) => {
    outputs[`${name} stdout`] = run.stdout;
    outputs[`${name} stderr`] = run.stderr;
    return run;
  };

  // Coordinator: credentials as flags (the documented-but-discouraged way, to check argv too).
  const coordinatorFlags = ['--user', 'coordinator', '--password', passwords.coordinator, '--server', server.url, '--log-level', 'debug', '--no-progress'];
  // A reader follows running jobs' live progress (what `tally dashboard` shows).
  const feeds: JobFeed[] = [];
  const follower = (await as('reader')).subscribe(JOB_FEED_SUBJECTS, { callback: (error, message) => void (error || feeds.push(message.json<JobFeed>())) });
  const sum = keep('sum', await runTally(['sum', '1', '1_000_000', '--tasks', '8', '--format', 'json', ...coordinatorFlags], { env: cleanEnv(), timeoutMs: 60_000 }));
  t.is(sum.code, 0, sum.stderr);
  const sumResult = JSON.parse(sum.stdout);
  t.is(sumResult.sum, '500000500000');
  await waitFor(() => feeds.some((feed) => feed.job === sumResult.job && feed.status === 'done'), 'the job feed says done');
  const last = feeds.filter((feed) => feed.job === sumResult.job).pop()!;
  t.deepEqual(last.preview, { label: 'sum so far', value: '500000500000' });
  t.is(last.workers.reduce((tasks, share) => tasks + share.tasks, 0), 8, 'the workers\' shares add up to the tasks');
  follower.unsubscribe();

  // A count whose one partial (100,000 distinct words, ~1.3 MB) is larger than a message should
  // be: the worker stores it in tally-partials with publish rights only, the coordinator reads it.
  const words = Array.from({ length: 100_000 }, (_, i) => `word${i}`);
  const input = join(dir.path, 'distinct.txt');
  writeFileSync(input, `${words.join(' ')}\n${words.slice(0, 10).join(' ')}\n`);
  const count = keep('count', await runTally(['count', input, '--chunk-size', '4M', '--format', 'json', '--top', '3', ...coordinatorFlags], { env: cleanEnv(), timeoutMs: 60_000 }));
  t.is(count.code, 0, count.stderr);
  const countResult = JSON.parse(count.stdout);
  t.is(countResult.totalWords, 100_010);
  t.is(countResult.uniqueWords, 100_000);
  // Its results and map outputs are gone once it is done: on this server (2.9.10) listed by a
  // consumer of the coordinator's own and deleted one by one, with nothing denied on the way
  // (a denied publish is logged at debug level, which this run has).
  t.notRegex(count.stderr, /permission denied/);
  const coordinatorJsm = await jetstreamManager(await as('coordinator'));
  for (const [stream, subjects] of [[RESULT_STREAM, jobResultSubjects(countResult.job)], [SHUFFLE_STREAM, jobShuffleSubjects(countResult.job)]] as const) {
    const { state } = await coordinatorJsm.streams.info(stream, { subjects_filter: subjects });
    t.deepEqual(state.subjects ?? {}, {}, `${stream} keeps nothing of the job`);
  }

  // Reader: job records, results and workers, with the URL carrying nothing secret.
  const jobs = keep('jobs', await tallyAs('reader', ['jobs', '--format', 'json']));
  t.is(jobs.code, 0, jobs.stderr);
  const records = JSON.parse(jobs.stdout) as Array<{ id: string; status: string }>;
  for (const id of [sumResult.job, countResult.job]) t.is(records.find((r) => r.id === id)?.status, 'done', id);
  const result = keep('result', await tallyAs('reader', ['result', sumResult.job, '--format', 'json']));
  t.is(result.code, 0, result.stderr);
  t.is(JSON.parse(result.stdout).sum, '500000500000');
  const workers = keep('workers', await tallyAs('reader', ['workers', '--format', 'json']));
  t.is(workers.code, 0, workers.stderr);
  const pids = (JSON.parse(workers.stdout) as Array<{ pid: number }>).map((w) => w.pid);
  t.is(pids.length, 2);
  // The worker processes got their settings without the password, and nothing on their argv.
  if (existsSync('/proc/self/environ')) {
    for (const pid of pids) {
      outputs[`worker ${pid} argv`] = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
      const environ = readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0');
      const settings = environ.find((entry) => entry.startsWith('TALLY_WORKER_SETTINGS='));
      t.truthy(settings);
      outputs[`worker ${pid} TALLY_WORKER_SETTINGS`] = settings ?? '';
      t.regex(settings ?? '', /"user":"worker"/);
    }
  }

  fleet.kill('SIGTERM');
  const fleetRun = await fleetDone;
  t.is(fleetRun.code, 0, fleetRun.stderr);
  outputs['worker stdout'] = fleetRun.stdout;
  outputs['worker stderr (debug logs)'] = fleetRun.stderr;
  t.regex(fleetRun.stderr, /workers starting/);

  // The job records as stored, byte for byte.
  const kv = await new Kvm(await as('coordinator')).open(JOBS_BUCKET);
  for (const id of [sumResult.job, countResult.job]) {
    const entry = await kv.get(id);
    outputs[`job record ${id}`] = entry ? new TextDecoder().decode(entry.value) : '';
    t.truthy(entry);
  }
  assertNoSecrets(t, secrets, outputs);
});

test("a worker cannot follow jobs' live progress, and a reader cannot report on tasks", async (t) => {
  await assertSubscribeDenied(t, await as('worker'), JOB_FEED_SUBJECTS);
  await assertSubscribeDenied(t, await as('reader'), 'tally.progress.*.task');
});

test('a worker cannot publish tasks', async (t) => {
  const nc = await as('worker');
  const task = encodeEnvelope({ v: 1, job: 'abc-123', task: 0, kind: 'sum', input: 'forged', spec: { from: '1', to: '2' } });
  await assertDenied(t, jetstream(nc).publish('tally.task.abc-123.0', task), 'tally.task.abc-123.0', 'JetStream publish of a task');
  const jsm = await jetstreamManager(await as('coordinator'));
  const info = await jsm.streams.info(TASK_STREAM, { subjects_filter: 'tally.task.abc-123.>' });
  t.deepEqual(info.state.subjects ?? {}, {}, 'nothing reached the task stream');
});

test("a worker cannot read jobs' results: no subscription, consumer or message get on TALLY_RESULTS", async (t) => {
  const nc = await as('worker');
  // A result it may publish (its job) but never read back.
  await jetstream(nc).publish('tally.result.abc-456.0', encodeEnvelope({ v: 1, job: 'abc-456', task: 0, worker: 'w', ms: 1 }, new TextEncoder().encode('42')));
  await assertSubscribeDenied(t, nc, 'tally.result.>');
  const jsm = await jetstreamManager(nc);
  await assertDenied(
    t,
    jsm.consumers.add(RESULT_STREAM, { name: 'spy', ack_policy: AckPolicy.None, filter_subject: 'tally.result.>' }),
    /^\$JS\.API\.CONSUMER\.CREATE\.TALLY_RESULTS/,
    'creating a consumer on the results',
  );
  await assertDenied(t, jsm.streams.getMessage(RESULT_STREAM, { seq: 1 }), '$JS.API.STREAM.MSG.GET.TALLY_RESULTS', 'reading a stored result');
  await assertDenied(t, nc.request('$JS.API.DIRECT.GET.TALLY_RESULTS', JSON.stringify({ seq: 1 })), '$JS.API.DIRECT.GET.TALLY_RESULTS', 'direct get');
  await assertDenied(t, jsm.streams.info(RESULT_STREAM, { subjects_filter: '>' }), '$JS.API.STREAM.INFO.TALLY_RESULTS', 'listing result subjects');
  // Nor listen to the replies a coordinator receives (its result consumer delivers there).
  await assertSubscribeDenied(t, nc, '_INBOX_coordinator.>');
  await assertSubscribeDenied(t, nc, '_INBOX.>');
});

test('a worker stores partials and, as a reducer, reads them back; it writes parts beside the results blind and cannot read or delete results', async (t) => {
  const nc = await as('worker');
  const big = new Uint8Array(300 * 1024).map((_, i) => i % 251);
  await new PartialsWriter(jetstream(nc), PARTIALS_BUCKET, nc.info!.max_payload).putBlob({ name: 'abc-789.0.p1.0123abcd' }, big);
  // Reducers read map outputs too big for a message (every task's: map outputs come from the
  // tasks' text, which a worker reads anyway).
  t.deepEqual(await (await new Objm(nc).open(PARTIALS_BUCKET)).getBlob('abc-789.0.p1.0123abcd'), big);
  // A sorted part goes beside the results, written blind; the coordinator reads it, digest checked.
  await new PartialsWriter(jetstream(nc), RESULTS_BUCKET, nc.info!.max_payload).putPieces('abc-789.part-0', [big.subarray(0, 1000), big.subarray(1000)]);
  const results = await new Objm(await as('coordinator')).open(RESULTS_BUCKET);
  t.deepEqual(await results.getBlob('abc-789.part-0'), big);
  const jsm = await jetstreamManager(nc);
  await assertDenied(t, jsm.streams.getMessage(`OBJ_${RESULTS_BUCKET}`, { seq: 1 }), `$JS.API.STREAM.MSG.GET.OBJ_${RESULTS_BUCKET}`, 'reading a result chunk');
  await assertDenied(t, new Objm(nc).open(RESULTS_BUCKET), `$JS.API.STREAM.INFO.OBJ_${RESULTS_BUCKET}`, 'opening the results bucket');
  await assertDenied(t, jsm.streams.purge(`OBJ_${PARTIALS_BUCKET}`), `$JS.API.STREAM.PURGE.OBJ_${PARTIALS_BUCKET}`, 'deleting partials');
  await assertSubscribeDenied(t, nc, `$O.${RESULTS_BUCKET}.>`);
});

test('a worker cannot delete or purge streams', async (t) => {
  const jsm: JetStreamManager = await jetstreamManager(await as('worker'));
  for (const stream of [TASK_STREAM, RESULT_STREAM, `KV_${JOBS_BUCKET}`, `OBJ_${PARTIALS_BUCKET}`]) {
    await assertDenied(t, jsm.streams.delete(stream), `$JS.API.STREAM.DELETE.${stream}`, `deleting ${stream}`);
  }
  await assertDenied(t, jsm.streams.purge(TASK_STREAM), `$JS.API.STREAM.PURGE.${TASK_STREAM}`, 'purging the tasks');
  await assertDenied(t, jsm.consumers.delete(TASK_STREAM, 'tally-workers'), '$JS.API.CONSUMER.DELETE.TALLY_TASKS.tally-workers', 'deleting the worker consumer');
  await assertDenied(t, jsm.streams.add({ name: 'WORKER_MADE', subjects: ['worker.made'] }), '$JS.API.STREAM.CREATE.WORKER_MADE', 'creating a stream');
  const admin = await jetstreamManager(await as('coordinator'));
  for (const stream of [TASK_STREAM, RESULT_STREAM]) t.is((await admin.streams.info(stream)).config.name, stream, `${stream} still exists`);
});

test('a worker cannot read the job records (KV)', async (t) => {
  const nc = await as('worker');
  await assertDenied(t, new Kvm(nc).open(JOBS_BUCKET).then((kv) => kv.get('abc-123')), new RegExp(`^\\$JS\\.API\\.[A-Z.]+\\.KV_${JOBS_BUCKET}`), 'reading a record');
  await assertDenied(t, new Kvm(nc).create(JOBS_BUCKET), `$JS.API.STREAM.INFO.KV_${JOBS_BUCKET}`, 'opening the KV bucket');
  await assertDenied(t, nc.request(`$JS.API.DIRECT.GET.KV_${JOBS_BUCKET}`, JSON.stringify({ last_by_subj: `$KV.${JOBS_BUCKET}.x` })), `$JS.API.DIRECT.GET.KV_${JOBS_BUCKET}`, 'direct get');
  await assertSubscribeDenied(t, nc, `$KV.${JOBS_BUCKET}.>`);
  // And the CLI says so in words.
  const run = await tallyAs('worker', ['jobs']);
  t.is(run.code, 1);
  t.regex(run.stderr, /permission denied publishing to \$JS\.API\.STREAM\.INFO\.KV_tally-jobs \(reading job records needs the coordinator or reader role\)/);
  assertNoSecrets(t, secrets, { stdout: run.stdout, stderr: run.stderr });
});

test('a reader cannot submit a job: tally sum fails with a clear authorization message', async (t) => {
  const run = await tallyAs('reader', ['sum', '1', '10', '--no-progress']);
  t.is(run.code, 1, run.stderr);
  t.regex(run.stderr, /^tally: nats:\/\/127\.0\.0\.1:\d+: permission denied publishing to \S+ \(running jobs needs the coordinator role\)\n$/);
  t.is(run.stdout, '');
  const nc = await as('reader');
  await assertDenied(t, jetstream(nc).publish('tally.task.abc-123.0', new Uint8Array(8)), 'tally.task.abc-123.0', 'publishing a task');
  await assertDenied(t, new Kvm(nc).open(JOBS_BUCKET).then((kv) => kv.put('abc-123', '{}')), `$KV.${JOBS_BUCKET}.abc-123`, 'writing a job record');
  assertNoSecrets(t, secrets, { stdout: run.stdout, stderr: run.stderr });
});

test('a reader cannot cancel or delete jobs', async (t) => {
  // A finished job to try it on.
  const coordinator = await as('coordinator');
  const store = await openJobsBucket(coordinator);
  const record = { id: 'abc-999', kind: 'sum', args: { from: '1', to: '2', tasks: 1 }, status: 'done', progress: { tasksDone: 1, tasksTotal: 1, weightDone: 2, weightTotal: 2 }, created: new Date().toISOString(), finished: new Date().toISOString(), elapsedMs: 1, error: null, coordinator: 'h:1' };
  await store.put('abc-999', JSON.stringify(record));
  const del = await tallyAs('reader', ['jobs', '--delete', 'abc-999']);
  t.is(del.code, 1);
  t.regex(del.stderr, /permission denied publishing to \$KV\.tally-jobs\.abc-999 \(writing job records needs the coordinator role\)/);
  t.truthy(await store.get('abc-999'), 'the record is still there');

  const nc = await as('reader');
  const jsm = await jetstreamManager(nc);
  // Cancelling a job = withdrawing its tasks, announcing its end, deleting its result consumer.
  await assertDenied(t, jsm.streams.purge(TASK_STREAM, { filter: 'tally.task.abc-999.>' }), `$JS.API.STREAM.PURGE.${TASK_STREAM}`, 'withdrawing tasks');
  await assertDenied(t, jsm.consumers.delete(RESULT_STREAM, 'tally-job-abc-999'), '$JS.API.CONSUMER.DELETE.TALLY_RESULTS.tally-job-abc-999', 'deleting the result consumer');
  await assertDenied(t, jsm.streams.deleteMessage(TASK_STREAM, 1), `$JS.API.STREAM.MSG.DELETE.${TASK_STREAM}`, 'deleting a task');
  // A plain publish is refused by the server asynchronously: the error arrives as a status.
  const statuses = (async () => {
    for await (const status of nc.status()) if (status.type === 'error' && permissionViolation(status.error)) return permissionViolation(status.error);
    return undefined;
  })();
  nc.publish('tally.event.ended.abc-999');
  const violation = await Promise.race([statuses, new Promise((resolve) => setTimeout(() => resolve(undefined), 3000))]);
  t.deepEqual(violation, { operation: 'publish', subject: 'tally.event.ended.abc-999' });
  assertNoSecrets(t, secrets, { stdout: del.stdout, stderr: del.stderr });
});

test('wrong credentials fail with a clear message that names the server and the user, never the password', async (t) => {
  const wrong = newSecret('X');
  const flags = await runTally(['jobs', '--server', server.url, '--user', 'reader', '--password', wrong], { env: cleanEnv() });
  t.is(flags.code, 1);
  t.is(flags.stderr, `tally: ${server.url}: cannot connect to NATS: authentication failed: wrong or unknown credentials for user 'reader'\n`);
  // Credentials in the URL work, and are masked when they fail.
  const url = server.url.replace('nats://', `nats://reader:${wrong}@`);
  const inUrl = await runTally(['jobs', '--server', url], { env: cleanEnv() });
  t.is(inUrl.code, 1);
  t.regex(inUrl.stderr, /authentication failed: wrong or unknown credentials for user 'reader'/);
  const good = await runTally(['jobs', '--server', server.url.replace('nats://', `nats://reader:${passwords.reader}@`), '--format', 'json'], { env: cleanEnv() });
  t.is(good.code, 0, good.stderr);
  // The worker command fails fast the same way, before forking anything.
  const worker = await runTally(['worker', '--server', server.url, '--processes', '1'], { env: cleanEnv({ NATS_USER: 'worker', NATS_PASSWORD: wrong }), timeoutMs: 30_000 });
  t.is(worker.code, 1);
  t.regex(worker.stderr, /authentication failed: wrong or unknown credentials for user 'worker'/);
  const none = await runTally(['jobs', '--server', server.url], { env: cleanEnv() });
  t.regex(none.stderr, /authentication failed: the server requires credentials/);
  assertNoSecrets(t, [...secrets, wrong], { flags: flags.stderr, url: inUrl.stderr, good: good.stdout + good.stderr, worker: worker.stdout + worker.stderr });
});

test('--help shows the credential options without any value, even with secrets in the environment', async (t) => {
  const env = cleanEnv({ NATS_USER: 'worker', NATS_PASSWORD: passwords.worker, NATS_TOKEN: passwords.reader, NATS_URL: server.url });
  for (const command of ['sum', 'count', 'jobs', 'result', 'worker']) {
    const run = await runTally([command, '--help'], { env });
    t.is(run.code, 0);
    for (const flag of ['--user', '--password', '--token', '--nkey', '--creds', '--tls-ca', '--tls-cert', '--tls-key']) t.true(run.stdout.includes(flag), `${command} --help lists ${flag}`);
    const secretLines = run.stdout.split('\n').filter((line) => /--(password|token|nkey|creds|tls-key)\b/.test(line));
    t.false(secretLines.some((line) => /\(default:/.test(line)), `${command}: no default shown for a secret option`);
    assertNoSecrets(t, secrets, { [`${command} --help`]: run.stdout + run.stderr });
  }
});

test('one way to authenticate at a time, and --user needs a server', async (t) => {
  const both = await runTally(['jobs', '--server', server.url, '--user', 'reader', '--password', passwords.reader, '--token', 'abc'], { env: cleanEnv() });
  t.is(both.code, 2);
  t.regex(both.stderr, /give one way to authenticate, not --user\/--password and --token/);
  const noServer = await runTally(['jobs', '--user', 'reader', '--password', passwords.reader], { env: cleanEnv() });
  t.is(noServer.code, 2);
  t.regex(noServer.stderr, /--user needs --server/);
  const missing = await runTally(['jobs', '--server', server.url, '--nkey', join(dir.path, 'nope.nk')], { env: cleanEnv() });
  t.is(missing.code, 2);
  t.regex(missing.stderr, /--nkey .*nope\.nk: cannot read it \(no such file\)/);
  assertNoSecrets(t, secrets, { both: both.stderr, noServer: noServer.stderr, missing: missing.stderr });
});

test('connection settings: credentials leave the URLs, flags win over the environment, nothing secret is displayed', (t) => {
  const env = { NATS_URL: 'nats://envuser:envpass@h1:4222', NATS_TLS_CA: '/dev/null' };
  const fromEnv = resolveConnection({}, env)!;
  t.deepEqual(fromEnv.servers, ['nats://h1:4222']);
  t.deepEqual(fromEnv.auth, { user: 'envuser', password: 'envpass' });
  t.deepEqual(fromEnv.tls, { caFile: '/dev/null' });
  t.is(inboxPrefixFor(fromEnv), '_INBOX_envuser');
  const flags = resolveConnection({ server: 'tls://a:1,b:2', user: 'u', password: 'p@ss' }, env)!;
  t.deepEqual(flags.servers, ['tls://a:1', 'nats://b:2']);
  t.deepEqual(flags.auth, { user: 'u', password: 'p@ss' });
  t.truthy(flags.tls, 'tls:// requires TLS');
  t.deepEqual(resolveConnection({ server: 'nats://s3cr3t@h:1' }, {})!.auth, { token: 's3cr3t' });
  t.is(displayServers(['nats://u:p@ss@h:1', 'nats://tok@h:2']), 'nats://***@h:1,nats://***@h:2');
  t.deepEqual(withoutSecrets({ servers: ['nats://h:1'], auth: { user: 'u', password: 'p', token: 't' } }), { servers: ['nats://h:1'], auth: { user: 'u' } });
  t.is(resolveConnection({}, {}), undefined, 'no server: the embedded default');
  t.throws(() => resolveConnection({ server: 'http://h:1' }, {}), { message: /unsupported scheme/ });
  t.throws(() => resolveConnection({ server: 'nats://h:1', user: 'u' }, {}), { message: /--user \(NATS_USER\) needs --password/ });
});

test('obj:// inputs: the coordinator puts and counts, a worker reads objects but cannot write or delete them, a reader only lists', async (t) => {
  const folder = tempDir('tally-security-obj-');
  t.teardown(() => folder.remove());
  const text = Buffer.from(Array.from({ length: 50_000 }, (_, i) => `w${i % 97} `).join(''));
  writeFileSync(join(folder.path, 'big.txt'), text);
  const put = await tallyAs('coordinator', ['put', join(folder.path, 'big.txt')]);
  t.is(put.code, 0, put.stderr);
  const ls = await tallyAs('reader', ['ls', 'obj://tally-inputs', '--format', 'json']);
  t.is(ls.code, 0, ls.stderr);
  t.deepEqual((JSON.parse(ls.stdout) as Array<{ name: string; size: number }>).map((row) => [row.name, row.size]), [['big.txt', text.length]]);
  // Workers without --read-files: what they may read of objects is what the permissions say.
  const fleet = spawnTally(['worker', '--server', server.url, '--processes', '1', '--log-level', 'warn'], { env: cleanEnv({ NATS_USER: 'worker', NATS_PASSWORD: passwords.worker }) });
  const fleetDone = collect(fleet, Date.now(), 120_000);
  t.teardown(() => void fleet.kill('SIGKILL'));
  const count = await tallyAs('coordinator', ['count', 'obj://tally-inputs', '--chunk-size', '100000', '--format', 'json', '--no-progress']);
  fleet.kill('SIGTERM');
  const workerRun = await fleetDone;
  t.is(count.code, 0, `${count.stderr}\nworker: ${workerRun.stderr}`);
  t.is((JSON.parse(count.stdout) as { totalWords: number }).totalWords, 50_000);
  t.notRegex(workerRun.stderr, /[Pp]ermission/);
  // A worker can neither write nor delete inputs.
  const nc = await as('worker');
  await assertDenied(t, jetstream(nc).publish('$O.tally-inputs.C.abc', 'x'), '$O.tally-inputs.C.abc', 'writing an input chunk');
  await assertDenied(t, (await jetstreamManager(nc)).streams.purge('OBJ_tally-inputs'), '$JS.API.STREAM.PURGE.OBJ_tally-inputs', 'deleting inputs');
  // A reader lists, but cannot read an object's chunks or delete one.
  const reader = await as('reader');
  await assertDenied(t, (await jetstreamManager(reader)).direct.getMessage('OBJ_tally-inputs', { seq: 1 }), '$JS.API.DIRECT.GET.OBJ_tally-inputs', 'reading an input chunk');
  const rm = await tallyAs('reader', ['rm', 'obj://tally-inputs/big.txt']);
  t.not(rm.code, 0);
  t.regex(rm.stderr, /permission denied publishing to \$JS\.API\.STREAM\.(MSG\.GET|PURGE)\.OBJ_tally-inputs/);
});

test('a bucket other than tally-inputs: the shipped roles refuse it with one line naming the bucket and the denied subject', async (t) => {
  const folder = tempDir('tally-security-bucket-');
  t.teardown(() => folder.remove());
  writeFileSync(join(folder.path, 'notes.txt'), 'one two three\n');
  const put = await tallyAs('coordinator', ['put', join(folder.path, 'notes.txt'), '--bucket', 'other']);
  t.is(put.code, 1);
  t.regex(put.stderr, /^tally: nats:\/\/\S+: permission denied publishing to \$JS\.API\.STREAM\.[A-Z]+\.OBJ_other \(bucket 'other' is not in this user's permissions: each bucket needs its own entries in each role; see docs\/SECURITY\.md, "Tasks that name objects"\)\n$/);
  const count = await tallyAs('coordinator', ['count', 'obj://other', '--no-progress']);
  t.is(count.code, 1);
  t.regex(count.stderr, /^tally: nats:\/\/\S+: permission denied publishing to \$JS\.API\.STREAM\.INFO\.OBJ_other \(bucket 'other' is not in this user's permissions: .*\)\n$/);
  const ls = await tallyAs('reader', ['ls', 'obj://other']);
  t.is(ls.code, 1);
  t.regex(ls.stderr, /^tally: nats:\/\/\S+: permission denied publishing to \$JS\.API\.STREAM\.INFO\.OBJ_other \(bucket 'other' /);
});

/** The shipped permissions.conf split by role (its TALLY_<ROLE> blocks, in that order). */
function shippedRoles(): Record<Role, string> {
  const text = readFileSync(secureConfig('permissions.conf'), 'utf8');
  const worker = text.indexOf('TALLY_WORKER = {');
  const reader = text.indexOf('TALLY_READER = {');
  return { coordinator: text.slice(0, worker), worker: text.slice(worker, reader), reader: text.slice(reader) };
}

/** A role's allow entries for the bucket `tally-inputs`, a line each, trimmed. */
function inputEntries(block: string): string[] {
  return block
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line.startsWith('"') && line.includes('tally-inputs'));
}

/** docs/SECURITY.md's block of entries for a bucket of one's own ("BUCKET"), by role. */
function documentedBucketEntries(): Record<Role, string[]> {
  const doc = readFileSync(join(REPO_ROOT, 'docs', 'SECURITY.md'), 'utf8');
  const block = /\*\*A bucket of your own\.\*\*[\s\S]*?```conf\n([\s\S]*?)```/.exec(doc)?.[1] ?? '';
  const entries: Record<Role, string[]> = { coordinator: [], worker: [], reader: [] };
  let role: Role | undefined;
  for (const line of block.split('\n')) {
    const heading = /^# TALLY_(COORDINATOR|WORKER|READER)\b/.exec(line);
    if (heading) role = heading[1]!.toLowerCase() as Role;
    else if (line.startsWith('"') && role) entries[role].push(line);
  }
  return entries;
}

test('the documented entries of a bucket of one\'s own are the shipped tally-inputs entries of each role', (t) => {
  const documented = documentedBucketEntries();
  const shipped = shippedRoles();
  for (const role of ['coordinator', 'worker', 'reader'] as const) {
    t.true(documented[role].length > 0, role);
    t.deepEqual(
      documented[role].map((line) => line.replaceAll('BUCKET', 'tally-inputs')),
      inputEntries(shipped[role]),
      role,
    );
  }
});

/**
 * The shipped configuration, with docs/SECURITY.md's entries for `bucket` added to the
 * coordinator's role only: the worker's stays as shipped.
 */
function configWithCoordinatorBucket(dir: string, bucket: string): string {
  const roles = shippedRoles();
  const last = inputEntries(roles.coordinator).at(-1)!;
  const added = documentedBucketEntries().coordinator.map((line) => line.replaceAll('BUCKET', bucket));
  const coordinator = roles.coordinator.replace(last, [last, ...added].join('\n'));
  const users = readFileSync(secureConfig('users.conf'), 'utf8').replace('include ./permissions.conf', '');
  const path = join(dir, 'tally.conf');
  // nats-server includes only relative paths: tally's limits are copied in.
  writeFileSync(path, `${readFileSync(join(SECURE_CONFIG_DIR, '..', 'tally.conf'), 'utf8')}\n${coordinator}${roles.worker}${roles.reader}\n${users}`);
  return path;
}

test('a worker with the shipped role fails a count of another bucket with one line naming the bucket and the denied subject', async (t) => {
  const folder = tempDir('tally-security-bucket-worker-');
  t.teardown(() => folder.remove());
  const own = await startSecureServer(configWithCoordinatorBucket(folder.path, 'other'), {
    TALLY_COORDINATOR_PASSWORD: configString(passwords.coordinator),
    TALLY_WORKER_PASSWORD: configString(passwords.worker),
    TALLY_READER_PASSWORD: configString(passwords.reader),
  });
  t.teardown(() => own.stop());
  const as = (role: Role, args: string[]) => runTally([...args, '--server', own.url], { env: cleanEnv({ NATS_USER: role, NATS_PASSWORD: passwords[role] }), timeoutMs: 60_000 });
  writeFileSync(join(folder.path, 'notes.txt'), 'one two three\n');
  const put = await as('coordinator', ['put', join(folder.path, 'notes.txt'), '--bucket', 'other']);
  t.is(put.code, 0, put.stderr);
  const fleet = spawnTally(['worker', '--server', own.url, '--processes', '1', '--log-level', 'silent'], { env: cleanEnv({ NATS_USER: 'worker', NATS_PASSWORD: passwords.worker }) });
  const fleetDone = collect(fleet, Date.now(), 120_000);
  t.teardown(() => void fleet.kill('SIGKILL'));
  const count = await as('coordinator', ['count', 'obj://other', '--no-progress']);
  fleet.kill('SIGTERM');
  await fleetDone;
  t.is(count.code, 1);
  // Only the one line says it: no warning either (the job's results are removed one by one on
  // nats-server 2.9, which the coordinator role allows).
  const said = count.stderr.split('\n').filter((line) => line !== '');
  t.is(said.length, 1, count.stderr);
  t.regex(
    `${said[0]}\n`,
    /^tally: job \S+ failed on obj:\/\/other\/notes\.txt bytes 0-\d+: obj:\/\/other\/notes\.txt: this worker's NATS user may not read bucket 'other' \(permission denied publishing to \$JS\.API\.STREAM\.INFO\.OBJ_other; each bucket needs its own entries in the worker role: see docs\/SECURITY\.md, "Tasks that name objects"\)\n$/,
  );
});
