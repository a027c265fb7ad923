/**
 * Where results go, end to end through the real CLI: --output is checked before any job (it may
 * not be a directory, sit in a missing or unwritable directory, or be one of the inputs), "-"
 * is stdout, a write that fails after the job names the job; and table output is safe on a
 * terminal (controls and bidi characters escaped, columns aligned by display width) while
 * json/tsv/csv keep the exact words.
 *
 * Refusals run against a server URL nobody listens on: exit 2 instead of the unreachable
 * server's exit 1 shows that the output was refused before any job was submitted.
 */
import test, { type ExecutionContext } from 'ava';
import { execFileSync, spawn } from 'node:child_process';
import { chmodSync, closeSync, existsSync, linkSync, mkdirSync, openSync, readdirSync, readFileSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { renderJobs } from '../coordinator/commands/jobs.js';
import { formatTable, loadDisplayWidth } from '../coordinator/output.js';
import type { JobRecord } from '../coordinator/job-store.js';
import { REPO_ROOT, TALLY_BIN, cleanEnv, collect, runTally, spawnTally, startTestServer, startWorkers, tempDir, type RunResult, type TestServer, type WorkerFleet } from './helpers/tally.js';
import { referenceUnicodeCount, referenceWhitespaceCount } from './helpers/reference-counter.js';

const NOBODY_LISTENS = 'nats://127.0.0.1:1';

let server: TestServer;
let workers: WorkerFleet;
let dir: { path: string; remove(): void };

test.before(async () => {
  await loadDisplayWidth();
  server = await startTestServer();
  workers = startWorkers(server.url, 1);
  dir = tempDir('tally-output-');
  // World-traversable so that user nobody can reach the files inside.
  chmodSync(dir.path, 0o755);
});

test.after.always(async () => {
  await workers?.stop();
  await server?.stop();
  dir?.remove();
});

const p = (...names: string[]) => join(dir.path, ...names);

function tally(args: string[], options: { input?: string; cwd?: string } = {}): Promise<RunResult> {
  return runTally([...args, '--server', server.url, '--no-progress'], options);
}

/** Runs the CLI against a server nobody listens on: reaching it would exit 1, not 2. */
function beforeAnyJob(args: string[], options: { cwd?: string } = {}): Promise<RunResult> {
  return runTally([...args, '--server', NOBODY_LISTENS, '--no-progress'], options);
}

/** The contract for a refusal: exit 2, one line starting "tally: " that matches, nothing on stdout. */
function refused(t: ExecutionContext, run: RunResult, pattern: RegExp): void {
  t.is(run.code, 2, `exit code; stderr: ${run.stderr}`);
  const lines = run.stderr.trimEnd().split('\n');
  t.is(lines.length, 1, `exactly one line on stderr: ${run.stderr}`);
  t.regex(lines[0]!, /^tally: /);
  t.regex(lines[0]!, pattern);
  t.is(run.stdout, '');
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** A file's bytes and modification time, to show it was not touched. */
function snapshot(path: string): { bytes: string; mtimeMs: number; ino: number } {
  const st = statSync(path);
  return { bytes: readFileSync(path).toString('base64'), mtimeMs: st.mtimeMs, ino: st.ino };
}

/** Runs the CLI as user nobody (tests run as root, whom permissions do not stop); null if impossible. */
async function asNobody(args: string[]): Promise<RunResult | null> {
  try {
    execFileSync('setpriv', ['--reuid=nobody', '--regid=nogroup', '--clear-groups', 'true'], { stdio: 'ignore' });
  } catch {
    return null;
  }
  const child = spawn('setpriv', ['--reuid=nobody', '--regid=nogroup', '--clear-groups', process.execPath, TALLY_BIN, ...args, '--server', NOBODY_LISTENS, '--no-progress'], {
    cwd: REPO_ROOT,
    env: cleanEnv({ HOME: '/nonexistent' }),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  return collect(child);
}

test('--output naming an input is refused before the job: the file, a link to it, a hard link, stdin redirected from it', async (t) => {
  mkdirSync(p('same'));
  const input = p('same', 'input.txt');
  writeFileSync(input, 'the cat and the hat\n'.repeat(50_000));
  symlinkSync('input.txt', p('same', 'link.txt'));
  linkSync(input, p('same', 'hard.txt'));
  const before = snapshot(input);

  refused(t, await beforeAnyJob(['count', input, '--output', input]), new RegExp(`${escapeRegExp(input)}: is an input of this job; --output may not replace it$`));
  refused(t, await beforeAnyJob(['count', 'input.txt', '--output', 'link.txt'], { cwd: p('same') }), /^tally: link\.txt: is an input of this job \(input\.txt\)/);
  refused(t, await beforeAnyJob(['count', input, '--output', p('same', 'hard.txt')]), /hard\.txt: is an input of this job \(.*same\/input\.txt\)/);
  // A directory's files are inputs too.
  refused(t, await beforeAnyJob(['count', p('same'), '--output', input]), /input\.txt: is an input of this job/);

  // `tally count - --output input.txt < input.txt`
  const fd = openSync(input, 'r');
  t.teardown(() => closeSync(fd));
  const child = spawn(process.execPath, [TALLY_BIN, 'count', '-', '--output', input, '--server', NOBODY_LISTENS, '--no-progress'], { env: cleanEnv(), stdio: [fd, 'pipe', 'pipe'] });
  refused(t, await collect(child), /input\.txt: is an input of this job \(stdin\)/);

  // Against a live server too: still refused, and the input is whole.
  refused(t, await tally(['count', input, '--output', input]), /is an input of this job/);
  t.deepEqual(snapshot(input), before, 'the input is untouched');
  t.deepEqual(readdirSync(p('same')).sort(), ['hard.txt', 'input.txt', 'link.txt'], 'nothing written beside it');
});

test('--output is checked before the job: a directory, a missing or file parent, /proc, unwritable places; factorial --output DIR too', async (t) => {
  mkdirSync(p('target'));
  writeFileSync(p('target', 'in.txt'), 'a b c\n');
  const input = p('target', 'in.txt');
  const count = (output: string) => beforeAnyJob(['count', input, '--output', output]);

  refused(t, await count(p('target')), /target: cannot write: is a directory$/);
  refused(t, await count(p('missing', 'out.txt')), /missing\/out\.txt: cannot write: directory .*missing: no such file or directory$/);
  refused(t, await count(p('target', 'in.txt', 'out.txt')), /in\.txt\/out\.txt: cannot write: not a directory$/);
  refused(t, await count('/proc/version'), /^tally: \/proc\/version: cannot write: directory \/proc: does not accept new files$/);
  symlinkSync(p('missing', 'x.txt'), p('target', 'dangling.txt'));
  refused(t, await count(p('target', 'dangling.txt')), /dangling\.txt: cannot write: directory .*missing: no such file or directory$/);
  refused(t, await beforeAnyJob(['result', 'abc-def', '--output', p('target')]), /target: cannot write: is a directory$/);
  refused(t, await beforeAnyJob(['resume', 'abc-def', '--output', '/proc/version']), /\/proc\/version: cannot write: directory \/proc: does not accept new files$/);
  refused(t, await beforeAnyJob(['factorial', '10', '--output', input]), /in\.txt: not a directory$/);
  refused(t, await beforeAnyJob(['factorial', '10', '--output', p('target', 'in.txt', 'sub')]), /in\.txt\/sub: cannot create it: .*in\.txt is not a directory$/);
  refused(t, await beforeAnyJob(['factorial', '10', '--output', '/proc/tally']), /\/proc\/tally: cannot create it in \/proc: does not accept new files$/);
  t.deepEqual(readdirSync(p('target')).sort(), ['dangling.txt', 'in.txt'], 'no probe or temp file left behind');

  // With a live server the directory is refused at once, not after the job.
  refused(t, await tally(['count', input, '--output', p('target')]), /target: cannot write: is a directory$/);

  mkdirSync(p('locked'));
  chmodSync(p('locked'), 0o555);
  writeFileSync(p('readonly.txt'), 'keep me');
  chmodSync(p('readonly.txt'), 0o444);
  chmodSync(input, 0o644);
  const probe = await asNobody(['--version']);
  if (probe === null || probe.code !== 0) {
    t.log(`cannot run the CLI as user nobody here (${probe?.stderr.trim() ?? 'no setpriv'}); permission checks skipped (root writes everywhere)`);
    return;
  }
  refused(t, (await asNobody(['count', input, '--output', p('locked', 'out.txt')]))!, /locked\/out\.txt: cannot write: directory .*locked: permission denied$/);
  refused(t, (await asNobody(['count', input, '--output', p('readonly.txt')]))!, /readonly\.txt: cannot write: permission denied$/);
  refused(t, (await asNobody(['factorial', '10', '--output', p('locked')]))!, /locked: cannot write files there: permission denied$/);
  refused(t, (await asNobody(['factorial', '10', '--output', p('locked', 'new')]))!, /locked\/new: cannot create it in .*locked: permission denied$/);
  t.is(readFileSync(p('readonly.txt'), 'utf8'), 'keep me');
});

test('--output - is stdout, not a file named -', async (t) => {
  mkdirSync(p('dash'));
  const run = await tally(['count', '-', '--format', 'tsv', '--output', '-'], { input: 'b a b\n', cwd: p('dash') });
  t.is(run.code, 0, run.stderr);
  t.is(run.stdout, 'b\t2\na\t1\n');
  t.deepEqual(readdirSync(p('dash')), [], 'no file named -');
});

test('a write that fails after the job names the job (exit 1), whose result tally result then writes', async (t) => {
  const run = await tally(['count', '-', '--format', 'json', '--output', '/dev/full'], { input: 'one two two\n' });
  t.is(run.code, 1, run.stderr);
  const match = /^tally: \/dev\/full: cannot write: no space left on device; job (\S+) is done: tally result \1 --output FILE\n$/.exec(run.stderr);
  t.truthy(match, run.stderr);
  const out = p('recovered.json');
  const again = await tally(['result', match![1]!, '--format', 'json', '--output', out]);
  t.is(again.code, 0, again.stderr);
  t.deepEqual(JSON.parse(readFileSync(out, 'utf8')).counts, [['two', 2], ['one', 1]]);
});

test('resume and result refuse an --output that is one of the job\'s inputs; the job stays resumable', async (t) => {
  // A server with no workers: the job waits there, and its coordinator is then killed.
  const idle = await startTestServer();
  t.teardown(() => idle.stop());
  mkdirSync(p('resume'));
  const text = 'alpha beta beta gamma gamma gamma\n'.repeat(20_000);
  writeFileSync(p('resume', 'book.txt'), text);
  symlinkSync('book.txt', p('resume', 'book-link.txt'));
  const before = snapshot(p('resume', 'book.txt'));
  const env = cleanEnv();
  const child = spawnTally(['count', 'book.txt', '--chunk-size', '64K', '--server', idle.url, '--no-progress'], { cwd: p('resume'), env });
  const running = collect(child);
  let job: string | undefined;
  for (let i = 0; i < 100 && !job; i++) {
    await sleep(300);
    const jobs = await runTally(['jobs', '--format', 'json', '--server', idle.url]);
    job = (JSON.parse(jobs.stdout || '[]') as Array<{ id: string }>)[0]?.id;
  }
  child.kill('SIGKILL');
  await running;
  t.truthy(job, 'the job was submitted');

  // Before the fix this resumed and waited for workers: a bounded wait tells the two apart.
  const resume = (output: string) => runTally(['resume', job!, '--output', output, '--server', idle.url, '--no-progress'], { cwd: REPO_ROOT, timeoutMs: 30_000 });
  refused(t, await resume(p('resume', 'book.txt')), /resume\/book\.txt: is an input of this job; --output may not replace it$/);
  refused(t, await resume(p('resume', 'book-link.txt')), /book-link\.txt: is an input of this job \(.*resume\/book\.txt\)/);
  t.deepEqual(snapshot(p('resume', 'book.txt')), before, 'the input is untouched');

  // Nothing was touched: with a worker the job finishes, with the reference's counts.
  const fleet = startWorkers(idle.url, 1);
  t.teardown(() => fleet.stop());
  const out = p('resume', 'out.json');
  const done = await runTally(['resume', job!, '--format', 'json', '--top', '0', '--output', out, '--server', idle.url, '--no-progress']);
  t.is(done.code, 0, done.stderr);
  t.deepEqual(JSON.parse(readFileSync(out, 'utf8')).counts, referenceUnicodeCount([Buffer.from(text)]).counts);
  // The job is done now; its result cannot be written over its input either.
  refused(t, await runTally(['result', job!, '--output', p('resume', 'book.txt'), '--server', idle.url, '--no-progress']), /book\.txt: is an input of this job/);
  t.deepEqual(snapshot(p('resume', 'book.txt')), before, 'the input is untouched');
});

/** Controls, DEL, C1 controls and bidi controls: none may reach a terminal raw. */
const UNSAFE = /[\x00-\x09\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/u;

test('table output escapes controls and bidi characters visibly; json, tsv and csv keep the exact words', async (t) => {
  // Whitespace tokens: the unicode tokenizer never makes a word of a control character.
  const words: Array<[raw: string, shown: string]> = [
    ['red\x1b[31mX', 'red\\x1b[31mX'],
    ['osc\x1b]0;pwned\x07', 'osc\\x1b]0;pwned\\x07'],
    ['bell\x07', 'bell\\x07'],
    ['csi\u009b2J', 'csi\\x9b2J'],
    ['evil\u202etxt.exe', 'evil\\u202etxt.exe'],
    ['iso\u2066x\u2069', 'iso\\u2066x\\u2069'],
    ['del\x7f', 'del\\x7f'],
    // A word that spells an escape is not shown as the control it spells.
    ['lit\\x1b', 'lit\\\\x1b'],
  ];
  const counts = words.map(([raw], i) => [raw, words.length - i] as [string, number]);
  const text = counts.map(([raw, n]) => `${raw} `.repeat(n)).join('\n') + '\n';
  writeFileSync(p('crafted.txt'), text);
  const args = ['count', p('crafted.txt'), '--tokenizer', 'whitespace', '--case-sensitive', '--top', '0'];

  const table = await tally(args);
  t.is(table.code, 0, table.stderr);
  const lines = table.stdout.split('\n');
  t.false(UNSAFE.test(table.stdout), `raw control or bidi character in ${JSON.stringify(table.stdout)}`);
  t.is(lines.length, 1 + words.length + 2, 'header, one line per word, totals, final newline');
  words.forEach(([, shown], i) => {
    t.regex(lines[1 + i]!, new RegExp(`^${i + 1}  ${escapeRegExp(shown)} +${words.length - i}$`));
  });

  const reference = referenceWhitespaceCount([Buffer.from(text)], { caseSensitive: true });
  t.deepEqual(reference.counts, counts, 'the reference agrees on the words');
  const json = await tally([...args, '--format', 'json']);
  t.deepEqual(JSON.parse(json.stdout).counts, counts);
  const tsv = await tally([...args, '--format', 'tsv']);
  t.is(tsv.stdout, counts.map(([word, n]) => `${word}\t${n}\n`).join(''));
  const csv = await tally([...args, '--format', 'csv']);
  t.is(csv.stdout, 'word,count\n' + counts.map(([word, n]) => `${word},${n}\n`).join(''));
});

/**
 * Terminal columns by the test's own small table: CJK, Hangul and fullwidth forms 2, combining
 * marks and zero-width characters 0, everything else 1.
 */
function columns(text: string): number {
  let width = 0;
  for (const ch of text) {
    const c = ch.codePointAt(0)!;
    if ((c >= 0x300 && c <= 0x36f) || (c >= 0x200b && c <= 0x200d)) continue;
    const wide = (c >= 0x1100 && c <= 0x115f) || (c >= 0x2e80 && c <= 0xa4cf) || (c >= 0xac00 && c <= 0xd7a3) || (c >= 0xff01 && c <= 0xff60);
    width += wide ? 2 : 1;
  }
  return width;
}

test('table columns line up by display width: wide CJK and fullwidth 2 columns, combining marks 0', async (t) => {
  const words = ['日本語', 'ｆｕｌｌ', 'cafe\u0301', '한국어', 'mixed漢字', 'plain'];
  const text = words.map((word, i) => `${word} `.repeat(words.length - i)).join('\n') + '\n';
  writeFileSync(p('wide.txt'), text);
  const run = await tally(['count', p('wide.txt'), '--case-sensitive']);
  t.is(run.code, 0, run.stderr);
  const lines = run.stdout.split('\n').slice(0, 1 + words.length);
  t.is(lines[0], `#  word${' '.repeat(columns('mixed漢字') - 4)}  count`);
  for (const [i, line] of lines.entries()) {
    // Counts are right-aligned: every line ends in the same column.
    t.is(columns(line), columns(lines[0]!), `line ${i}: ${line}`);
    if (i > 0) t.true(line.startsWith(`${i}  ${words[i - 1]} `), line);
  }

  // Zero-width characters, straight through formatTable.
  const table = formatTable([['a\u200bb', 1], ['a\u200db', 22]], ['word', 'count']).split('\n');
  t.deepEqual(table.slice(0, 3).map(columns), [11, 11, 11], table.join('\n'));
});

test('tally jobs escapes file names and errors: a name with a newline and ESC stays on its row', async (t) => {
  mkdirSync(p('names'));
  const name = 'a\nb\x1b[31mc\u202e.txt';
  writeFileSync(p('names', name), 'hello world\n');
  const counted = await tally(['count', 'names', '--format', 'json'], { cwd: dir.path });
  t.is(counted.code, 0, counted.stderr);
  const job = JSON.parse(counted.stdout).job as string;
  const jobs = await tally(['jobs']);
  t.is(jobs.code, 0, jobs.stderr);
  t.false(UNSAFE.test(jobs.stdout), `raw control or bidi character in ${JSON.stringify(jobs.stdout)}`);
  const rows = jobs.stdout.trimEnd().split('\n');
  t.regex(rows[0]!, /^job +kind +arguments/);
  for (const row of rows.slice(1)) t.regex(row, /^[a-z0-9]+-[a-z0-9]+ +\w+ /, 'every row is a job');
  const row = rows.find((r) => r.startsWith(job));
  t.truthy(row);
  t.true(row!.includes('names/a\\nb\\x1b[31mc\\u202e.txt'), row);
  const json = await tally(['jobs', '--format', 'json']);
  const record = (JSON.parse(json.stdout) as JobRecord[]).find((r) => r.id === job)!;
  t.deepEqual((record.args as { inputs: Array<{ path: string }> }).inputs.map((input) => input.path), [`names/${name}`], 'json keeps the name exact');

  // The error column, from a record as a job would store it.
  const failed: JobRecord = {
    ...record,
    id: 'abc-failed',
    status: 'failed',
    error: `job abc-failed failed on names/${name} bytes 0-11: \x1b]8;;http://x\x07link\x1b]8;;\x07`,
  };
  const rendered = renderJobs([failed], 'table');
  t.false(UNSAFE.test(rendered), JSON.stringify(rendered));
  t.is(rendered.trimEnd().split('\n').length, 2);
  t.true(rendered.includes('failed on names/a\\nb\\x1b[31mc\\u202e.txt bytes 0-11: \\x1b]8;;http://x\\x07link\\x1b]8;;\\x07'), rendered);
  t.true(existsSync(p('names', name)));
});
