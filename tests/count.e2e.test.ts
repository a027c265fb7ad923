/**
 * `tally count` end to end: a real nats-server, `tally worker` with two processes, the real CLI,
 * real multilingual text that a package ships (TypeScript's localized diagnostics), invalid
 * UTF-8, compared with `LC_ALL=C wc -w` and with a simple reference counter.
 */
import test from 'ava';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { closeSync, copyFileSync, linkSync, lstatSync, openSync, readFileSync, statSync, symlinkSync, writeFileSync, mkdirSync, readdirSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { REPO_ROOT, TALLY_BIN, runTally, startTestServer, startWorkers, tempDir, type TestServer, type WorkerFleet } from './helpers/tally.js';
import { referenceUnicodeCount, referenceWhitespaceCount } from './helpers/reference-counter.js';

const LANGUAGES = ['cs', 'de', 'ja', 'ru', 'zh-cn', 'ko', 'tr'];
let server: TestServer;
let workers: WorkerFleet;
let corpus: { path: string; remove(): void };
let files: string[];

test.before(async () => {
  server = await startTestServer();
  workers = startWorkers(server.url, 2);
  corpus = tempDir('tally-corpus-');
  mkdirSync(join(corpus.path, 'nested', 'deeper'), { recursive: true });
  for (const [i, language] of LANGUAGES.entries()) {
    const source = join(REPO_ROOT, 'node_modules', 'typescript', 'lib', language, 'diagnosticMessages.generated.json');
    const target = i % 2 === 0 ? join(corpus.path, `${language}.json`) : join(corpus.path, 'nested', 'deeper', `${language}.json`);
    copyFileSync(source, target);
  }
  // Invalid UTF-8 in the middle of words, a lone continuation byte run, and a truncated sequence at the end.
  const english = readFileSync(join(REPO_ROOT, 'node_modules', 'typescript', 'README.md'));
  const broken = Buffer.concat([english.subarray(0, 3000), Buffer.from([0xff, 0x41, 0xc3, 0x28, 0x80, 0x80, 0x80]), english.subarray(3000), Buffer.from([0xe2, 0x82])]);
  writeFileSync(join(corpus.path, 'nested', 'broken.txt'), broken);
  writeFileSync(join(corpus.path, 'empty.txt'), '');
  files = listFiles(corpus.path);
});

test.after.always(async () => {
  await workers?.stop();
  await server?.stop();
  corpus?.remove();
});

function listFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true, recursive: true })
    .filter((entry) => entry.isFile())
    .map((entry) => join(entry.parentPath, entry.name))
    .sort();
}

function wcWords(paths: string[]): number {
  const output = execFileSync('wc', ['-w', ...paths], { env: { ...process.env, LC_ALL: 'C' }, encoding: 'utf8' });
  const lines = output.trim().split('\n');
  return Number(lines[lines.length - 1]!.trim().split(/\s+/)[0]);
}

test('whitespace totals equal LC_ALL=C wc -w, per-word counts equal a simple counter', async (t) => {
  const run = await runTally(['count', corpus.path, '--server', server.url, '--tokenizer', 'whitespace', '--top', '0', '--format', 'json', '--chunk-size', '64K']);
  t.is(run.code, 0, run.stderr);
  const result = JSON.parse(run.stdout);
  t.is(result.kind, 'count');
  t.is(result.files, files.length);
  t.is(result.totalWords, wcWords(files));
  t.true(result.tasks > 10, `expected many tasks, got ${result.tasks}`);
  const reference = referenceWhitespaceCount(files.map((f) => readFileSync(f)));
  t.is(result.totalWords, reference.totalWords);
  t.deepEqual(result.counts, reference.counts);
});

