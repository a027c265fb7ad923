/**
 * The embedded coordinator's stand-in worker (coordinator/embedded/stand-in.ts): while the
 * worker processes start, the coordinator's own process takes the job's tasks from the same
 * consumer: with --workers, until a worker process is ready; without it, beside one process
 * fewer for the whole job, giving back a reduce task whose partition outgrows it. The truth is
 * arithmetic: Gauss's sum, the number of primes below 10^6 (78,498, the published table), and
 * the counts of a text made by a loop here.
 *
 * The worker processes are held at start by a test hook (they exit at once while a marker file
 * exists, and their supervisor starts them again), so that the stand-in's share does not depend
 * on how fast this machine starts Node. Each task's start is announced on stderr with its pid.
 * Each test has its own data directory: commands sharing one share its server, and their
 * stand-ins and workers take each other's tasks. The tests run one at a time: what each checks
 * depends on when processes get ready, which a neighbour's processes would delay.
 */
import test, { type ExecutionContext } from 'ava';
import { rmSync, writeFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { SMALL_JOB_HOLD_MS } from '../coordinator/embedded/small-job.js';
import { cleanEnv, collect, spawnTally, tempDir } from './helpers/tally.js';

const dir = tempDir('tally-stand-in-');
test.after.always(() => dir.remove());

interface Line {
  hook?: string;
  pid?: number;
  time?: number;
  msg?: string;
  standIn?: boolean;
  task?: number;
  tasks?: number;
}

function lines(stderr: string): Line[] {
  return stderr.split('\n').flatMap((line) => {
    if (!line.startsWith('{')) return [];
    try {
      return [JSON.parse(line) as Line];
    } catch {
      return [];
    }
  });
}

/**
 * primes 1..10^6 in 80 slow tasks (75 ms busy-waits; more tasks than a small job's, so its
 * worker processes are not held back and each task travels alone), the worker processes kept
 * from starting until the stand-in has a task in hand, so that the stand-in's share does not
 * depend on how fast this machine starts Node; checked against pi(10^6). `workers`: the
 * --workers arguments, if any.
 */
async function slowPrimesJob(t: ExecutionContext, label: string, workers: string[]): Promise<{ pid: number; events: Line[]; maps: Line[] }> {
  const marker = join(dir.path, `hold-until-the-stand-in-works-${label}`);
  writeFileSync(marker, '');
  const hooks = { standIn: true, exitAtStartWhileFileExists: marker, announceMaps: true, busyMs: 75 };
  const child = spawnTally(['primes', '1', '1000000', '--tasks', '80', ...workers, '--format', 'json', '--log-level', 'debug'], { env: cleanEnv({ TALLY_TEST_HOOKS: JSON.stringify(hooks), TALLY_DATA_DIR: join(dir.path, `data-${label}`) }) });
  let released = false;
  child.stderr!.on('data', (chunk: Buffer) => {
    if (!released && chunk.toString().includes('"hook":"map"')) {
      released = true;
      rmSync(marker, { force: true });
    }
  });
  const run = await collect(child);
  t.is(run.code, 0, run.stderr);
  t.is(JSON.parse(run.stdout).count, 78498);
  const events = lines(run.stderr);
  const maps = events.filter((e) => e.hook === 'map');
  t.is(maps.length, 80, 'each task mapped once');
  return { pid: child.pid!, events, maps };
}

test.serial('worker processes that never get ready: the stand-in runs the whole job, exactly', async (t) => {
  const marker = join(dir.path, 'hold-everyone');
  writeFileSync(marker, '');
  const hooks = { standIn: true, exitAtStartWhileFileExists: marker, announceMaps: true };
  // More tasks than a small job has (coordinator/embedded/small-job.ts): its worker processes are forked at once.
  const child = spawnTally(['sum', '1', '1000', '--tasks', '80', '--workers', '2', '--format', 'json', '--log-level', 'debug'], { env: cleanEnv({ TALLY_TEST_HOOKS: JSON.stringify(hooks), TALLY_DATA_DIR: join(dir.path, 'data-1') }) });
  // Without the stand-in nobody would take a task: the job would wait for ever. Interrupted
  // (exit 130), the command stops its server; killed, it would leave it running.
  const interrupt = setTimeout(() => child.kill('SIGINT'), 30_000);
  const run = await collect(child);
  clearTimeout(interrupt);
  t.is(run.code, 0, run.stderr);
  t.is(JSON.parse(run.stdout).sum, String((1000 * 1001) / 2));
  const events = lines(run.stderr);
  const maps = events.filter((e) => e.hook === 'map');
  t.is(maps.length, 80, 'each task mapped once');
  t.true(
    maps.every((e) => e.pid === child.pid),
    'every task in the coordinator process',
  );
  t.true(events.filter((e) => e.hook === 'start').length >= 1, 'the worker processes were started, and held');
  t.is(events.filter((e) => e.msg === 'task done' && e.standIn === true).length, 80);
  t.false(events.some((e) => e.msg === 'worker ready'));
});

test.serial('once a worker process is ready the stand-in takes no new task; the workers do the rest, exactly', async (t) => {
  const { pid, events, maps } = await slowPrimesJob(t, '2', ['--workers', '2']);
  const firstReady = Math.min(...events.filter((e) => e.msg === 'worker ready').map((e) => e.time!));
  t.true(Number.isFinite(firstReady), 'a worker process got ready');
  const byStandIn = maps.filter((e) => e.pid === pid);
  t.true(byStandIn.length >= 1, 'the stand-in mapped while the workers were held');
  // A pull the stand-in had open when the first worker process got ready may still bring it
  // one task; nothing after that.
  const late = byStandIn.filter((e) => e.time! > firstReady);
  t.true(late.length <= 1, `the stand-in started ${late.length} tasks after the first worker process was ready`);
  t.true(maps.length - byStandIn.length >= 40, `the worker processes mapped ${maps.length - byStandIn.length} of 80`);
});

test.serial("a small job's worker processes are held back: the stand-in does its tasks, and no worker process starts before the hold is over", async (t) => {
  // The start hook only announces each worker process's start (the marker file never exists).
  const hooks = { standIn: true, exitAtStartWhileFileExists: join(dir.path, 'never-there'), announceMaps: true };
  const launched = Date.now();
  const child = spawnTally(['sum', '1', '1000', '--workers', '2', '--format', 'json', '--log-level', 'debug'], { env: cleanEnv({ TALLY_TEST_HOOKS: JSON.stringify(hooks), TALLY_DATA_DIR: join(dir.path, 'data-3') }) });
  const run = await collect(child);
  t.is(run.code, 0, run.stderr);
  const result = JSON.parse(run.stdout) as { sum: string; tasks: number };
  t.is(result.sum, String((1000 * 1001) / 2));
  const events = lines(run.stderr);
  const starts = events.filter((e) => e.hook === 'start').map((e) => e.time!);
  // On an idle machine the job is over long before the hold, and no worker process starts at all.
  t.true(starts.every((time) => time - launched >= SMALL_JOB_HOLD_MS), `worker processes started ${starts.map((time) => time - launched).join(', ')} ms after launch`);
  const maps = events.filter((e) => e.hook === 'map');
  t.is(maps.length, result.tasks, 'each task mapped once');
  const firstStart = Math.min(...starts);
  t.true(maps.filter((e) => e.time! < firstStart).every((e) => e.pid === child.pid), 'before any worker process, the coordinator mapped');
});

test.serial('a small-looking job that outlasts the hold gets its worker processes then, and they share its tasks', async (t) => {
  // Slow tasks (busy-waits): 30 of 100 ms are 3 s for the stand-in alone.
  const hooks = { standIn: true, exitAtStartWhileFileExists: join(dir.path, 'never-there'), announceMaps: true, busyMs: 100 };
  const launched = Date.now();
  const child = spawnTally(['sum', '1', '1000', '--tasks', '30', '--workers', '2', '--format', 'json', '--log-level', 'debug'], { env: cleanEnv({ TALLY_TEST_HOOKS: JSON.stringify(hooks), TALLY_DATA_DIR: join(dir.path, 'data-4') }) });
  const run = await collect(child);
  t.is(run.code, 0, run.stderr);
  t.is(JSON.parse(run.stdout).sum, String((1000 * 1001) / 2));
  const events = lines(run.stderr);
  const starts = events.filter((e) => e.hook === 'start').map((e) => e.time!);
  t.true(starts.length >= 1, 'worker processes were forked');
  t.true(Math.min(...starts) - launched >= SMALL_JOB_HOLD_MS, `the first started ${Math.min(...starts) - launched} ms after launch`);
  const maps = events.filter((e) => e.hook === 'map');
  t.is(maps.length, 30, 'each task mapped once');
  t.true(maps.filter((e) => e.pid !== child.pid).length >= 5, `the worker processes mapped ${maps.filter((e) => e.pid !== child.pid).length} of 30`);
});

test.serial("while a small job's worker processes are held, its tiny tasks travel 8 to a message, each mapped once by the stand-in", async (t) => {
  // A hold longer than the job: the stand-in alone takes every task, however slow this machine.
  const hooks = { standIn: true, announceMaps: true, smallJobHoldMs: 120_000 };
  const child = spawnTally(['sum', '1', '1000', '--tasks', '40', '--workers', '2', '--format', 'json', '--log-level', 'debug'], { env: cleanEnv({ TALLY_TEST_HOOKS: JSON.stringify(hooks), TALLY_DATA_DIR: join(dir.path, 'data-5') }) });
  const run = await collect(child);
  t.is(run.code, 0, run.stderr);
  const result = JSON.parse(run.stdout) as { sum: string; tasks: number };
  t.is(result.sum, String((1000 * 1001) / 2));
  t.is(result.tasks, 40);
  const events = lines(run.stderr);
  t.false(events.some((e) => e.hook === 'start'), 'no worker process started');
  const maps = events.filter((e) => e.hook === 'map');
  t.is(maps.length, 40, 'each task mapped once');
  t.true(maps.every((e) => e.pid === child.pid), 'by the coordinator');
  // One result message per task message, each naming its first task and how many it carried.
  const messages = events.filter((e) => e.msg === 'task done' && e.standIn === true).map((e) => [e.task, e.tasks ?? 1]);
  t.deepEqual(messages.sort((a, b) => a[0]! - b[0]!), [[0, 8], [8, 8], [16, 8], [24, 8], [32, 8]]);
});

test.serial('without --workers: one worker process per core but one, and the stand-in maps beside them for the whole job, exactly', async (t) => {
  const { pid, events, maps } = await slowPrimesJob(t, '6', []);
  const workerPids = new Set(maps.filter((e) => e.pid !== pid).map((e) => e.pid));
  const ready = events.filter((e) => e.msg === 'worker ready').map((e) => e.time!);
  t.true(ready.length >= 1, 'a worker process got ready');
  const late = maps.filter((e) => e.pid === pid && e.time! > Math.min(...ready));
  if (availableParallelism() > 1) {
    t.true(workerPids.size >= 1 && workerPids.size <= availableParallelism() - 1, `${workerPids.size} worker processes mapped`);
    // Stopped there, it would start one at most (see the test above).
    t.true(late.length >= 3, `the stand-in started ${late.length} tasks after the first worker process was ready`);
  } else {
    // One core: nothing spare, so the stand-in stops as with --workers.
    t.true(late.length <= 1, `the stand-in started ${late.length} tasks after the worker process was ready`);
  }
});

test.serial('without --workers, a reduce task whose partition outgrows the stand-in goes back to a worker process started in its place; the counts are exact', async (t) => {
  // 3,000 distinct words, word n written (n % 4) + 1 times, in four partitions of ~750 words:
  // each more than the stand-in may hold here (a test limit of 100, where 2^18 is the real one).
  const counts = new Map<string, number>();
  const words: string[] = [];
  for (let n = 0; n < 3000; n++) {
    const word = `w${n.toString(36)}q`;
    counts.set(word, (n % 4) + 1);
    for (let k = 0; k <= n % 4; k++) words.push(word);
  }
  const text = join(dir.path, 'many-words.txt');
  writeFileSync(text, words.join(' ') + '\n');
  // Slow reduce tasks: the worker process is still on its first when the stand-in takes one,
  // and the job outlasts the start of the process that takes the stand-in's place by seconds.
  const hooks = { standIn: true, announceMaps: true, standInReduceKeys: 100, busyReduceMs: 1500 };
  const child = spawnTally(['count', text, '--chunk-size', '8k', '--reducers', '4', '--top', '5', '--format', 'json', '--log-level', 'debug'], { env: cleanEnv({ TALLY_TEST_HOOKS: JSON.stringify(hooks), TALLY_DATA_DIR: join(dir.path, 'data-7') }) });
  const run = await collect(child);
  t.is(run.code, 0, run.stderr);
  const result = JSON.parse(run.stdout) as { totalWords: number; uniqueWords: number; counts: [string, number][] };
  t.is(result.totalWords, words.length);
  t.is(result.uniqueWords, counts.size);
  const expected = [...counts].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1)).slice(0, 5);
  t.deepEqual(result.counts, expected);
  const events = lines(run.stderr);
  const reduces = events.filter((e) => e.hook === 'map' && /^partition /.test((e as { input?: string }).input ?? ''));
  const byStandIn = reduces.filter((e) => e.pid === child.pid);
  if (availableParallelism() > 1) {
    t.is(byStandIn.length, 1, 'the stand-in took one reduce task, and no other after giving it back');
    t.true(events.some((e) => e.msg === 'giving a reduce task back: its partition outgrew this reducer'));
    // Every partition reduced by a worker process in the end: the given-back one too.
    const byWorkers = new Set(reduces.filter((e) => e.pid !== child.pid).map((e) => (e as { input?: string }).input));
    t.is(byWorkers.size, 4);
    // A worker process more than the fleet started with took its place.
    const workerPids = new Set(reduces.filter((e) => e.pid !== child.pid).map((e) => e.pid));
    t.is(events.filter((e) => e.msg === 'worker ready').length, availableParallelism());
    t.true(workerPids.size >= 1);
  } else {
    // One core: the stand-in covers the worker process's start only, with no limit.
    t.false(events.some((e) => e.msg === 'giving a reduce task back: its partition outgrew this reducer'));
  }
});

