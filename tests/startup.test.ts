/**
 * The pieces of a fast embedded start-up: reading what a command line will need before it is
 * parsed, worker processes forked before their server is up (settings over IPC, the rest of
 * the processes once one has loaded), the lazy logger, the code cache (tally's bundles and the
 * CommonJS packages), a connection
 * attempt that leaves no socket behind, and the Object Store listings that leave no consumer.
 */
import test from 'ava';
import { execFileSync, spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readFileSync, readdirSync, utimesSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { connect } from '@nats-io/transport-node';
import { jetstreamManager } from '@nats-io/jetstream';
import { Objm } from '@nats-io/obj';
import { embeddedPlanFor } from '../coordinator/embedded/prestart.js';
import { embeddedFleet } from '../coordinator/embedded/fleet.js';
import { UsageError } from '../shared/errors.js';
import { Supervisor, WORKER_PROGRAM } from '../worker/supervisor.js';
import { createLogger } from '../shared/log.js';
import { sweepIdleListConsumers, withQuickList } from '../shared/nats/topology.js';
import { startNatsServer } from '../coordinator/nats-server.js';
import { serverStatus } from '../coordinator/embedded/monitor.js';
import { REPO_ROOT, cleanEnv, collect, runTally, startTestServer, tempDir } from './helpers/tally.js';

const argv = (...args: string[]) => ['node', 'tally', ...args];

test('embeddedPlanFor: job commands start workers (a kind\'s job also its connection), read commands only the server, anything else nothing', (t) => {
  // Without --workers: one worker process per core but one (the coordinator maps on that one), at least one.
  const processes = availableParallelism() > 1 ? availableParallelism() - 1 : 1;
  t.deepEqual(embeddedPlanFor(argv('sum', '1', '10'), {}), { workers: processes, logLevel: undefined, prepare: true, smallJob: true });
  t.deepEqual(embeddedPlanFor(argv('count', 'a.txt', '--workers', '3'), {}), { workers: 3, logLevel: undefined, prepare: true, smallJob: false });
  t.deepEqual(embeddedPlanFor(argv('count', '--workers=1_0', '-'), {}), { workers: 10, logLevel: undefined, prepare: true, smallJob: false });
  t.deepEqual(embeddedPlanFor(argv('primes', '1', '9', '--workers', '0'), {}), { workers: 0, logLevel: undefined, prepare: true, smallJob: true });
  t.deepEqual(embeddedPlanFor(argv('factorial', '20', '--log-level', 'debug'), {}), { workers: processes, logLevel: 'debug', prepare: true, smallJob: true });
  t.deepEqual(embeddedPlanFor(argv('resume', 'abc-123', '--log-level=info'), {}), { workers: processes, logLevel: 'info', prepare: false, smallJob: false });
  t.deepEqual(embeddedPlanFor(argv('jobs'), {}), { workers: 0, logLevel: undefined, prepare: false, smallJob: false });
  t.deepEqual(embeddedPlanFor(argv('result', 'abc-123', '--workers', '4'), {}), { workers: 0, logLevel: undefined, prepare: false, smallJob: false });
  // The Object Store commands need the embedded server (its store keeps the objects), no worker.
  for (const command of ['put', 'ls', 'rm']) t.deepEqual(embeddedPlanFor(argv(command, 'x', '--workers', '2'), {}), { workers: 0, logLevel: undefined, prepare: false, smallJob: false }, command);
  // LOG_LEVEL applies to this process's own logger, not to the workers (as when parsed).
  t.is(embeddedPlanFor(argv('sum', '1', '2'), { LOG_LEVEL: 'debug' })?.logLevel, undefined);
  // A file named like an option after `--` is a path.
  t.deepEqual(embeddedPlanFor(argv('count', '--', '--server'), {}), { workers: processes, logLevel: undefined, prepare: true, smallJob: false });
  for (const args of [
    [],
    ['--version'],
    ['--help'],
    ['help', 'sum'],
    ['worker', '--server', 'nats://x'],
    ['sum', '1', '2', '--server', 'nats://x'],
    ['sum', '1', '2', '--server=nats://x'],
    ['sum', '--help'],
    ['count', '-h'],
    ['sum', '1', '2', '--workers', 'many'],
    ['sum', '1', '2', '--workers', '2000'],
    ['sum', '1', '2', '--workers'],
  ]) {
    t.is(embeddedPlanFor(argv(...args), {}), null, args.join(' '));
  }
  t.is(embeddedPlanFor(argv('sum', '1', '2'), { NATS_URL: 'nats://x' }), null, 'NATS_URL means no embedded server');
  t.not(embeddedPlanFor(argv('sum', '1', '2'), { NATS_URL: '' }), null, 'an empty NATS_URL is no server');
});

test('the embedded fleet: --workers N starts N processes; without it, one per core but one while the coordinator maps throughout, and as many mappers as cores', (t) => {
  t.deepEqual(embeddedFleet(undefined, 2), { processes: 1, standInThroughout: true, mappers: 2 });
  t.deepEqual(embeddedFleet(undefined, 8), { processes: 7, standInThroughout: true, mappers: 8 });
  // One core: nothing to spare, the stand-in covers the worker's start only.
  t.deepEqual(embeddedFleet(undefined, 1), { processes: 1, standInThroughout: false, mappers: 1 });
  t.deepEqual(embeddedFleet(2, 2), { processes: 2, standInThroughout: false, mappers: 2 });
  t.deepEqual(embeddedFleet(3, 8), { processes: 3, standInThroughout: false, mappers: 3 });
  t.deepEqual(embeddedFleet(0, 4), { processes: 0, standInThroughout: false, mappers: 0 });
});

test('workers forked before their server is known get their settings over IPC; the rest follow the first', async (t) => {
  const server = await startTestServer();
  t.teardown(() => server.stop());
  const supervisor = new Supervisor({ processes: 2, initial: 1 });
  t.teardown(() => supervisor.stop());
  supervisor.start();
  t.is(supervisor.pids().length, 1, 'one process at first');
  t.is(supervisor.serverUrl, undefined);
  await new Promise((resolve) => setTimeout(resolve, 50));
  supervisor.configure({ connection: { servers: [server.url] }, logLevel: 'warn' });
  t.is(supervisor.serverUrl, server.url);
  await supervisor.ready();
  t.is(supervisor.pids().length, 2, 'both processes run, and both became ready');
  await supervisor.stop();
  t.is(supervisor.pids().length, 0);
});

test('a worker process forked without settings exits when its supervisor goes away', async (t) => {
  const child = spawn(
    process.execPath,
    ['-e', `const { fork } = require('node:child_process'); const c = fork(${JSON.stringify(WORKER_PROGRAM)}); c.on('message', () => { console.log(c.pid); process.exit(0); });`],
    { stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, TALLY_WORKER_SETTINGS: undefined } },
  );
  // Its first line, not its exit: 'exit' may come before its output has been read, and the
  // worker it forked holds the same stdout open (so 'close' waits for the worker).
  const out = await new Promise<string>((resolve) => {
    let text = '';
    child.stdout!.on('data', (d) => {
      text += d;
      if (text.includes('\n')) resolve(text);
    });
    child.on('close', () => resolve(text));
  });
  const pid = Number(out.trim());
  t.true(pid > 0, `the worker said it waits (${out})`);
  const gone = async () => {
    for (let i = 0; i < 100; i++) {
      try {
        process.kill(pid, 0);
      } catch {
        return true;
      }
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    return false;
  };
  t.true(await gone(), 'the orphaned worker exited');
});

test('the logger loads pino only for a line it writes, and writes the same JSON as pino', async (t) => {
  const script = `
    import { createRequire } from 'node:module';
    import { createLogger } from ${JSON.stringify(join(REPO_ROOT, 'dist/shared/log.js'))};
    const loaded = () => Object.keys(createRequire(import.meta.url).cache).some((f) => f.includes('/node_modules/pino/'));
    const quiet = createLogger({ level: 'warn', bindings: { role: 'x' } });
    quiet.debug('not written'); quiet.child({ job: 'j' }).info('nor this');
    process.stdout.write(String(loaded()) + '\\n');
    quiet.child({ job: 'j' }).warn({ password: 'hunter2', nested: { token: 't' } }, 'written');
    process.stdout.write(String(loaded()) + '\\n');
  `;
  const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, LOG_LEVEL: '' } });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d) => (stdout += d));
  child.stderr!.on('data', (d) => (stderr += d));
  // 'close', not 'exit': the process may exit before its output has been read.
  await new Promise((resolve) => child.on('close', resolve));
  t.deepEqual(stdout.trim().split('\n'), ['false', 'true']);
  const lines = stderr.trim().split('\n');
  t.is(lines.length, 1, stderr);
  const line = JSON.parse(lines[0]!);
  t.like(line, { level: 40, role: 'x', job: 'j', password: '[redacted]', nested: { token: '[redacted]' }, msg: 'written' });
  t.is(typeof line.time, 'number');
  t.is(typeof line.pid, 'number');
  t.false(stderr.includes('hunter2'));
});

