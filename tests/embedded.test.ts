/**
 * The embedded default: no --server and no NATS_URL starts a local nats-server and workers,
 * runs the job and stops them; results outlive the run in the user's data directory.
 */
import test, { type ExecutionContext } from 'ava';
import { cpSync, existsSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { execFileSync, spawn } from 'node:child_process';
import { REPO_ROOT, TALLY_BIN, cleanEnv, collect, runTally, spawnTally, tempDir } from './helpers/tally.js';
import { missingScript, testNeeding } from './helpers/capability.js';
import { waitFor } from './helpers/watch.js';

/**
 * Test hooks that hold the map of every task whose input includes `pattern` while the file
 * `gate` exists (worker/test-hooks.ts): a job that provably runs (a hold is announced on stderr)
 * and cannot finish until the test removes the gate.
 */
function holdWhile(gate: string, pattern: string): string {
  writeFileSync(gate, 'held\n');
  return JSON.stringify({ holdWhenInputIncludes: pattern, holdWhileFileExists: gate });
}
const HELD = /"hook":"hold"/;

const data = tempDir('tally-data-');
const env = cleanEnv({ XDG_DATA_HOME: data.path });

test.after.always(() => data.remove());

test.serial('count with no server just works, and result/jobs read it back afterwards', async (t) => {
  const run = await runTally(['count', 'samples/', '--format', 'json', '--workers', '2', '--top', '5'], { env });
  t.is(run.code, 0, run.stderr);
  const printed = JSON.parse(run.stdout);
  t.is(printed.kind, 'count');
  t.true(printed.totalWords > 1000);
  t.is(printed.counts.length, 5);
  t.true(existsSync(join(data.path, 'tally', 'jetstream')), 'the JetStream store lives in $XDG_DATA_HOME/tally');
  t.false(existsSync(join(data.path, 'tally', 'server.lock')), 'the server was stopped and its lock released');

  const result = await runTally(['result', printed.job, '--format', 'json', '--top', '5'], { env });
  t.is(result.code, 0, result.stderr);
  t.is(result.stdout, run.stdout, 'tally result prints exactly what the job printed');

  const jobs = await runTally(['jobs', '--format', 'json'], { env });
  t.is(jobs.code, 0, jobs.stderr);
  const records = JSON.parse(jobs.stdout) as Array<{ id: string; status: string; kind: string }>;
  const record = records.find((r) => r.id === printed.job);
  t.truthy(record);
  t.is(record!.status, 'done');
  t.is(record!.kind, 'count');
});

test.serial('two embedded runs at the same time both succeed, on one server', async (t) => {
  // The first run's sum tasks are held (test hook) until the second run is over: they overlap.
  const gate = join(data.path, 'gate');
  t.teardown(() => rmSync(gate, { force: true }));
  const heldEnv = { ...env, TALLY_TEST_HOOKS: holdWhile(gate, 'range ') };
  const store = join(data.path, 'tally', 'jetstream');
  const first = spawnTally(['sum', '1', '1_000_000', '--format', 'json', '--workers', '1', '--no-progress'], { env: heldEnv });
  let firstLog = '';
  first.stderr!.on('data', (d: Buffer | string) => (firstLog += String(d)));
  const firstEnded = collect(first);
  await waitFor(() => HELD.test(firstLog) || first.exitCode !== null, 'the first run to hold a task', 60_000);
  const servers = serversOnStore(store);
  t.is(servers.length, 1, 'the first run started a server');
  const seen = new Set<number>();
  const sampler = setInterval(() => serversOnStore(store).forEach((pid) => seen.add(pid)), 20);
  // Its worker holds nothing (no hook): it computes its own tasks and those of the first run
  // but the one the first run's worker holds.
  const b = await runTally(['count', 'samples/', '--format', 'json', '--workers', '1', '--log-level', 'debug', '--no-progress'], { env });
  clearInterval(sampler);
  t.is(first.exitCode, null, 'the first run was still running while the second ran');
  rmSync(gate);
  const a = await firstEnded;
  t.is(a.code, 0, a.stderr);
  t.is(b.code, 0, b.stderr);
  t.regex(b.stderr, /joining the embedded server of another tally process/, 'the second run joined the first one\'s server');
  t.deepEqual([...seen], servers, 'one nats-server on the store, the first run\'s, all along');
  t.is(JSON.parse(a.stdout).sum, ((1_000_000n * 1_000_001n) / 2n).toString());
  t.true(JSON.parse(b.stdout).totalWords > 1000);
  t.deepEqual(readdirSync(join(data.path, 'tally')).filter((f) => f !== 'jetstream'), [], 'no lock or server file left');
});

test.serial('the embedded server opens only with the token in the owner-only server file', async (t) => {
  const { acquireEmbeddedServer } = await import('../coordinator/embedded/server.js');
  const { createLogger } = await import('../shared/log.js');
  const { connect } = await import('@nats-io/transport-node');
  const dir = tempDir('tally-token-');
  const before = process.env.TALLY_DATA_DIR;
  process.env.TALLY_DATA_DIR = dir.path;
  const server = await acquireEmbeddedServer(createLogger({ level: 'silent', fallback: 'silent' }));
  try {
    t.true(server.owned);
    for (const name of ['server.json', 'embedded.conf']) t.is(statSync(join(dir.path, name)).mode & 0o777, 0o600, name);
    t.is(JSON.parse(readFileSync(join(dir.path, 'server.json'), 'utf8')).token, server.token);
    // Another local user knows the port (it is in `ss -ltn`) but not the token.
    await t.throwsAsync(connect({ servers: server.url, reconnect: false }), { message: /authorization/i });
    await t.throwsAsync(connect({ servers: server.url, token: 'guess', reconnect: false }), { message: /authorization/i });
    const nc = await connect({ servers: server.url, token: server.token, reconnect: false });
    await nc.flush();
    await nc.close();
  } finally {
    await server.release();
    if (before === undefined) delete process.env.TALLY_DATA_DIR;
    else process.env.TALLY_DATA_DIR = before;
    dir.remove();
  }
});

test.serial('deleted partials do not pile up in the store: an idle embedded server compacts them', async (t) => {
  // A million distinct words in 4 MiB chunks: each chunk's partial (~5 MB) goes through the
  // Object Store and is deleted once folded in.
  const dir = tempDir('tally-distinct-');
  t.teardown(dir.remove);
  const n = 1_000_000;
  const words: string[] = [];
  for (let i = 0; i < n; i++) words.push(`w${i.toString(36)}`);
  writeFileSync(join(dir.path, 'distinct.txt'), words.join(' '));
  const run = await runTally(['count', join(dir.path, 'distinct.txt'), '--chunk-size', '4M', '--workers', '2', '--top', '1', '--format', 'json', '--no-progress'], { env });
  t.is(run.code, 0, run.stderr);
  const result = JSON.parse(run.stdout);
  t.is(result.totalWords, n);
  t.is(result.uniqueWords, n);
  const blocks = join(data.path, 'tally', 'jetstream', 'jetstream', '$G', 'streams', 'OBJ_tally-partials', 'msgs');
  const onDisk = readdirSync(blocks).reduce((sum, name) => sum + statSync(join(blocks, name)).size, 0);
  t.true(onDisk < 1024 * 1024, `partials left on disk: ${onDisk} bytes`);
});

/** Pids of the running nats-server processes whose JetStream store is `storeDir` (from /proc). */
function serversOnStore(storeDir: string): number[] {
  return readdirSync('/proc')
    .filter((entry) => /^\d+$/.test(entry))
    .filter((entry) => {
      try {
        const argv = readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0');
        const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
        return argv.some((arg) => arg.endsWith('nats-server')) && argv.includes(storeDir) && !/\) Z /.test(stat);
      } catch {
        return false;
      }
    })
    .map(Number);
}

