/**
 * A coordinator on another "machine" whose link to the server dies without a word (network
 * namespaces; see helpers/netns.ts): the nats-server and the workers run in the hub namespace,
 * the cut-off coordinator in a host namespace of its own.
 *
 * - It gives up after TALLY_SERVER_LOST_MS with the documented line and exit 1, leaving a job
 *   that `tally resume` finishes with the exact counts.
 * - Resumed elsewhere while it is cut off (which needs --force: it may still be alive), it finds
 *   out when its link comes back that the job is no longer its own, and stops without touching
 *   the job: the record and result stay those of the coordinator that finished it.
 * - Read commands against a server behind a dead route fail within the connect timeout and exit
 *   then, not when the kernel gives up dialling.
 *
 * Needs root and `ip netns`; under CI=true their absence fails the run instead of skipping.
 */
import test from 'ava';
import { execFileSync, type ChildProcess } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startNatsServer, type NatsServerProcess } from '../coordinator/nats-server.js';
import { REPO_ROOT, TALLY_BIN, cleanEnv, collect, tempDir, type RunResult } from './helpers/tally.js';
import { TestNetwork } from './helpers/netns.js';
import { missingNetns, testNeeding } from './helpers/capability.js';
import { referenceWhitespaceCount } from './helpers/reference-counter.js';

const reason = missingNetns();
let net: TestNetwork;
let host: { ns: string; hubAddress: string };
let store: { path: string; remove(): void };
let corpus: { path: string; remove(): void };
let server: NatsServerProcess;
let text: Buffer;
const fleets: ChildProcess[] = [];

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** `tally ARGS` in namespace `ns` against `url`. */
function tallyIn(ns: string, url: string, args: string[], env: NodeJS.ProcessEnv = {}): { child: ChildProcess; done: Promise<RunResult> } {
  const child = net.spawn(ns, process.execPath, [TALLY_BIN, ...args, '--server', url, '--no-progress'], { cwd: REPO_ROOT, env: cleanEnv(env) });
  return { child, done: collect(child, Date.now(), 150_000) };
}

const inHub = (args: string[]) => tallyIn(net.hub, server.url, args).done;
const fromHost = (args: string[], env: NodeJS.ProcessEnv = {}) => tallyIn(host.ns, `nats://${host.hubAddress}:${server.port}`, args, env);

function startFleet(): void {
  const child = net.spawn(net.hub, process.execPath, [TALLY_BIN, 'worker', '--server', server.url, '--processes', '2', '--log-level', 'error'], { cwd: REPO_ROOT, env: cleanEnv() });
  child.stdout!.resume();
  child.stderr!.resume();
  fleets.push(child);
}

async function stopFleets(): Promise<void> {
  await Promise.all(
    fleets.splice(0).map(
      (child) =>
        new Promise((resolve) => {
          if (child.exitCode !== null || child.signalCode !== null) return resolve(null);
          child.once('exit', resolve);
          child.kill('SIGTERM');
        }),
    ),
  );
}

/** The newest job record in the store once one is running, read from the hub. */
async function runningJob(): Promise<string> {
  for (let i = 0; i < 300; i++) {
    const run = await inHub(['jobs', '--format', 'json']);
    const jobs = run.code === 0 ? (JSON.parse(run.stdout) as Array<{ id: string; status: string; progress: { tasksDone: number } }>) : [];
    const running = jobs.find((job) => job.status === 'running');
    if (running) return running.id;
    await sleep(100);
  }
  throw new Error('no job started running');
}

async function jobRecord(job: string): Promise<{ status: string; coordinator: string }> {
  const run = await inHub(['jobs', '--format', 'json']);
  return (JSON.parse(run.stdout) as Array<{ id: string; status: string; coordinator: string }>).find((record) => record.id === job)!;
}

/** The counts tally must print, from a counter written independently of tally's tokenizer. */
function expected(): { totalWords: number; counts: Array<[string, number]> } {
  // Computed once: the same text each time.
  if (truthCache) return truthCache;
  const truth = referenceWhitespaceCount([text], { caseSensitive: true });
  const wc = Number(execFileSync('wc', ['-w'], { input: text, env: { ...process.env, LC_ALL: 'C' }, encoding: 'utf8' }).trim());
  if (wc !== truth.totalWords) throw new Error(`the reference counter (${truth.totalWords}) disagrees with wc -w (${wc})`);
  truthCache = { totalWords: truth.totalWords, counts: truth.counts };
  return truthCache;
}
let truthCache: { totalWords: number; counts: Array<[string, number]> } | undefined;

/** Rows where two count tables differ (a deep comparison of 10^5 rows overflows ava's differ). */
function differences(actual: Array<[string, number]>, wanted: Array<[string, number]>): string[] {
  const out: string[] = [];
  for (let i = 0; i < Math.max(actual.length, wanted.length) && out.length < 5; i++) {
    if (JSON.stringify(actual[i]) !== JSON.stringify(wanted[i])) out.push(`row ${i}: ${JSON.stringify(actual[i])} instead of ${JSON.stringify(wanted[i])}`);
  }
  return out;
}

const countArgs = () => ['count', join(corpus.path, 'big.txt'), '--tokenizer', 'whitespace', '--case-sensitive', '--format', 'json', '--top', '0', '--chunk-size', '64K'];

