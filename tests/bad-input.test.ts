/**
 * Bad and strange input, end to end through the real CLI: the contract's exit code (0 for input
 * that is merely odd, 2 for bad usage or input, 1 for a server that cannot serve), exactly one
 * line on stderr naming what is wrong, no stack trace, and with --output nothing written.
 * Inputs that are odd but valid (empty, binary, invalid UTF-8, one 300 MB word) are counted and
 * compared with the reference counter. Extends count.e2e and numbers.e2e, which cover the
 * basic cases (missing file, tiny chunk size, FROM > TO, --tasks 0, unreachable port 1).
 */
import test, { type ExecutionContext } from 'ava';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { findNatsServer } from '../coordinator/nats-server.js';
import { FACTORIAL_MAX_N } from '../shared/kinds/factorial.js';
import { REPO_ROOT, TALLY_BIN, cleanEnv, collect, runTally, startTestServer, startWorkers, tempDir, type RunResult, type TestServer, type WorkerFleet } from './helpers/tally.js';
import { referenceUnicodeCount, referenceWhitespaceCount } from './helpers/reference-counter.js';
import { freePort } from './helpers/cluster.js';
import { missingNobody, testNeeding } from './helpers/capability.js';

let server: TestServer;
let workers: WorkerFleet;
let dir: { path: string; remove(): void };
const extraServers: ChildProcess[] = [];

test.before(async () => {
  server = await startTestServer();
  workers = startWorkers(server.url, 2);
  dir = tempDir('tally-bad-input-');
  // World-traversable so that user nobody can reach the files inside.
  chmodSync(dir.path, 0o755);
});

test.after.always(async () => {
  for (const child of extraServers) child.kill('SIGKILL');
  await workers?.stop();
  await server?.stop();
  dir?.remove();
});

const p = (name: string) => join(dir.path, name);

function tally(args: string[], options: { input?: string } = {}): Promise<RunResult> {
  return runTally([...args, '--server', server.url, '--no-progress'], options);
}

/** The contract for a refused input: exit code, one line naming it, no stack trace, no output file. */
function refused(t: ExecutionContext, run: RunResult, code: number, pattern: RegExp, output?: string): void {
  t.is(run.code, code, `exit code; stderr: ${run.stderr}`);
  const lines = run.stderr.trimEnd().split('\n');
  t.is(lines.length, 1, `exactly one line on stderr: ${run.stderr}`);
  t.regex(lines[0]!, /^tally: /);
  t.regex(lines[0]!, pattern);
  t.notRegex(run.stderr, /\n\s+at |Error:|node:internal/, 'no stack trace');
  t.is(run.stdout, '', 'nothing on stdout');
  if (output) t.false(existsSync(output), `${output} was not written`);
}