/**
 * A temp directory for one test's embedded store (`data` inside it: the directory itself, or a
 * `data` folder beside the test's inputs), removed at the end with any server left on it.
 */
function storeFixture(t: ExecutionContext, prefix: string, dataInside = false): { dir: { path: string }; data: string; store: string } {
  const dir = tempDir(prefix);
  const data = dataInside ? join(dir.path, 'data') : dir.path;
  const store = join(data, 'jetstream');
  t.teardown(() => {
    for (const pid of serversOnStore(store)) process.kill(pid, 'SIGKILL');
    dir.remove();
  });
  return { dir: { path: dir.path }, data, store };
}

test.serial("a server left running by a SIGKILLed owner is stopped by the next run, which then has the store to itself", async (t) => {
  const { dir, store } = storeFixture(t, 'tally-orphan-');
  const orphanEnv = cleanEnv({ TALLY_DATA_DIR: dir.path });
  const owner = spawnTally(['sum', '1', '1e9', '--tasks', '100000', '--workers', '1'], { env: orphanEnv });
  const ended = collect(owner);
  for (let i = 0; i < 200 && !existsSync(join(dir.path, 'server.json')); i++) await new Promise((resolve) => setTimeout(resolve, 50));
  const servers = serversOnStore(store);
  t.is(servers.length, 1, 'the owner started its server');
  owner.kill('SIGKILL');
  await ended;
  await new Promise((resolve) => setTimeout(resolve, 200));
  t.deepEqual(serversOnStore(store), servers, 'the server outlives its owner');

  const run = await runTally(['sum', '1', '100', '--format', 'json', '--workers', '1'], { env: orphanEnv });
  t.is(run.code, 0, run.stderr);
  t.is(JSON.parse(run.stdout).sum, '5050');
  t.regex(run.stderr, /stopping the embedded nats-server left running by a tally process that was killed/);
  t.deepEqual(serversOnStore(store), [], 'neither the orphan nor the new run\'s server is left');
  t.deepEqual(readdirSync(dir.path).filter((f) => f !== 'jetstream'), [], 'no lock or server file left');
});