test.serial('without --workers, a count the coordinator reads itself (stdin): past 4 MiB the stand-in gives its core to a worker process; the counts are exact', async (t) => {
  // 6 MiB of known words on stdin, in 256 KiB tasks slowed to 150 ms each: the job outlasts the
  // start of the worker process started in the stand-in's place.
  const counts = new Map<string, number>();
  const words: string[] = [];
  for (let n = 0, bytes = 0; bytes < 6 * 1024 * 1024; n++) {
    const word = `s${(n % 5000).toString(36)}`;
    counts.set(word, (counts.get(word) ?? 0) + 1);
    words.push(word);
    bytes += word.length + 1;
  }
  const hooks = { standIn: true, announceMaps: true, busyMs: 150 };
  const child = spawnTally(['count', '-', '--chunk-size', '256k', '--top', '3', '--format', 'json', '--log-level', 'debug'], {
    env: cleanEnv({ TALLY_TEST_HOOKS: JSON.stringify(hooks), TALLY_DATA_DIR: join(dir.path, 'data-8') }),
    input: words.join(' ') + '\n',
  });
  const run = await collect(child);
  t.is(run.code, 0, run.stderr);
  const result = JSON.parse(run.stdout) as { totalWords: number; uniqueWords: number; counts: [string, number][] };
  t.is(result.totalWords, words.length);
  t.is(result.uniqueWords, counts.size);
  t.deepEqual(result.counts, [...counts].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1)).slice(0, 3));
  const events = lines(run.stderr);
  const gaveWay = events.filter((e) => e.msg === 'the stand-in gives its core to a worker process');
  if (availableParallelism() > 1) {
    t.is(gaveWay.length, 1);
    t.is(events.filter((e) => e.msg === 'worker ready').length, availableParallelism(), 'a worker process more than the fleet started with');
    // After it gave way, the stand-in finished the task in hand at most.
    const late = events.filter((e) => e.hook === 'map' && e.pid === child.pid && e.time! > gaveWay[0]!.time!);
    t.true(late.length <= 1, `the stand-in started ${late.length} tasks after it gave way`);
  } else {
    t.is(gaveWay.length, 0, 'one core: no stand-in beside the worker process, nothing to give');
  }
});
