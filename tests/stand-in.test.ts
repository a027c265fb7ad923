/**
 * The embedded coordinator's stand-in worker (coordinator/embedded/stand-in.ts): while the
 * worker processes start, the coordinator's own process takes the job's tasks from the same
 * consumer, and it takes no new task once a worker process is ready. The truth is arithmetic:
 * Gauss's sum, and the number of primes below 10^6 (78,498, the published table).
 *
 * The worker processes are held at start by a test hook (they exit at once while a marker file
 * exists, and their supervisor starts them again), so that the stand-in's share does not depend
 * on how fast this machine starts Node. Each task's start is announced on stderr with its pid.
 * Each test has its own data directory: commands sharing one share its server, and their
 * stand-ins and workers take each other's tasks.
 */
import test from 'ava';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
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

test('worker processes that never get ready: the stand-in runs the whole job, exactly', async (t) => {
  const marker = join(dir.path, 'hold-everyone');
  writeFileSync(marker, '');
  const hooks = { standIn: true, exitAtStartWhileFileExists: marker, announceMaps: true };
  const child = spawnTally(['sum', '1', '1000', '--tasks', '20', '--workers', '2', '--format', 'json', '--log-level', 'debug'], { env: cleanEnv({ TALLY_TEST_HOOKS: JSON.stringify(hooks), TALLY_DATA_DIR: join(dir.path, 'data-1') }) });
  // Without the stand-in nobody would take a task: the job would wait for ever. Interrupted
  // (exit 130), the command stops its server; killed, it would leave it running.
  const interrupt = setTimeout(() => child.kill('SIGINT'), 30_000);
  const run = await collect(child);
  clearTimeout(interrupt);
  t.is(run.code, 0, run.stderr);
  t.is(JSON.parse(run.stdout).sum, String((1000 * 1001) / 2));
  const events = lines(run.stderr);
  const maps = events.filter((e) => e.hook === 'map');
  t.is(maps.length, 20, 'each task mapped once');
  t.true(
    maps.every((e) => e.pid === child.pid),
    'every task in the coordinator process',
  );
  t.true(events.filter((e) => e.hook === 'start').length >= 1, 'the worker processes were started, and held');
  t.is(events.filter((e) => e.msg === 'task done' && e.standIn === true).length, 20);
  t.false(events.some((e) => e.msg === 'worker ready'));
});

test('once a worker process is ready the stand-in takes no new task; the workers do the rest, exactly', async (t) => {
  const marker = join(dir.path, 'hold-until-the-stand-in-works');
  writeFileSync(marker, '');
  // Slow tasks (busy-waits): the job outlasts a worker process's start by seconds.
  const hooks = { standIn: true, exitAtStartWhileFileExists: marker, announceMaps: true, busyMs: 150 };
  const child = spawnTally(['primes', '1', '1000000', '--tasks', '40', '--workers', '2', '--format', 'json', '--log-level', 'debug'], { env: cleanEnv({ TALLY_TEST_HOOKS: JSON.stringify(hooks), TALLY_DATA_DIR: join(dir.path, 'data-2') }) });
  // The worker processes may start once the stand-in has a task in hand.
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
  t.is(maps.length, 40, 'each task mapped once');
  const firstReady = Math.min(...events.filter((e) => e.msg === 'worker ready').map((e) => e.time!));
  t.true(Number.isFinite(firstReady), 'a worker process got ready');
  const byStandIn = maps.filter((e) => e.pid === child.pid);
  t.true(byStandIn.length >= 1, 'the stand-in mapped while the workers were held');
  // A pull the stand-in had open when the first worker process got ready may still bring it
  // one task; nothing after that.
  const late = byStandIn.filter((e) => e.time! > firstReady);
  t.true(late.length <= 1, `the stand-in started ${late.length} tasks after the first worker process was ready`);
  t.true(maps.length - byStandIn.length >= 20, `the worker processes mapped ${maps.length - byStandIn.length} of 40`);
});