test.serial("Ctrl-C at a terminal (SIGINT to the whole process group) cancels an embedded count: exit 130, nothing left running", async (t) => {
  // The input lives beside the data directory: tally refuses to count files inside it.
  const { dir, data, store } = storeFixture(t, 'tally-ctrl-c-', true);
  // Small chunks: thousands of tasks, so the job is still running when the signal comes.
  const parts = ['de', 'ru', 'ja', 'fr'].map((l) => readFileSync(join(REPO_ROOT, 'node_modules', 'typescript', 'lib', l, 'diagnosticMessages.generated.json')));
  writeFileSync(join(dir.path, 'big.txt'), Buffer.concat([...parts, ...parts, ...parts, ...parts]));
  // Its own process group, as a shell gives a foreground command; the group is what a terminal signals.
  // Every task is held (test hook) until the signal is sent: the job runs, and cannot finish first.
  const gate = join(dir.path, 'gate');
  const child = spawn(process.execPath, [TALLY_BIN, 'count', join(dir.path, 'big.txt'), '--chunk-size', '1K', '--workers', '2', '--output', join(dir.path, 'out.txt')], {
    env: cleanEnv({ TALLY_DATA_DIR: data, TALLY_TEST_HOOKS: holdWhile(gate, 'big.txt') }),
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  const ended = collect(child, Date.now(), 60_000);
  let stderr = '';
  child.stderr!.on('data', (d: Buffer | string) => (stderr += String(d)));
  await waitFor(() => HELD.test(stderr) || child.exitCode !== null, 'a worker to hold a task of the job', 60_000);
  t.is(serversOnStore(store).length, 1, 'the embedded server runs');
  t.is(child.exitCode, null, `still running when interrupted: ${stderr}`);
  process.kill(-child.pid!, 'SIGINT');
  // Released after the signal, so that workers that finish the task in hand can.
  rmSync(gate);
  const run = await ended;
  t.is(run.code, 130, run.stderr);
  t.regex(run.stderr, /cancelled/);
  t.notRegex(run.stderr, /worker process died/);
  t.false(existsSync(join(dir.path, 'out.txt')), 'no output written');
  t.deepEqual(serversOnStore(store), [], 'the embedded server was stopped');
});

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Waits until `done()` holds, for at most `ms`. */
async function until(done: () => boolean, ms = 20_000): Promise<boolean> {
  for (const deadline = Date.now() + ms; Date.now() < deadline; await sleep(25)) if (done()) return true;
  return done();
}

/**
 * An owner that can be killed at any moment: an embedded count of stdin, which waits for input
 * with its server and worker up until it is killed.
 */
function startOwner(env: NodeJS.ProcessEnv): { child: ReturnType<typeof spawn>; ended: ReturnType<typeof collect> } {
  const child = spawn(process.execPath, [TALLY_BIN, 'count', '-', '--workers', '1', '--no-progress'], { cwd: REPO_ROOT, env, stdio: ['pipe', 'pipe', 'pipe'] });
  return { child, ended: collect(child) };
}

test.serial("a job that joined a server whose owner was SIGKILLed finishes: commands run meanwhile join that server instead of stopping it", async (t) => {
  const { dir, store } = storeFixture(t, 'tally-joined-');
  // Slow tasks on every worker (the owner's takes tasks of the other job too), so that the
  // joined job still runs when the owner is gone and the next commands come.
  const slowEnv = cleanEnv({ TALLY_DATA_DIR: dir.path, TALLY_TEST_HOOKS: JSON.stringify({ busyMs: 250 }), TALLY_SERVER_LOST_MS: '5000' });
  const owner = startOwner(slowEnv);
  t.true(await until(() => existsSync(join(dir.path, 'server.json'))), 'the owner started its server');
  const servers = serversOnStore(store);
  t.is(servers.length, 1);

  const joiner = spawnTally(['sum', '1', '1_000_000', '--tasks', '40', '--workers', '1', '--format', 'json', '--log-level', 'debug', '--no-progress'], { env: slowEnv });
  const joinerEnded = collect(joiner, Date.now(), 120_000);
  let joinerLog = '';
  joiner.stderr!.on('data', (d: string) => (joinerLog += d));
  t.true(await until(() => /joining the embedded server of another tally process/.test(joinerLog)), 'the job joined the owner\'s server');
  t.true(await until(() => /"msg":"worker ready"/.test(joinerLog)), 'its worker is up');
  t.true(await until(() => /"msg":"task done"/.test(joinerLog)), 'its tasks are being computed');

  owner.child.kill('SIGKILL');
  await owner.ended;
  // Two read-only commands at once: both find the owner's lock stale.
  const [jobs, again] = await Promise.all([runTally(['jobs', '--format', 'json'], { env: slowEnv }), runTally(['jobs', '--format', 'json'], { env: slowEnv })]);
  for (const run of [jobs, again]) {
    t.is(run.code, 0, run.stderr);
    t.notRegex(run.stderr, /stopping the embedded nats-server/);
    t.true((JSON.parse(run.stdout) as Array<{ kind: string; status: string }>).some((r) => r.kind === 'sum' && r.status === 'running'), run.stdout);
  }
  t.is(joiner.exitCode, null, `the joined job is still running: ${joinerLog.slice(-2000)}`);
  t.deepEqual(serversOnStore(store), servers, 'the server still runs, and no second one was started');

  const run = await joinerEnded;
  t.is(run.code, 0, run.stderr.slice(-2000));
  t.is(JSON.parse(run.stdout).sum, '500000500000');
  // The last one out stops the orphan: nothing is left running, no lock is left behind.
  t.regex(run.stderr, /stopping the embedded nats-server left running by a tally process that was killed/);
  t.deepEqual(serversOnStore(store), []);
  t.deepEqual(readdirSync(dir.path).filter((f) => f !== 'jetstream'), [], 'no lock or server file left');
});

test.serial('runs that find the same idle orphan at once: one stops it, never two servers on the store', async (t) => {
  const { dir, store } = storeFixture(t, 'tally-race-');
  const env = cleanEnv({ TALLY_DATA_DIR: dir.path });
  const owner = startOwner(env);
  t.true(await until(() => existsSync(join(dir.path, 'server.json'))), 'the owner started its server');
  const monitorUrl = JSON.parse(readFileSync(join(dir.path, 'server.json'), 'utf8')).monitorUrl as string;
  owner.child.kill('SIGKILL');
  await owner.ended;
  // Idle: the owner's worker noticed and left.
  const { get } = await import('node:http');
  const connections = () =>
    new Promise<number>((resolve) => get(`${monitorUrl}/varz`, (r) => { let body = ''; r.on('data', (d) => (body += d)); r.on('end', () => resolve(JSON.parse(body).connections)); }).on('error', () => resolve(-1)));
  for (let i = 0; i < 200 && (await connections()) !== 0; i++) await sleep(50);

  let most = 0;
  const sampler = setInterval(() => (most = Math.max(most, serversOnStore(store).length)), 5);
  const runs = await Promise.all([1, 2, 3].map((n) => runTally(['sum', '1', String(100 * n), '--format', 'json', '--workers', '1'], { env })));
  clearInterval(sampler);
  runs.forEach((run, i) => {
    t.is(run.code, 0, run.stderr);
    t.is(JSON.parse(run.stdout).sum, String((100 * (i + 1) * (100 * (i + 1) + 1)) / 2));
  });
  t.is(runs.filter((run) => /stopping the embedded nats-server left running/.test(run.stderr)).length, 1, 'one run stopped the orphan');
  t.is(most, 1, 'never two servers on one store');
  t.deepEqual(serversOnStore(store), []);
  t.deepEqual(readdirSync(dir.path).filter((f) => f !== 'jetstream'), [], 'no lock, claim or server file left');
});

/** Live processes (a run's coordinator, workers and server) whose environment names `dataDir`. */
function processesWith(dataDir: string): string[] {
  return readdirSync('/proc')
    .filter((entry) => /^\d+$/.test(entry))
    .flatMap((entry) => {
      try {
        if (!readFileSync(`/proc/${entry}/environ`, 'utf8').split('\0').includes(`TALLY_DATA_DIR=${dataDir}`)) return [];
        if (/\) Z /.test(readFileSync(`/proc/${entry}/stat`, 'utf8'))) return [];
        return [`${entry} ${readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0').join(' ').trim()}`];
      } catch {
        return [];
      }
    });
}

/** Thousands of 1 KiB tasks: a job still running seconds after it starts. */
function writeBigInput(path: string): void {
  const parts = ['de', 'ru', 'ja', 'fr'].map((l) => readFileSync(join(REPO_ROOT, 'node_modules', 'typescript', 'lib', l, 'diagnosticMessages.generated.json')));
  writeFileSync(path, Buffer.concat([...parts, ...parts, ...parts, ...parts]));
}

/** The job records of the store in `dataDir`. */
async function jobRecords(t: { is(a: unknown, b: unknown, m?: string): void }, dataDir: string): Promise<Array<{ id: string; kind: string; status: string }>> {
  const jobs = await runTally(['jobs', '--format', 'json'], { env: cleanEnv({ TALLY_DATA_DIR: dataDir }) });
  t.is(jobs.code, 0, jobs.stderr);
  return JSON.parse(jobs.stdout);
}

test.serial('SIGHUP (the terminal closed), twice as a closing terminal sends it, cancels an embedded count: exit 130, the job cancelled, nothing left running', async (t) => {
  const { dir, data, store } = storeFixture(t, 'tally-hup-', true);
  writeBigInput(join(dir.path, 'big.txt'));
  // Every task is held (test hook) until the terminal has closed: the job cannot finish first.
  const gate = join(dir.path, 'gate');
  const child = spawn(process.execPath, [TALLY_BIN, 'count', join(dir.path, 'big.txt'), '--chunk-size', '1K', '--workers', '2'], {
    env: cleanEnv({ TALLY_DATA_DIR: data, TALLY_TEST_HOOKS: holdWhile(gate, 'big.txt') }),
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer | string) => (stderr += String(d)));
  const ended = collect(child, Date.now(), 60_000);
  t.true(await until(() => HELD.test(stderr) || child.exitCode !== null, 60_000), 'a worker holds a task of the job');
  t.is(serversOnStore(store).length, 1, 'the server started');
  t.is(child.exitCode, null, 'still running when the terminal closes');
  // The kernel signals the terminal's foreground process group, and the shell its jobs: two
  // signals in quick succession (the second may find the group gone).
  process.kill(-child.pid!, 'SIGHUP');
  try {
    process.kill(-child.pid!, 'SIGHUP');
  } catch {
    // Gone already: the first one killed it, which the assertions below report.
  }
  rmSync(gate);
  const run = await ended;
  t.is(run.code, 130, run.stderr);
  t.regex(run.stderr, /cancelled/);
  t.deepEqual(processesWith(data), [], 'no coordinator, worker or server of the run is left');
  const records = await jobRecords(t, data);
  t.deepEqual(records.map((r) => [r.kind, r.status]), [['count', 'cancelled']]);
});

testNeeding(missingScript(), 'a real terminal closing (the pty of `script` hung up) cancels an embedded count, progress bar drawn, nothing left running', async (t) => {
  const { dir, data, store } = storeFixture(t, 'tally-pty-', true);
  writeBigInput(join(dir.path, 'big.txt'));
  const gate = join(dir.path, 'gate');
  const hooks = holdWhile(gate, 'big.txt');
  const command = [process.execPath, TALLY_BIN, 'count', join(dir.path, 'big.txt'), '--chunk-size', '1K', '--workers', '2'].join(' ');
  // script runs the command on a new pseudo-terminal; killing script closes it, as closing a
  // terminal window does: writes to it fail from then on, and its processes get SIGHUP.
  // Every task is held (test hook; its line shows on the terminal) until the terminal is gone.
  const terminal = spawn('script', ['-qfec', command, '/dev/null'], { env: cleanEnv({ TALLY_DATA_DIR: data, SHELL: '/bin/sh', TALLY_TEST_HOOKS: hooks }), stdio: ['pipe', 'pipe', 'ignore'] });
  let screen = '';
  terminal.stdout!.setEncoding('utf8').on('data', (d: string) => (screen += d));
  t.true(await until(() => serversOnStore(store).length > 0), 'the server started');
  t.true(await until(() => /tasks/.test(screen)), `the progress bar is drawn: ${JSON.stringify(screen)}`);
  t.true(await until(() => HELD.test(screen)), `a worker holds a task of the job: ${JSON.stringify(screen.slice(-500))}`);
  terminal.kill('SIGKILL');
  rmSync(gate);
  t.true(await until(() => processesWith(data).length === 0, 30_000), `left running: ${processesWith(data).join('; ')}`);
  const records = await jobRecords(t, data);
  t.deepEqual(records.map((r) => [r.kind, r.status]), [['count', 'cancelled']]);
});

test.serial("counting a folder that holds tally's own store leaves the store out and says so; a file in it named outright is refused", async (t) => {
  const dir = tempDir('tally-home-');
  const home = dir.path;
  const store = join(home, '.local', 'share', 'tally');
  t.teardown(() => {
    for (const pid of serversOnStore(join(store, 'jetstream'))) process.kill(pid, 'SIGKILL');
    dir.remove();
  });
  const env = cleanEnv({ TALLY_DATA_DIR: store });
  cpSync(join(REPO_ROOT, 'samples'), join(home, 'notes'), { recursive: true });
  writeFileSync(join(home, 'todo.txt'), 'count the words of my home folder\n');
  // Reached a second time, by another name.
  symlinkSync(join('.local', 'share', 'tally'), join(home, 'store-link'));
  // A first run leaves job records and results in the store.
  const first = await runTally(['sum', '1', '10', '--workers', '1'], { env });
  t.is(first.code, 0, first.stderr);
  const ours = readdirSync(home, { withFileTypes: true, recursive: true })
    // Node 24's recursive readdir also walks into the store through store-link; Node 20's does not.
    .filter((entry) => entry.isFile() && ![`${store}/`, `${join(home, 'store-link')}/`].some((prefix) => join(entry.parentPath, entry.name).startsWith(prefix)))
    .map((entry) => join(entry.parentPath, entry.name))
    .sort();
  const wc = execFileSync('wc', ['-w', ...ours], { env: { ...process.env, LC_ALL: 'C' }, encoding: 'utf8' }).trim().split('\n');
  const expected = Number(wc[wc.length - 1]!.trim().split(/\s+/)[0]);

  for (const input of [home, `${home}/*`]) {
    const run = await runTally(['count', input, '--tokenizer', 'whitespace', '--format', 'json', '--workers', '2'], { env });
    t.is(run.code, 0, run.stderr);
    const result = JSON.parse(run.stdout);
    t.is(result.files, ours.length);
    t.is(result.totalWords, expected);
    t.is(run.stderr, `tally: skipping tally's own data directory ${store}\n`);
  }

  const inside = readdirSync(store, { withFileTypes: true, recursive: true }).find((entry) => entry.isFile())!;
  const named = join(inside.parentPath, inside.name);
  const refused = await runTally(['count', named, '--workers', '1'], { env });
  t.is(refused.code, 2);
  t.is(refused.stderr, `tally: ${named}: inside tally's own data directory ${store}, which changes while it is counted\n`);
});
