/**
 * The reduce runs on the workers: each of R reduce tasks folds one partition of every map
 * task's output, read back from the shuffle stream, and stores a sorted part. Faults while the
 * reducers run, with real processes and signals, each result compared with an independent count
 * of a high-cardinality text (most words distinct, as in logs or ids):
 *
 *   a reducer SIGKILLed mid-reduce; every worker killed at once and a new fleet started later;
 *   nats-server restarted while the reducers run; two high-cardinality jobs at once.
 *
 * Reduce tasks are slowed by a test hook so that the faults surely land while they run; the
 * ack wait is 2 s so that a dead reducer's task comes back quickly.
 */
import test from 'ava';
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { jetstream } from '@nats-io/jetstream';
import { PartialsWriter } from '../shared/nats/partials.js';
import { startNatsServer, type NatsServerProcess } from '../coordinator/nats-server.js';
import { cleanEnv, collect, runTally, spawnTally, startWorkers, tempDir, type WorkerFleet } from './helpers/tally.js';

const REDUCE_MS = 1500;
const env = cleanEnv({ TALLY_ACK_WAIT_MS: '2000', TALLY_TEST_HOOKS: JSON.stringify({ busyReduceMs: REDUCE_MS }) });
let store: { path: string; remove(): void };
let corpus: { path: string; remove(): void };
let server: NatsServerProcess;
let fleet: WorkerFleet;
let watcher: NatsConnection;
/** Reduce tasks seen going out: "job/partition". */
const reduceTasks: string[] = [];

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * A text where most words are distinct: `count` ids like "id-<n>" (and every seventh one again,
 * in upper case, so that folding and repeats matter), with what the count must say, computed
 * here from the generating loop (not by a tokenizer).
 */
function highCardinality(name: string, count: number, salt: string): { path: string; totalWords: number; counts: Map<string, number> } {
  const lines: string[] = [];
  const counts = new Map<string, number>();
  for (let n = 0; n < count; n++) {
    const word = `${salt}${n.toString(36)}x${(n * 7919) % 1000}`;
    lines.push(word);
    counts.set(word, (counts.get(word) ?? 0) + 1);
    if (n % 7 === 0) {
      lines.push(word.toUpperCase());
      counts.set(word, counts.get(word)! + 1);
    }
  }
  const path = join(corpus.path, name);
  writeFileSync(path, lines.join('\n') + '\n');
  return { path, totalWords: lines.length, counts };
}

let textA: ReturnType<typeof highCardinality>;
let textB: ReturnType<typeof highCardinality>;

