/**
 * A 3-node NATS cluster on loopback (config/nats/cluster.conf): tally creates its streams, KV
 * bucket and object stores with 3 replicas, and a job survives losing one node mid-job (the
 * node its coordinator is connected to; the leader of the workers' consumer) with the result of
 * a fault-free run. Clients are given all three URLs. The killed node is started again after
 * each test. The longest pause in results after the kill is logged as the time to recover.
 */
import test from 'ava';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { jetstreamManager } from '@nats-io/jetstream';
import { REPO_ROOT, cleanEnv, collect, runTally, spawnTally, startWorkers, tempDir, type WorkerFleet } from './helpers/tally.js';
import { startCluster, waitForJetStream, type TestCluster } from './helpers/cluster.js';

// Shorter than the default (30 s) so that tasks lost with a node come back soon, but long
// enough that the 5 deliveries a task may take outlast the cluster's recovery: a killed leader
// paused results for 20-35 s on a loaded 2-core machine, and with 3 s a reduce task redelivered
// through that pause ran out of deliveries once (the job failed in a CI run).
const env = cleanEnv({ TALLY_ACK_WAIT_MS: '10000', TALLY_TEST_HOOKS: JSON.stringify({ busyMs: 20 }) });
let cluster: TestCluster;
let fleet: WorkerFleet;
let corpus: { path: string; remove(): void };
let watchers: NatsConnection[] = [];
/** First time each result subject was seen by any node's watcher. */
const results = new Map<string, number>();
let clean: { stdout: string; ms: number; tasks: number };

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

test.before(async () => {
  cluster = await startCluster();
  corpus = tempDir('tally-cluster-corpus-');
  const parts = ['de', 'ru', 'ja', 'fr'].map((l) => readFileSync(join(REPO_ROOT, 'node_modules', 'typescript', 'lib', l, 'diagnosticMessages.generated.json')));
  writeFileSync(join(corpus.path, 'big.txt'), Buffer.concat([...parts, ...parts]));
  // One watcher per node, so that results stay visible whichever node dies.
  for (const spec of cluster.specs) {
    const nc = await connect({ servers: `nats://127.0.0.1:${spec.clientPort}`, maxReconnectAttempts: -1, reconnectTimeWait: 250 });
    nc.subscribe('tally.result.>', { callback: (_e, m) => void (results.has(m.subject) || results.set(m.subject, Date.now())) });
    watchers.push(nc);
  }
  fleet = startWorkers(cluster.urls, 2, env);
});

test.after.always(async () => {
  for (const nc of watchers) await nc.close().catch(() => undefined);
  await fleet?.stop();
  await cluster?.stop();
  corpus?.remove();
});

const countArgs = () => ['count', join(corpus.path, 'big.txt'), '--format', 'json', '--top', '0', '--chunk-size', '16K', '--server', cluster.urls];

function withoutJob(stdout: string): unknown {
  const { job: _job, ...rest } = JSON.parse(stdout);
  return rest;
}

async function resultsOf(job: string): Promise<number[]> {
  return [...results.entries()].filter(([subject]) => subject.startsWith(`tally.result.${job}.`)).map(([, at]) => at);
}

/** The cluster node (index) that the connection named `name` is attached to, via /connz. */
async function nodeOfConnection(name: string): Promise<number> {
  for (const [i, node] of cluster.nodes.entries()) {
    if (!node?.monitorUrl) continue;
    const connz = (await (await fetch(`${node.monitorUrl}/connz?limit=1024`)).json()) as { connections?: Array<{ name?: string }> };
    if (connz.connections?.some((c) => c.name === name)) return i;
  }
  return -1;
}

/** Starts the job, waits for `afterResults` results, kills node `pick()`; returns run and timings. */
async function killNodeMidJob(pick: () => Promise<number>, afterResults = 60) {
  const earlier = new Set([...results.keys()].map((s) => s.split('.')[2]!));
  const child = spawnTally(countArgs(), { env });
  const running = collect(child, Date.now(), 150_000);
  let job = '';
  for (let i = 0; i < 600 && child.exitCode === null; i++) {
    await sleep(50);
    const jobs = [...results.keys()].map((s) => s.split('.')[2]!);
    const counts = new Map<string, number>();
    for (const j of jobs) counts.set(j, (counts.get(j) ?? 0) + 1);
    const current = [...counts.entries()].find(([j, n]) => n >= afterResults && !earlier.has(j));
    if (current) {
      job = current[0];
      break;
    }
  }
  if (!job) {
    child.kill('SIGKILL');
    throw new Error(`the job did not reach ${afterResults} results: ${(await running).stderr}\nworkers: ${fleet.stderr()}`);
  }
  const victim = await pick();
  if (victim < 0) child.kill('SIGKILL');
  const name = cluster.specs[victim]!.name;
  const before = (await resultsOf(job)).length;
  const killedAt = Date.now();
  await cluster.kill(victim);
  const run = await running;
  // The longest pause in this job's results from the kill on: how long the cluster took to
  // deliver work again (elections, redelivery after the ack wait, clients reconnecting).
  const times = [killedAt, ...(await resultsOf(job)).filter((at) => at > killedAt).sort((a, b) => a - b)];
  const pauseMs = Math.max(...times.slice(1).map((at, i) => at - times[i]!), 0);
  return { run, name, before, pauseMs, victim };
}