test('unicode per-word counts equal a simple regex counter, with tasks spread over both worker processes', async (t) => {
  const run = await runTally(['count', corpus.path, '--server', server.url, '--top', '0', '--format', 'json', '--chunk-size', '32K']);
  t.is(run.code, 0, run.stderr);
  const result = JSON.parse(run.stdout);
  const reference = referenceUnicodeCount(files.map((f) => readFileSync(f)));
  t.is(result.totalWords, reference.totalWords);
  t.is(result.uniqueWords, reference.counts.length);
  t.is(result.overlongWords, reference.overlongWords);
  t.deepEqual(result.counts, reference.counts);
  t.is(result.bytes, files.reduce((sum, f) => sum + readFileSync(f).length, 0));

  const workersRun = await runTally(['workers', '--server', server.url, '--format', 'json']);
  t.is(workersRun.code, 0, workersRun.stderr);
  const live = JSON.parse(workersRun.stdout) as Array<{ pid: number; tasksDone: number }>;
  t.is(live.length, 2);
  t.true(live.every((w) => w.tasksDone > 0), `both processes should have worked: ${JSON.stringify(live)}`);
});

test('case-sensitive counting and --max-word-bytes follow the contract', async (t) => {
  const dir = tempDir();
  t.teardown(dir.remove);
  const text = 'Word word WORD ΟΔΟΣ οδος ' + 'x'.repeat(40) + " don't l’homme rock'n'roll 3.14 ";
  writeFileSync(join(dir.path, 'a.txt'), text.repeat(50));
  const run = await runTally(['count', dir.path, '--server', server.url, '--case-sensitive', '--max-word-bytes', '16', '--top', '0', '--format', 'json', '--chunk-size', '100']);
  t.is(run.code, 0, run.stderr);
  const result = JSON.parse(run.stdout);
  const reference = referenceUnicodeCount([Buffer.from(text.repeat(50))], { caseSensitive: true, maxWordBytes: 16 });
  t.deepEqual(result.counts, reference.counts);
  t.is(result.overlongWords, 50);
  t.is(result.totalWords, reference.totalWords);
});

test('stdin, tsv/csv/table formats and --output written atomically', async (t) => {
  const dir = tempDir();
  t.teardown(dir.remove);
  const input = 'the cat and the hat and the bat\n';
  const tsv = await runTally(['count', '-', '--server', server.url, '--format', 'tsv'], { input });
  t.is(tsv.code, 0, tsv.stderr);
  t.is(tsv.stdout, 'the\t3\nand\t2\nbat\t1\ncat\t1\nhat\t1\n');
  const csv = await runTally(['count', '-', '--server', server.url, '--format', 'csv', '--top', '2'], { input });
  t.is(csv.stdout, 'word,count\nthe,3\nand,2\n');
  const out = join(dir.path, 'result.json');
  const json = await runTally(['count', '-', '--server', server.url, '--format', 'json', '--output', out], { input });
  t.is(json.code, 0, json.stderr);
  t.is(json.stdout, '');
  t.true(existsSync(out));
  t.is(JSON.parse(readFileSync(out, 'utf8')).totalWords, 8);
  t.deepEqual(readdirSync(dir.path), ['result.json'], 'no temp file left behind');
  const table = await runTally(['count', '-', '--server', server.url], { input });
  t.regex(table.stdout, /the\s+3/);
  t.regex(table.stdout, /8 words, 5 unique/);
});

test('--output follows a link, keeps a file\'s permissions and writes through /dev/stdout; a full stdout is one line, exit 1', async (t) => {
  const dir = tempDir();
  t.teardown(dir.remove);
  const input = 'the cat and the hat\n';
  const expected = 'the\t2\nand\t1\ncat\t1\nhat\t1\n';
  const count = (output: string) => runTally(['count', '-', '--server', server.url, '--format', 'tsv', '--output', output], { input });

  writeFileSync(join(dir.path, 'target.txt'), 'old');
  symlinkSync('target.txt', join(dir.path, 'link.txt'));
  t.is((await count(join(dir.path, 'link.txt'))).code, 0);
  t.true(lstatSync(join(dir.path, 'link.txt')).isSymbolicLink(), 'the link stays a link');
  t.is(readFileSync(join(dir.path, 'target.txt'), 'utf8'), expected);

  writeFileSync(join(dir.path, 'private.txt'), 'old', { mode: 0o600 });
  t.is((await count(join(dir.path, 'private.txt'))).code, 0);
  t.is(statSync(join(dir.path, 'private.txt')).mode & 0o777, 0o600, 'permissions kept');
  t.is(readFileSync(join(dir.path, 'private.txt'), 'utf8'), expected);

  const through = await count('/dev/stdout');
  t.is(through.code, 0, through.stderr);
  t.is(through.stdout, expected);
  t.true(lstatSync('/dev/stdout').isSymbolicLink(), '/dev/stdout is left as it was');
  t.deepEqual(readdirSync(dir.path).sort(), ['link.txt', 'private.txt', 'target.txt'], 'no temp file left behind');

  const full = openSync('/dev/full', 'w');
  t.teardown(() => closeSync(full));
  const child = spawn(process.execPath, [TALLY_BIN, 'count', '-', '--server', server.url], { stdio: ['pipe', full, 'pipe'] });
  child.stdin!.end(input);
  const run = await collectStderr(child);
  t.is(run.code, 1);
  t.is(run.stderr, 'tally: cannot write to stdout: no space left on device\n');
});