test.before(async () => {
  store = tempDir('tally-reducers-store-');
  corpus = tempDir('tally-reducers-');
  server = await startNatsServer({ storeDir: store.path });
  fleet = startWorkers(server.url, 2, env);
  textA = highCardinality('ids-a.txt', 300_000, 'a');
  textB = highCardinality('ids-b.txt', 200_000, 'b');
  watcher = await connect({ servers: server.url, maxReconnectAttempts: -1, reconnectTimeWait: 200 });
  watcher.subscribe('tally.task.>', {
    callback: (_error, message) => {
      const head = new TextDecoder().decode(message.data.subarray(0, 4096));
      const reduce = /"reduce":\{"partition":(\d+)/.exec(head);
      if (reduce) reduceTasks.push(`${message.subject.split('.')[2]}/${reduce[1]}`);
    },
  });
  await watcher.flush();
});

test.after.always(async () => {
  await watcher?.close().catch(() => undefined);
  await fleet?.stop();
  await server?.stop();
  store?.remove();
  corpus?.remove();
});

const countArgs = (path: string) => ['count', path, '--format', 'tsv', '--top', '0', '--chunk-size', '256K', '--reducers', '3', '--server', server.url];

/** The tsv a correct count prints: count descending, then words in code point order. */
function expectedTsv(text: ReturnType<typeof highCardinality>): string {
  const rows = [...text.counts.entries()].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  return rows.map(([word, n]) => `${word}\t${n}\n`).join('');
}

/** The worker processes of the current fleet. */
function workerPids(): number[] {
  try {
    return execFileSync('pgrep', ['-P', String(fleet.child.pid)], { encoding: 'utf8' }).trim().split('\n').filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

/** Waits until the reduce tasks of a job have gone out; returns the job id. */
async function reducing(before: number): Promise<string> {
  for (let i = 0; i < 3000 && reduceTasks.length <= before; i++) await sleep(10);
  if (reduceTasks.length <= before) throw new Error('no reduce task went out');
  return reduceTasks[before]!.split('/')[0]!;
}

test.serial('a reducer SIGKILLed mid-reduce: its task goes to another worker, which reads the same map outputs again; the counts are exact', async (t) => {
  const before = reduceTasks.length;
  const child = spawnTally(countArgs(textA.path), { env });
  const running = collect(child);
  await reducing(before);
  // Both processes are in a reduce task's slowed start now (three tasks, two processes).
  await sleep(REDUCE_MS / 3);
  const victim = workerPids()[0]!;
  process.kill(victim, 'SIGKILL');
  const run = await running;
  t.is(run.code, 0, run.stderr);
  t.true(run.stdout === expectedTsv(textA), 'the table equals the independent count');
  t.log(`killed reducer ${victim}; job ${run.ms} ms`);
});

test.serial('every worker killed at once mid-reduce, a new fleet started later: the job waits, then completes exactly', async (t) => {
  const before = reduceTasks.length;
  const child = spawnTally(countArgs(textA.path), { env });
  const running = collect(child);
  await reducing(before);
  await sleep(REDUCE_MS / 3);
  const pids = workerPids();
  fleet.child.kill('SIGKILL');
  for (const pid of pids) process.kill(pid, 'SIGKILL');
  await fleet.stop();
  await sleep(3000);
  t.is(child.exitCode, null, 'the job waits for workers');
  fleet = startWorkers(server.url, 2, env);
  const run = await running;
  t.is(run.code, 0, run.stderr);
  t.true(run.stdout === expectedTsv(textA), 'the table equals the independent count');
});

test.serial('nats-server restarted (SIGTERM) while the reducers run: they read the map outputs again and the counts are exact', async (t) => {
  const before = reduceTasks.length;
  const child = spawnTally(countArgs(textB.path), { env });
  const running = collect(child);
  await reducing(before);
  await sleep(REDUCE_MS / 3);
  const port = server.port;
  await server.stop();
  await sleep(1000);
  server = await startNatsServer({ storeDir: store.path, port });
  const run = await running;
  t.is(run.code, 0, run.stderr);
  t.true(run.stdout === expectedTsv(textB), 'the table equals the independent count');
});

test.serial('two high-cardinality jobs at once on one fleet: both exact, each reading only its own map outputs', async (t) => {
  const [a, b] = await Promise.all([runTally(countArgs(textA.path), { env }), runTally(countArgs(textB.path), { env })]);
  t.is(a.code, 0, a.stderr);
  t.is(b.code, 0, b.stderr);
  t.true(a.stdout === expectedTsv(textA), 'job A equals its independent count');
  t.true(b.stdout === expectedTsv(textB), 'job B equals its independent count');
});

test.serial('--reducers: 0, a fraction, text or more than 256 is refused at once with one line and exit 2', async (t) => {
  for (const value of ['0', '1.5', 'two', '257', '-1']) {
    const run = await runTally(['count', textB.path, '--reducers', value, '--server', server.url], { env });
    t.is(run.code, 2, `${value}: ${run.stderr}`);
    t.regex(run.stderr, /^tally: --reducers: .*\n$/, value);
    t.is(run.stdout, '');
  }
  // The summary in json names the words and totals exactly, whatever the partitions.
  const one = await runTally(['count', textB.path, '--reducers', '1', '--format', 'json', '--top', '5', '--server', server.url], { env });
  // Three, not more: each reduce task here busy-waits 1.5 s (the fleet's test hook) against a
  // 2 s ack wait, and a task pulled while another runs can be delivered elsewhere meanwhile;
  // seven on two workers reached max_deliver on a loaded machine.
  const many = await runTally(['count', textB.path, '--reducers', '3', '--format', 'json', '--top', '5', '--server', server.url], { env });
  t.is(one.code, 0, one.stderr);
  t.is(many.code, 0, many.stderr);
  const drop = (stdout: string) => {
    const { job: _job, ...rest } = JSON.parse(stdout);
    return rest;
  };
  t.deepEqual(drop(one.stdout), drop(many.stdout));
  t.is(JSON.parse(one.stdout).uniqueWords, textB.counts.size);
  t.is(JSON.parse(one.stdout).totalWords, textB.totalWords);
});

test.serial('a part whose chunks are refused (here: no such bucket) fails its store once, with no unhandled rejection left behind to end the process', async (t) => {
  const unhandled: unknown[] = [];
  const note = (reason: unknown) => unhandled.push(reason);
  process.on('unhandledRejection', note);
  t.teardown(() => process.off('unhandledRejection', note));
  const nc = await connect({ servers: server.url });
  t.teardown(() => nc.close());
  // 1 KiB chunks: 64 of them, more than the 32 in flight at once.
  const writer = new PartialsWriter(jetstream(nc), 'no-such-bucket', 2048);
  await t.throwsAsync(writer.putPieces('job.part-0', [new Uint8Array(64 * 1024)]));
  // Every chunk's refusal has come back by now (each is one round trip on loopback).
  await nc.flush();
  await sleep(200);
  t.deepEqual(unhandled, []);
});