/** Starts node `i` again and waits until JetStream answers and the streams are replicated. */
async function heal(i: number): Promise<void> {
  await cluster.restart(i);
  await waitForJetStream(cluster.urls, { placeR3: true });
  const nc = await connect({ servers: cluster.urls.split(','), maxReconnectAttempts: -1 });
  try {
    const jsm = await jetstreamManager(nc);
    for (let attempt = 0; attempt < 120; attempt++) {
      const infos = await Promise.all(['TALLY_TASKS', 'TALLY_RESULTS', 'KV_tally-jobs'].map((s) => jsm.streams.info(s).catch(() => null)));
      const current = infos.every((info) => info?.cluster?.leader && (info.cluster.replicas ?? []).length === 2 && info.cluster.replicas!.every((r) => r.current));
      if (current) return;
      await sleep(250);
    }
  } finally {
    await nc.close();
  }
}

test.serial('a fault-free run on the cluster creates streams, consumer, KV and object stores with 3 replicas', async (t) => {
  const run = await runTally(countArgs(), { env });
  // The first use of a brand-new cluster: creating five R3 streams and a consumer on a loaded
  // machine can outlast the JetStream API timeout, which the coordinator and workers retry.
  t.is(run.code, 0, `${run.stderr}\nworkers: ${fleet.stderr()}`);
  clean = { stdout: run.stdout, ms: run.ms, tasks: JSON.parse(run.stdout).tasks };
  t.log(`fault-free: ${clean.tasks} tasks in ${run.ms} ms`);
  t.true(clean.tasks >= 150, `${clean.tasks} tasks`);
  const nc = await connect({ servers: cluster.urls.split(',') });
  t.teardown(() => nc.close());
  const jsm = await jetstreamManager(nc);
  for (const stream of ['TALLY_TASKS', 'TALLY_RESULTS', 'KV_tally-jobs', 'OBJ_tally-results', 'OBJ_tally-partials']) {
    const info = await jsm.streams.info(stream);
    t.is(info.config.num_replicas, 3, stream);
    t.is(info.cluster?.replicas?.length, 2, `${stream} has a leader and two followers`);
  }
  const consumer = await jsm.consumers.info('TALLY_TASKS', 'tally-workers');
  t.is(consumer.cluster?.replicas?.length, 2, 'the workers consumer is replicated on all three nodes');
});

test.serial('the node the coordinator is connected to is killed mid-job: the result is identical', async (t) => {
  const { run, name, before, pauseMs, victim } = await killNodeMidJob(() => nodeOfConnection('tally-coordinator'));
  t.not(victim, -1, 'found the coordinator connection');
  t.is(run.code, 0, run.stderr);
  t.true(before > 0 && before < clean.tasks, `killed mid-job (${before} of ${clean.tasks} results before)`);
  t.deepEqual(withoutJob(run.stdout), withoutJob(clean.stdout));
  t.log(`killed ${name} after ${before} results; longest pause in results ${pauseMs} ms; job ${run.ms} ms, ${run.ms - clean.ms} ms more than fault-free`);
  await heal(victim);
});

test.serial('the leader of the workers consumer (and its stream) is killed mid-job: the result is identical', async (t) => {
  const nc = await connect({ servers: cluster.urls.split(',') });
  t.teardown(() => nc.close());
  const jsm = await jetstreamManager(nc);
  let leaders = '';
  const { run, name, before, pauseMs, victim } = await killNodeMidJob(async () => {
    const consumer = await jsm.consumers.info('TALLY_TASKS', 'tally-workers');
    const stream = await jsm.streams.info('TALLY_TASKS');
    leaders = `consumer leader ${consumer.cluster?.leader}, stream leader ${stream.cluster?.leader}`;
    return cluster.indexOf(consumer.cluster?.leader ?? '');
  });
  t.not(victim, -1, 'found the consumer leader');
  t.is(run.code, 0, run.stderr);
  t.true(before > 0 && before < clean.tasks, `killed mid-job (${before} of ${clean.tasks} results before)`);
  t.deepEqual(withoutJob(run.stdout), withoutJob(clean.stdout));
  t.log(`killed ${name} (${leaders}) after ${before} results; longest pause in results ${pauseMs} ms; job ${run.ms} ms, ${run.ms - clean.ms} ms more than fault-free`);
  await heal(victim);
});