test('the logger: levels, children, and an unknown level refused as a usage error', (t) => {
  const logger = createLogger({ level: 'info' });
  t.is(logger.level, 'info');
  t.true(logger.isLevelEnabled('info'));
  t.true(logger.isLevelEnabled('error'));
  t.false(logger.isLevelEnabled('debug'));
  t.false(logger.child({ a: 1 }).isLevelEnabled('debug'));
  t.false(createLogger({ level: 'silent' }).isLevelEnabled('fatal'));
  t.throws(() => createLogger({ level: 'bogus' }), { message: /^--log-level: unknown level 'bogus'/, instanceOf: UsageError });
});

/** Runs `script` (an ES module) with the code cache in `cacheDir`; resolves to its stdout. */
async function withCache(cacheDir: string, script: string, env: NodeJS.ProcessEnv = {}): Promise<string> {
  const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, TALLY_CODE_CACHE: cacheDir, ...env } });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d) => (stdout += d));
  child.stderr!.on('data', (d) => (stderr += d));
  // 'close', not 'exit': the process may exit before its output has been read (it printed
  // nothing once, in a loaded CI run).
  const code = await new Promise((resolve) => child.on('close', resolve));
  if (code !== 0 || stderr !== '') throw new Error(`exit ${code}: ${stderr}`);
  return stdout.trim();
}