if (reason !== null) {
  testNeeding(reason, 'a coordinator cut off from its server (network namespaces)', () => undefined);
} else {
  test.before(async () => {
    net = new TestNetwork();
    host = net.addHost('coord', '10.211.1');
    store = tempDir('tally-partition-store-');
    corpus = tempDir('tally-partition-');
    const parts = ['de', 'ru', 'ja', 'fr'].map((l) => readFileSync(join(REPO_ROOT, 'node_modules', 'typescript', 'lib', l, 'diagnosticMessages.generated.json')));
    text = Buffer.concat(parts);
    writeFileSync(join(corpus.path, 'big.txt'), text);
    const wrapper = net.serverWrapper(store.path);
    const previous = process.env.TALLY_NATS_SERVER;
    process.env.TALLY_NATS_SERVER = wrapper;
    try {
      server = await startNatsServer({ storeDir: join(store.path, 'js'), host: '0.0.0.0' });
    } finally {
      if (previous === undefined) delete process.env.TALLY_NATS_SERVER;
      else process.env.TALLY_NATS_SERVER = previous;
    }
  });

  test.after.always(async () => {
    await stopFleets();
    await server?.stop();
    net?.remove();
    store?.remove();
    corpus?.remove();
  });

  test.afterEach.always(async () => {
    await stopFleets();
    net.restore(host.ns);
  });

  test.serial('a coordinator cut off from the server gives up after TALLY_SERVER_LOST_MS with one line and exit 1; tally resume finishes the job exactly', async (t) => {
    // No worker yet: the job waits for one, so it is surely running when its link dies.
    const coordinator = fromHost(countArgs(), { TALLY_SERVER_LOST_MS: '4000' });
    const job = await runningJob();
    const cutAt = Date.now();
    net.cut(host.ns);
    t.teardown(() => net.restore(host.ns));
    const run = await coordinator.done;
    const gaveUpAfter = Date.now() - cutAt;
    t.log(`gave up ${gaveUpAfter} ms after the cut (TALLY_SERVER_LOST_MS 4000)`);
    t.is(run.code, 1, run.stderr);
    t.regex(run.stderr, new RegExp(`^tally: nats://${host.hubAddress.replace(/\./g, '\\.')}:\\d+: connection lost for 4 s; once the server is back, \`tally resume ${job}\` finishes the job\\n$`));
    // The documented limit, not the minutes a dialling socket or a retrying publish would take.
    t.true(gaveUpAfter < 20_000, `gave up after ${gaveUpAfter} ms`);
    net.restore(host.ns);

    t.is((await jobRecord(job)).status, 'running', 'the job is left for tally resume');
    startFleet();
    const resumed = await inHub(['resume', job, '--format', 'json', '--top', '0']);
    t.is(resumed.code, 0, resumed.stderr);
    const result = JSON.parse(resumed.stdout);
    const truth = expected();
    t.is(result.job, job);
    t.is(result.totalWords, truth.totalWords);
    t.deepEqual(differences(result.counts, truth.counts), []);
    await stopFleets();
  });

  test.serial('a coordinator resumed elsewhere while cut off stops when its link returns, without touching the job', async (t) => {
    // It would wait minutes before giving up: the link comes back long before that.
    const stale = fromHost(countArgs(), { TALLY_SERVER_LOST_MS: '600000' });
    const job = await runningJob();
    const staleName = (await jobRecord(job)).coordinator;
    net.cut(host.ns);
    t.teardown(() => net.restore(host.ns));

    // It may still be alive (it is): taking its job needs --force.
    const refused = await inHub(['resume', job, '--format', 'json', '--top', '0']);
    t.is(refused.code, 2, refused.stderr);
    t.regex(refused.stderr, /still being run by process .*; use --force to take it over\n$/);

    startFleet();
    const resumed = await inHub(['resume', job, '--force', '--format', 'json', '--top', '0']);
    t.is(resumed.code, 0, resumed.stderr);
    const result = JSON.parse(resumed.stdout);
    const truth = expected();
    t.is(result.totalWords, truth.totalWords);
    t.deepEqual(differences(result.counts, truth.counts), []);
    const finished = await jobRecord(job);
    t.is(finished.status, 'done');
    t.not(finished.coordinator, staleName);
    t.is(stale.child.exitCode, null, 'the cut-off coordinator was still running when the job was finished elsewhere');

    net.restore(host.ns);
    const restoredAt = Date.now();
    const run = await stale.done;
    t.log(`the stale coordinator stopped ${Date.now() - restoredAt} ms after its link came back`);
    t.is(run.code, 1, run.stderr);
    t.is(run.stderr, `tally: job ${job} was taken over by the coordinator ${finished.coordinator} (tally resume); this one stopped without touching the job\n`);
    t.is(run.stdout, '');
    // The record and result are still those of the coordinator that finished the job.
    const after = await jobRecord(job);
    t.is(after.status, 'done');
    t.is(after.coordinator, finished.coordinator);
    const stored = await inHub(['result', job, '--format', 'json', '--top', '0']);
    t.is(stored.code, 0, stored.stderr);
    t.is(stored.stdout, resumed.stdout);
    await stopFleets();
  });

  test.serial('read commands against a server behind a dead route fail within the connect timeout and exit at once', async (t) => {
    net.cut(host.ns);
    t.teardown(() => net.restore(host.ns));
    for (const command of [['jobs'], ['workers'], ['result', 'abc-123']]) {
      const run = await fromHost(command).done;
      t.is(run.code, 1, run.stderr);
      t.regex(run.stderr, /^tally: nats:\/\/10\.211\.1\.1:\d+: cannot connect to NATS: timed out\n$/);
      // The kernel goes on dialling such a server for about two minutes.
      t.true(run.ms < 20_000, `${command[0]} exited after ${run.ms} ms`);
    }
  });
}