/** Runs the CLI as user nobody (tests run as root, whom chmod 000 does not stop); null if impossible. */
async function asNobody(args: string[]): Promise<RunResult | null> {
  try {
    execFileSync('setpriv', ['--reuid=nobody', '--regid=nogroup', '--clear-groups', 'true'], { stdio: 'ignore' });
  } catch {
    return null;
  }
  const child = spawn('setpriv', ['--reuid=nobody', '--regid=nogroup', '--clear-groups', process.execPath, TALLY_BIN, ...args, '--server', server.url, '--no-progress'], {
    cwd: REPO_ROOT,
    env: cleanEnv({ HOME: '/nonexistent' }),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  return collect(child);
}

test('a missing path, a FIFO, character devices: exit 2, one line, nothing written', async (t) => {
  execFileSync('mkfifo', [p('fifo')]);
  const out = p('out-missing.json');
  refused(t, await tally(['count', p('missing.txt'), '--output', out]), 2, /missing\.txt: no such file or directory/, out);
  refused(t, await tally(['count', p('fifo'), '--output', out]), 2, /fifo: not a regular file/, out);
  refused(t, await tally(['count', '/dev/null', '--output', out]), 2, /\/dev\/null: not a regular file/, out);
  refused(t, await tally(['count', '/dev/zero', '--output', out]), 2, /\/dev\/zero: not a regular file/, out);
  // A missing path after a good one still refuses the whole job.
  writeFileSync(p('good.txt'), 'good words\n');
  refused(t, await tally(['count', p('good.txt'), p('gone.txt'), '--output', out]), 2, /gone\.txt: no such file or directory/, out);
});

test('a directory with nothing countable in it: exit 2 naming it', async (t) => {
  mkdirSync(p('hollow/inner'), { recursive: true });
  execFileSync('mkfifo', [p('hollow/inner/pipe')]);
  symlinkSync('nowhere', p('hollow/dangling'));
  const out = p('out-hollow.json');
  refused(t, await tally(['count', p('hollow'), '--output', out]), 2, /hollow: no files to count in it: .*hollow\/dangling: broken symbolic link and 1 more$/, out);
});

testNeeding(missingNobody(), 'unreadable file and unreadable directory named outright (run as user nobody): exit 2, permission denied; in a folder, a warning', async (t) => {
  writeFileSync(p('secret.txt'), 'top secret words\n');
  chmodSync(p('secret.txt'), 0o000);
  mkdirSync(p('locked'));
  writeFileSync(p('locked/inside.txt'), 'words\n');
  chmodSync(p('locked'), 0o000);
  mkdirSync(p('mixed'));
  chmodSync(p('mixed'), 0o755);
  writeFileSync(p('mixed/a.txt'), 'readable\n');
  writeFileSync(p('mixed/b.txt'), 'not readable\n');
  chmodSync(p('mixed/a.txt'), 0o644);
  chmodSync(p('mixed/b.txt'), 0o000);
  const probe = (await asNobody(['count', p('mixed/a.txt'), '--format', 'json']))!;
  t.is(probe.code, 0, probe.stderr);
  t.is(JSON.parse(probe.stdout).totalWords, 1, 'user nobody can run tally at all');
  refused(t, (await asNobody(['count', p('secret.txt')]))!, 2, /secret\.txt: permission denied/);
  refused(t, (await asNobody(['count', p('locked')]))!, 2, /locked: permission denied/);
  // Found in a folder, an unreadable file is left out with a warning naming it; the rest is counted.
  const mixed = (await asNobody(['count', p('mixed'), '--format', 'json']))!;
  t.is(mixed.code, 0, mixed.stderr);
  t.is(JSON.parse(mixed.stdout).totalWords, 1);
  t.is(mixed.stderr, `tally: warning: ${p('mixed/b.txt')}: permission denied; not counted\n`);
});

test('an empty file: exit 0, zero words, the output file written', async (t) => {
  writeFileSync(p('empty.txt'), '');
  const out = p('out-empty.json');
  const run = await tally(['count', p('empty.txt'), '--format', 'json', '--output', out]);
  t.is(run.code, 0, run.stderr);
  t.is(run.stderr, '');
  const result = JSON.parse(readFileSync(out, 'utf8'));
  t.like(result, { files: 1, bytes: 0, totalWords: 0, uniqueWords: 0, overlongWords: 0, counts: [] });
});

test('a binary file (a copy of /bin/ls): exit 0, counts equal the reference counter for both tokenizers', async (t) => {
  copyFileSync('/bin/ls', p('ls.bin'));
  const bytes = readFileSync(p('ls.bin'));
  for (const tokenizer of ['unicode', 'whitespace'] as const) {
    const run = await tally(['count', p('ls.bin'), '--format', 'json', '--top', '0', '--tokenizer', tokenizer, '--chunk-size', '8K']);
    t.is(run.code, 0, run.stderr);
    const result = JSON.parse(run.stdout);
    const reference = tokenizer === 'unicode' ? referenceUnicodeCount([bytes]) : referenceWhitespaceCount([bytes]);
    t.is(result.totalWords, reference.totalWords, tokenizer);
    t.is(result.overlongWords, reference.overlongWords, tokenizer);
    t.deepEqual(result.counts, reference.counts, tokenizer);
  }
});

test('invalid UTF-8 of every kind across many chunk boundaries: counts equal the reference counter', async (t) => {
  // Overlong forms, surrogates, bytes never valid in UTF-8, stray continuation bytes, truncated
  // sequences, a BOM in the middle, mixed into real multilingual words; chunks of 1 KiB cut
  // through them everywhere.
  const bad = [[0xc0, 0xaf], [0xe0, 0x80, 0xaf], [0xed, 0xa0, 0x80], [0xf5, 0x80], [0xff], [0xfe], [0x80, 0x80], [0xe2, 0x82], [0xf0, 0x9f, 0x98], [0xef, 0xbb, 0xbf], [0xc3]];
  const words = ['Straße', 'ÉCOLE', 'мир', '日本語', 'naïve', 'don\u2019t', 'x1', '\u{1F600}smile', 'İstanbul'];
  const parts: Buffer[] = [];
  let seed = 7;
  const next = () => (seed = (seed * 1103515245 + 12345) & 0x7fffffff);
  for (let i = 0; i < 40_000; i++) {
    parts.push(Buffer.from(words[next() % words.length]!));
    if (next() % 3 === 0) parts.push(Buffer.from(bad[next() % bad.length]!));
    parts.push(Buffer.from(next() % 5 === 0 ? '\n' : ' '));
  }
  const bytes = Buffer.concat(parts);
  writeFileSync(p('broken.txt'), bytes);
  for (const tokenizer of ['unicode', 'whitespace'] as const) {
    const run = await tally(['count', p('broken.txt'), '--format', 'json', '--top', '0', '--tokenizer', tokenizer, '--chunk-size', '1K']);
    t.is(run.code, 0, run.stderr);
    const result = JSON.parse(run.stdout);
    const reference = tokenizer === 'unicode' ? referenceUnicodeCount([bytes]) : referenceWhitespaceCount([bytes]);
    t.is(result.totalWords, reference.totalWords, tokenizer);
    t.deepEqual(result.counts, reference.counts, tokenizer);
  }
});

test('a 300 MB file without whitespace is one overlong word, counted once', async (t) => {
  const big = tempDir('tally-bad-input-big-');
  t.teardown(big.remove);
  const path = join(big.path, 'one-word.txt');
  writeFileSync(path, Buffer.alloc(300 * 1024 * 1024, 'a'));
  const started = Date.now();
  const run = await tally(['count', path, '--format', 'json']);
  t.is(run.code, 0, run.stderr);
  t.like(JSON.parse(run.stdout), { bytes: 300 * 1024 * 1024, totalWords: 1, overlongWords: 1, uniqueWords: 0, counts: [] });
  t.log(`300 MB in ${Date.now() - started} ms`);
});

test('bad numbers: FROM > TO, non-integers, factorial beyond its limit, --tasks 0, chunk below the minimum', async (t) => {
  const out = p('fact-out');
  const cases: Array<[string[], RegExp, string?]> = [
    [['sum', '10', '-10'], /FROM \(10\) is greater than TO \(-10\)/],
    [['primes', '1e9', '1e3'], /FROM .* is greater than TO/],
    [['sum', '1', '2.5'], /TO: '2\.5' is not an integer/],
    [['sum', '0x10', '20'], /FROM: '0x10' is not an integer/],
    [['primes', '1', 'ten'], /TO: 'ten' is not an integer/],
    [['sum', '1', 'NaN'], /TO: 'NaN' is not an integer/],
    [['sum', '1', 'Infinity'], /TO: 'Infinity' is not an integer/],
    [['sum', '1', ''], /TO/],
    [['factorial', String(FACTORIAL_MAX_N + 1), '--output', out], new RegExp(`above the limit for factorials \\(${FACTORIAL_MAX_N}\\)`), out],
    [['factorial', '1e100', '--output', out], /above the limit/, out],
    [['factorial', '3.5', '--output', out], /N: '3\.5' is not an integer/, out],
    [['sum', '1', '100', '--tasks', '0'], /--tasks/],
    [['sum', '1', '100', '--tasks', 'many'], /--tasks/],
    [['count', '-', '--chunk-size', '15', '--output', p('out-chunk.json')], /--chunk-size: 15 is out of range \(16\.\./, p('out-chunk.json')],
    [['count', '-', '--chunk-size', '0'], /--chunk-size/],
    [['count', '-', '--chunk-size', '-4K'], /--chunk-size/],
  ];
  for (const [args, pattern, output] of cases) {
    const run = await tally(args, { input: 'some words\n' });
    refused(t, run, 2, pattern, output);
  }
});

/** A nats-server started by hand with `args` on a free port. */
async function rawServer(args: string[]): Promise<string> {
  const port = await freePort();
  const child = spawn(findNatsServer(), ['-a', '127.0.0.1', '-p', String(port), ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
  extraServers.push(child);
  await new Promise<void>((resolve, reject) => {
    let log = '';
    child.stderr!.setEncoding('utf8').on('data', (d: string) => {
      log += d;
      if (/Server is ready/.test(log)) resolve();
    });
    child.once('exit', (code) => reject(new Error(`nats-server exited with ${code}: ${log}`)));
  });
  return `127.0.0.1:${port}`;
}

test('a server without JetStream: exit 1, says JetStream is not enabled, names the URL', async (t) => {
  const where = await rawServer([]);
  const out = p('out-nojs.json');
  const run = await runTally(['count', '-', '--server', `nats://${where}`, '--output', out], { input: 'a b c' });
  refused(t, run, 1, new RegExp(`nats://${where}: JetStream is not enabled`), out);
});

test('wrong credentials: exit 1, authentication failed, the password never shown', async (t) => {
  const tmp = tempDir('tally-auth-');
  t.teardown(tmp.remove);
  const password = 'Hunter2-sEcReT-pw';
  const where = await rawServer(['--user', 'alice', '--pass', 'right-password', '-js', '-sd', tmp.path]);
  const out = p('out-auth.json');
  const run = await runTally(['sum', '1', '10', '--server', `nats://mallory:${password}@${where}`, '--no-progress'], {});
  refused(t, run, 1, /authentication failed/);
  t.regex(run.stderr, new RegExp(where.replace(/\./g, '\\.')), 'names the server');
  const count = await runTally(['count', '-', '--server', `nats://alice:${password}@${where}`, '--output', out, '--log-level', 'debug'], { input: 'a b c' });
  t.is(count.code, 1);
  t.regex(count.stderr, /authentication failed/);
  t.false(existsSync(out));
  for (const r of [run, count]) t.false((r.stdout + r.stderr).includes(password), 'the password never appears');
});

test('an unreachable server: a port nobody listens on, and one that accepts but never speaks NATS: exit 1 within 10 s', async (t) => {
  const closed = await freePort();
  const silent: Server = createServer(() => undefined);
  await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
  t.teardown(() => silent.close());
  const silentPort = (silent.address() as { port: number }).port;
  for (const url of [`nats://127.0.0.1:${closed}`, `nats://127.0.0.1:${silentPort}`]) {
    const out = p(`out-unreachable-${url.split(':').pop()}.json`);
    const run = await runTally(['count', '-', '--server', url, '--output', out, '--no-progress'], { input: 'a b c' });
    refused(t, run, 1, new RegExp(url.replace(/\./g, '\\.')), out);
    t.true(run.ms < 10_000, `${url}: took ${run.ms} ms`);
    t.log(`${url}: failed in ${run.ms} ms: ${run.stderr.trim()}`);
  }
});

test('bad usage: server URLs that name no server, empty paths, unknown log levels, no workers, no command: exit 2, one line', async (t) => {
  const sample = join(REPO_ROOT, 'samples');
  const embedded = cleanEnv({ TALLY_DATA_DIR: p('usage-store') });
  for (const url of ['garbage url', 'nats://', 'nats://127.0.0.1:99999', 'nats://256.1.1.1:4222', 'nats://host:4222/path']) {
    refused(t, await runTally(['sum', '1', '2', '--server', url]), 2, /--server: '.*' is not a server URL/);
  }
  refused(t, await runTally(['sum', '1', '2', '--server', '']), 2, /--server: no URL given/);
  refused(t, await runTally(['count', sample, '--output', ''], { env: embedded }), 2, /--output: the path is empty/);
  refused(t, await runTally(['sum', '1', '2', '--log-level', 'bogus'], { env: embedded }), 2, /--log-level: unknown level 'bogus'/);
  refused(t, await runTally(['sum', '1', '2'], { env: { ...embedded, LOG_LEVEL: 'bogus' } }), 2, /LOG_LEVEL: unknown level 'bogus'/);
  refused(t, await runTally(['sum', '1', '2', '--workers', '0'], { env: embedded }), 2, /--workers: an embedded run needs at least 1 worker process/);
  refused(t, await tally(['count', sample, '--chunk-size', '1G']), 2, /--chunk-size: 1G is out of range/);
  const bare = await runTally([]);
  t.is(bare.code, 2, 'no command: help on stderr, exit 2');
  t.regex(bare.stderr, /Usage: tally/);
  t.is((await runTally(['--help'])).code, 0, 'help asked for: exit 0');
  t.false(existsSync(join(p('usage-store'), 'server.lock')), 'no embedded server left behind');
});

test('jobs --delete checks every id before deleting any; --delete and --retention do not mix', async (t) => {
  const done = await tally(['sum', '1', '10', '--format', 'json']);
  const job = JSON.parse(done.stdout).job as string;
  refused(t, await tally(['jobs', '--delete', job, 'abc-404']), 2, /no job 'abc-404'; nothing deleted/);
  refused(t, await tally(['jobs', '--delete', job, '--retention', '7d']), 2, /give --delete or --retention, not both/);
  t.is((await tally(['result', job])).code, 0, 'the job is still there');
  const deleted = await tally(['jobs', '--delete', job, job]);
  t.is(deleted.code, 0, deleted.stderr);
  t.is(deleted.stdout, `deleted ${job}\n`);
});