test('the code cache: written once, used after, refreshed when a module changes, and never in a shared directory', async (t) => {
  const dir = tempDir('tally-code-cache-');
  t.teardown(() => dir.remove());
  const pkg = join(dir.path, 'node_modules', 'pkg');
  mkdirSync(pkg, { recursive: true });
  const source = (value: string) => `const other = require('./other.js');\nexports.value = ${JSON.stringify(value)} + other;\nexports.file = __filename;\nexports.load = () => import('./esm.mjs');\n`;
  writeFileSync(join(pkg, 'index.js'), source('one'));
  writeFileSync(join(pkg, 'other.js'), "module.exports = '!';\n");
  writeFileSync(join(pkg, 'esm.mjs'), "export const x = 'esm';\n");
  const cache = join(dir.path, 'cache');
  const script = `
    import { installCodeCache } from ${JSON.stringify(join(REPO_ROOT, 'dist/shared/code-cache.js'))};
    import { createRequire } from 'node:module';
    installCodeCache('test');
    const pkg = createRequire(${JSON.stringify(join(dir.path, 'x.js'))})('pkg');
    console.log(pkg.value, pkg.file.endsWith('index.js'), (await pkg.load()).x);
  `;
  t.is(await withCache(cache, script), 'one! true esm');
  const files = readdirSync(cache);
  t.is(files.length, 1);
  t.regex(files[0]!, /^test-v\d+\.\d+\.\d+-\w+\.v8cache$/);
  const written = readFileSync(join(cache, files[0]!));
  t.is(await withCache(cache, script), 'one! true esm', 'from the cache');
  // V8 took every entry: nothing was stale, so nothing was written again.
  t.deepEqual(readFileSync(join(cache, files[0]!)), written, 'the cache was used as it was');
  // Same size, other content, other mtime: the entry is not used for it. (index.js, which
  // calls import(), is compiled by Node itself: other.js is the one in the cache.)
  writeFileSync(join(pkg, 'index.js'), source('two'));
  writeFileSync(join(pkg, 'other.js'), "module.exports = '?';\n");
  utimesSync(join(pkg, 'other.js'), new Date(), new Date(Date.now() + 5000));
  t.is(await withCache(cache, script), 'two? true esm');
  const rewritten = readFileSync(join(cache, files[0]!));
  t.notDeepEqual(rewritten, written, 'the changed module was compiled again');
  t.is(await withCache(cache, script), 'two? true esm');
  t.deepEqual(readFileSync(join(cache, files[0]!)), rewritten);
  // A run that loads another module writes the cache with it, and keeps the entries of the
  // modules it did not load: the next run of the script finds all of its own.
  writeFileSync(join(pkg, 'third.js'), "module.exports = 3;\n");
  const third = `
    import { installCodeCache } from ${JSON.stringify(join(REPO_ROOT, 'dist/shared/code-cache.js'))};
    import { createRequire } from 'node:module';
    installCodeCache('test');
    console.log(createRequire(${JSON.stringify(join(dir.path, 'x.js'))})('pkg/third.js'));
  `;
  t.is(await withCache(cache, third), '3');
  const withThird = readFileSync(join(cache, files[0]!));
  t.true(withThird.length > rewritten.length, 'the third module was added');
  t.is(await withCache(cache, script), 'two? true esm');
  t.deepEqual(readFileSync(join(cache, files[0]!)), withThird, 'no entry was lost');
  // A damaged file is replaced, and never breaks a load.
  writeFileSync(join(cache, files[0]!), '\xff\xff\xff\x7f garbage');
  t.is(await withCache(cache, script), 'two? true esm');
  const repaired = readFileSync(join(cache, files[0]!));
  t.true(repaired.length > 100, 'written anew');
  t.is(await withCache(cache, script), 'two? true esm');
  t.deepEqual(readFileSync(join(cache, files[0]!)), repaired, 'and used after');
  // Off, or a directory others may write to: no cache, and the module still loads.
  const off = join(dir.path, 'off');
  t.is(await withCache(off, script, { TALLY_CODE_CACHE: 'off' }), 'two? true esm');
  t.false(existsSync(off));
  const shared = join(dir.path, 'shared');
  mkdirSync(shared);
  chmodSync(shared, 0o777);
  t.is(await withCache(shared, script), 'two? true esm');
  t.deepEqual(readdirSync(shared), []);
});