test('a file given twice, a directory and a file in it, a hard link: each file counted once (as with wc -w over the distinct files), and said so', async (t) => {
  const dir = tempDir('tally-merged-');
  t.teardown(dir.remove);
  mkdirSync(join(dir.path, 'sub'));
  const a = join(dir.path, 'a.json');
  const b = join(dir.path, 'sub', 'b.json');
  copyFileSync(files.find((f) => f.endsWith('de.json'))!, a);
  copyFileSync(files.find((f) => f.endsWith('ru.json'))!, b);
  linkSync(a, join(dir.path, 'sub', 'a-hard-link.json'));
  // a.json twice; the walk of sub/ meets a's hard link; sub/b.json once more.
  const args = ['count', a, a, join(dir.path, 'sub'), b, '--server', server.url, '--tokenizer', 'whitespace'];
  const json = await runTally([...args, '--format', 'json']);
  t.is(json.code, 0, json.stderr);
  const result = JSON.parse(json.stdout);
  t.is(result.files, 2);
  t.is(result.mergedPaths, 3);
  t.is(result.totalWords, wcWords([a, b]));
  t.is(json.stderr, 'tally: 3 paths name files already counted (same file); each file is counted once\n');

  const table = await runTally(args);
  t.is(table.code, 0, table.stderr);
  t.regex(table.stdout, new RegExp(`^${result.totalWords} words, .* · 2 files \\(3 repeated paths counted once\\), \\d+ bytes, `, 'm'));
  const again = await runTally(['result', table.stdout.trim().split(' ').pop()!, '--server', server.url]);
  t.is(again.stdout, table.stdout, 'tally result prints the same');

  // Distinct paths: nothing said, and the JSON output as it always was.
  const plain = await runTally(['count', a, b, '--server', server.url, '--format', 'json']);
  t.is(plain.stderr, '');
  t.false('mergedPaths' in JSON.parse(plain.stdout));
});

function collectStderr(child: ChildProcess): Promise<{ code: number | null; stderr: string }> {
  let stderr = '';
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  return new Promise((resolve) => child.on('close', (code) => resolve({ code, stderr })));
}

test('bad input: one line, exit 2, nothing written', async (t) => {
  const dir = tempDir();
  t.teardown(dir.remove);
  const missing = await runTally(['count', join(dir.path, 'nope.txt'), '--server', server.url]);
  t.is(missing.code, 2);
  t.regex(missing.stderr, /nope\.txt/);
  t.is(missing.stderr.trim().split('\n').length, 1);
  const tiny = await runTally(['count', REPO_ROOT + 'package.json', '--chunk-size', '3', '--server', server.url]);
  t.is(tiny.code, 2);
  t.regex(tiny.stderr, /--chunk-size/);
  const none = await runTally(['count', '--server', server.url]);
  t.is(none.code, 2);
  const badTokenizer = await runTally(['count', '-', '--tokenizer', 'regex', '--server', server.url]);
  t.is(badTokenizer.code, 2);
});

test('an unreachable server fails within 10 s with exit 1, naming the URL', async (t) => {
  const run = await runTally(['count', '-', '--server', 'nats://127.0.0.1:1'], { input: 'a b c' });
  t.is(run.code, 1);
  t.regex(run.stderr, /nats:\/\/127\.0\.0\.1:1/);
  t.true(run.ms < 10_000, `took ${run.ms} ms`);
});