test('the command and its worker processes each load tally as one bundled module, and count right', async (t) => {
  // A CommonJS preload (given to the worker processes too: they are forked with the command's
  // own Node flags) writes down every file of this repository a process loads as a CommonJS
  // module, and an ES loader hook every ES module.
  const dir = tempDir('tally-bundle-');
  t.teardown(() => dir.remove());
  const log = join(dir.path, 'loaded.txt');
  writeFileSync(join(dir.path, 'hooks.mjs'), `import { appendFileSync } from 'node:fs';
export async function load(url, context, next) {
  appendFileSync(${JSON.stringify(log)}, process.pid + ' ' + url + '\\n');
  return next(url, context);
}
`);
  writeFileSync(join(dir.path, 'register.mjs'), `import { register } from 'node:module';\nregister(${JSON.stringify(pathToFileURL(join(dir.path, 'hooks.mjs')).href)});\n`);
  writeFileSync(join(dir.path, 'record.cjs'), `const { appendFileSync } = require('node:fs');
const { pathToFileURL } = require('node:url');
const Module = require('node:module');
const load = Module.prototype.load;
Module.prototype.load = function (filename) {
  appendFileSync(${JSON.stringify(log)}, process.pid + ' ' + pathToFileURL(filename).href + '\\n');
  return load.call(this, filename);
};
`);
  const child = spawn(process.execPath, ['--require', join(dir.path, 'record.cjs'), '--import', pathToFileURL(join(dir.path, 'register.mjs')).href, join(REPO_ROOT, 'bin', 'tally.js'), 'primes', '1', '2e8', '--tasks', '8', '--workers', '2'], {
    cwd: REPO_ROOT,
    env: cleanEnv({ TALLY_DATA_DIR: join(dir.path, 'data'), TALLY_CODE_CACHE: join(dir.path, 'cache') }),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const run = await collect(child);
  t.is(run.code, 0, run.stderr);
  // π(2·10^8), from the published tables (OEIS A006880 gives π(10^8) = 5,761,455; π(2·10^8) is 11,078,937).
  t.regex(run.stdout, /primes in 1\.\.200000000 = 11078937\n/);
  const ours = new Map<number, string[]>();
  for (const line of readFileSync(log, 'utf8').trim().split('\n')) {
    const [pid, url] = line.split(' ') as [string, string];
    if (!url.startsWith(pathToFileURL(REPO_ROOT).href) || url.includes('/node_modules/')) continue;
    // (A module can reach both records: on Node 20 a forked process's CommonJS main, and what it
    // requires, go through the ES loader's hooks once there are any.)
    const seen = ours.get(Number(pid)) ?? [];
    const file = url.slice(pathToFileURL(REPO_ROOT).href.length);
    if (!seen.includes(file)) ours.set(Number(pid), [...seen, file]);
  }
  t.deepEqual(ours.get(child.pid!), ['bin/tally.js', 'dist/bundle/code-cache.cjs', 'dist/bundle/tally.cjs'], 'the command');
  ours.delete(child.pid!);
  t.true(ours.size >= 1, 'a worker process loaded');
  for (const [pid, urls] of ours) t.deepEqual(urls, ['dist/bundle/worker-main.cjs', 'dist/bundle/code-cache.cjs', 'dist/bundle/worker.cjs'], `worker process ${pid}`);
});

test("the bundles' compiled code is kept in tally's code cache, the command's and its worker processes'; a second run uses it as it is; off is off", async (t) => {
  const dir = tempDir('tally-bundle-cache-');
  t.teardown(() => dir.remove());
  const cache = join(dir.path, 'cache');
  const env = (extra: NodeJS.ProcessEnv = {}) => cleanEnv({ TALLY_DATA_DIR: join(dir.path, 'data'), TALLY_CODE_CACHE: cache, ...extra });
  /** The files each cache has an entry for (the format: shared/code-cache.ts's read and write). */
  const entries = (name: string): string[] => {
    const file = readdirSync(cache).find((f) => f.startsWith(`${name}-v${process.versions.node}-`) && f.endsWith('.v8cache'));
    if (!file) return [];
    const bytes = readFileSync(join(cache, file));
    const files: string[] = [];
    let at = 0;
    const u32 = () => ((at += 4), bytes.readUInt32LE(at - 4));
    const text = () => {
      const length = u32();
      return ((at += length), bytes.toString('utf8', at - length, at));
    };
    for (let count = u32(); count > 0; count--) {
      files.push(text());
      text(); // the key
      const length = u32();
      at += length;
    }
    return files;
  };
  // A job with enough tasks that its worker process gets ready and maps some (the stand-in
  // would do a few tiny ones alone).
  const job = ['primes', '1', '3e8', '--tasks', '12', '--workers', '1'];
  const first = await runTally(job, { env: env() });
  t.is(first.code, 0, first.stderr);
  t.regex(first.stdout, /= 16252325\n/, 'π(3·10^8), from the published tables');
  // One cache per command (each keeps what its own runs compiled), one for the worker processes.
  t.true(entries('cli-primes').includes(join(REPO_ROOT, 'dist/bundle/tally.cjs')), entries('cli-primes').join(' '));
  t.true(entries('worker').includes(join(REPO_ROOT, 'dist/bundle/worker.cjs')), entries('worker').join(' '));
  t.true(entries('cli-primes').some((file) => file.includes('/node_modules/@nats-io/')), 'and the packages');
  const written = readdirSync(cache).map((file) => [file, readFileSync(join(cache, file))] as const);
  const again = await runTally(job, { env: env() });
  t.is(again.code, 0, again.stderr);
  t.regex(again.stdout, /= 16252325\n/);
  for (const [file, bytes] of written) t.deepEqual(readFileSync(join(cache, file)), bytes, `${file}: V8 took every entry, nothing was written again`);
  // Off means off, and the command runs as well.
  const off = join(dir.path, 'off');
  const quiet = await runTally(['sum', '1', '10'], { env: cleanEnv({ TALLY_DATA_DIR: join(dir.path, 'data'), TALLY_CODE_CACHE: 'off', XDG_CACHE_HOME: off }) });
  t.is(quiet.code, 0, quiet.stderr);
  t.regex(quiet.stdout, /= 55\n/);
  t.false(existsSync(off));
  t.false(readdirSync(cache).some((file) => file.startsWith('cli-sum-')), 'and nothing went to the cache of before');
});

test('a connection attempt that times out leaves no socket behind: the process can exit', async (t) => {
  const silent = createServer(() => undefined);
  await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
  t.teardown(() => silent.close());
  const port = (silent.address() as { port: number }).port;
  const script = `
    import { connectToNats } from ${JSON.stringify(join(REPO_ROOT, 'dist/shared/nats/connection.js'))};
    try {
      await connectToNats({ servers: ['nats://127.0.0.1:${port}'], connectTimeoutMs: 500 });
    } catch (error) {
      console.log(error.message);
    }
  `;
  const started = Date.now();
  const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
  let stdout = '';
  child.stdout!.on('data', (d) => (stdout += d));
  const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
  const code = await new Promise((resolve) => child.on('close', (c) => resolve(c)));
  clearTimeout(timer);
  t.is(code, 0, 'exited by itself');
  t.regex(stdout, /timed out/);
  t.true(Date.now() - started < 5000, `took ${Date.now() - started} ms`);
});

test('Object Store listings: none at all when the bucket is empty, and those left behind are swept', async (t) => {
  const server = await startTestServer();
  t.teardown(() => server.stop());
  const nc = await connect({ servers: server.url });
  t.teardown(() => nc.close());
  const jsm = await jetstreamManager(nc);
  const store = await new Objm(nc).create('sweep-test');
  const quick = withQuickList(store, jsm, 'sweep-test');
  t.deepEqual(await quick.list(), []);
  t.is((await jsm.streams.info('OBJ_sweep-test')).state.consumer_count, 0, 'an empty bucket is listed without a consumer');
  await quick.putBlob({ name: 'a' }, new Uint8Array([1, 2, 3]));
  t.deepEqual((await quick.list()).map((info) => info.name), ['a']);
  t.deepEqual(Array.from((await quick.getBlob('a')) ?? []), [1, 2, 3], 'everything else is the store itself');
  t.true((await jsm.streams.info('OBJ_sweep-test')).state.consumer_count >= 1, 'the library listing left its consumer');
  t.true((await sweepIdleListConsumers(jsm, 'sweep-test')) >= 1);
  t.is((await jsm.streams.info('OBJ_sweep-test')).state.consumer_count, 0);
  t.is(await sweepIdleListConsumers(jsm, 'sweep-test'), 0);
});

test('embedded: bad usage after the head start exits 2 and leaves no server, lock or process; resume of a done job reads it back', async (t) => {
  const data = tempDir('tally-startup-data-');
  t.teardown(() => data.remove());
  const env = cleanEnv({ XDG_DATA_HOME: data.path });
  const dir = join(data.path, 'tally');
  const files = () => (existsSync(dir) ? readdirSync(dir).filter((f) => f !== 'jetstream') : []);
  const servers = () => {
    try {
      return execFileSync('pgrep', ['-f', dir], { encoding: 'utf8' }).trim().split('\n').filter(Boolean);
    } catch {
      return []; // pgrep exits 1 when nothing matches
    }
  };
  const leftovers = () => [...files(), ...servers()];
  const bad = await runTally(['sum', '1', '--workers', '2'], { env });
  t.is(bad.code, 2, bad.stderr);
  t.deepEqual(leftovers(), [], 'no lock or server file');
  const usage = await runTally(['count', '--workers', '2'], { env });
  t.is(usage.code, 2);
  t.regex(usage.stderr, /no input given/);
  t.deepEqual(leftovers(), []);
  const run = await runTally(['sum', '1', '100', '--format', 'json', '--workers', '2'], { env });
  t.is(run.code, 0, run.stderr);
  // resume reads the job record in a session of its own before it would run anything.
  const resumed = await runTally(['resume', JSON.parse(run.stdout).job, '--format', 'json', '--workers', '2'], { env, timeoutMs: 30_000 });
  t.is(resumed.code, 0, resumed.stderr);
  t.is(resumed.stdout, run.stdout);
  t.deepEqual(leftovers(), []);
});

test("the embedded server's monitoring endpoint, read over a plain socket: its name and its clients; anything but a 200 is an error", async (t) => {
  const dir = tempDir('tally-monitor-');
  t.teardown(() => dir.remove());
  const server = await startNatsServer({ storeDir: dir.path, monitor: true, extraArgs: ['--name', 'tally-monitor-test'] });
  t.teardown(() => server.stop());
  t.truthy(server.monitorUrl);
  t.deepEqual(await serverStatus(server.monitorUrl!), { connections: 0, serverName: 'tally-monitor-test' });
  const clients = await Promise.all([connect({ servers: server.url }), connect({ servers: server.url })]);
  t.is((await serverStatus(server.monitorUrl!)).connections, 2, 'the two clients this test connected');
  await Promise.all(clients.map((nc) => nc.close()));
  // Something else on the port: an HTTP error, and bytes that are no HTTP at all.
  for (const [answer, error] of [
    ['HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n', /answered 404/],
    ['SSH-2.0-OpenSSH_9.2\r\n', /sent no HTTP response/],
  ] as const) {
    const other = createServer((socket) => socket.end(answer));
    await new Promise<void>((resolve) => other.listen(0, '127.0.0.1', resolve));
    const port = (other.address() as { port: number }).port;
    await t.throwsAsync(serverStatus(`http://127.0.0.1:${port}`), { message: error });
    other.close();
  }
});
