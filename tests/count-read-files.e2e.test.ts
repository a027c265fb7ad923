/**
 * `tally count --workers-read-files` against `tally worker --read-files`: tasks carry a file
 * range instead of the bytes, and the counts still equal a simple regex counter's on real
 * multilingual text and invalid UTF-8. A fleet that does not allow reads fails the job with
 * a message that says what to do.
 */
import test from 'ava';
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { REPO_ROOT, runTally, startTestServer, startWorkers, tempDir, type TestServer, type WorkerFleet } from './helpers/tally.js';
import { referenceUnicodeCount } from './helpers/reference-counter.js';

let server: TestServer;
let readers: WorkerFleet;
let corpus: { path: string; remove(): void };
let files: string[];

test.before(async () => {
  server = await startTestServer();
  readers = startWorkers(server.url, 2, {}, ['--read-files']);
  corpus = tempDir('tally-read-files-');
  mkdirSync(join(corpus.path, 'nested'), { recursive: true });
  for (const language of ['ja', 'ru', 'de']) {
    copyFileSync(join(REPO_ROOT, 'node_modules', 'typescript', 'lib', language, 'diagnosticMessages.generated.json'), join(corpus.path, 'nested', `${language}.json`));
  }
  const english = readFileSync(join(REPO_ROOT, 'node_modules', 'typescript', 'README.md'));
  writeFileSync(join(corpus.path, 'broken.txt'), Buffer.concat([english.subarray(0, 2000), Buffer.from([0xff, 0x41, 0xc3, 0x28, 0x80]), english.subarray(2000), Buffer.from([0xe2, 0x82])]));
  files = readdirSync(corpus.path, { withFileTypes: true, recursive: true })
    .filter((entry) => entry.isFile())
    .map((entry) => join(entry.parentPath, entry.name))
    .sort();
});

test.after.always(async () => {
  await readers?.stop();
  await server?.stop();
  corpus?.remove();
});

test.serial('workers that read the files count exactly what a simple counter counts', async (t) => {
  // A relative input path: tasks must name the absolute path, since workers run elsewhere.
  const run = await runTally(['count', 'nested', 'broken.txt', '--server', server.url, '--workers-read-files', '--top', '0', '--format', 'json', '--chunk-size', '32K'], { cwd: corpus.path });
  t.is(run.code, 0, run.stderr);
  const result = JSON.parse(run.stdout);
  const reference = referenceUnicodeCount(files.map((f) => readFileSync(f)));
  t.true(result.tasks > 20, `expected many tasks, got ${result.tasks}`);
  t.is(result.totalWords, reference.totalWords);
  t.deepEqual(result.counts, reference.counts);
  t.is(result.bytes, files.reduce((sum, f) => sum + readFileSync(f).length, 0));
});

test.serial('without --chunk-size, a folder of small files whose words repeat gets tasks of whole MiB too (its sample is drawn from many files); of distinct words, 1 MiB; totals equal wc -w', async (t) => {
  // 4,000 files of 5 KiB (20 MiB): each alone holds too few words to sample (~570). One embedded
  // worker aims at 16 tasks (1.25 MiB, so 2 MiB: 409 files a task); at 1 MiB, 204 files a task.
  const FILES = 4_000;
  const FILE_BYTES = 5 * 1024;
  const tasksAt = (chunk: number) => Math.ceil(FILES / Math.floor(chunk / FILE_BYTES));
  const folderOf = (name: string, content: (i: number) => Buffer) => {
    const dir = join(corpus.path, name);
    mkdirSync(dir, { recursive: true });
    for (let i = 0; i < FILES; i++) writeFileSync(join(dir, `${String(i).padStart(4, '0')}.txt`), content(i));
    return dir;
  };
  const wcFolder = (dir: string) => {
    // Each file counted on its own (a word cut at one file's end does not join the next's first).
    const out = execFileSync('sh', ['-c', `find '${dir}' -type f -print0 | xargs -0 wc -w | awk '$2 == "total" { n += $1 } END { print n }'`], { env: { ...process.env, LC_ALL: 'C' }, encoding: 'utf8' });
    return Number(out.trim());
  };
  const line = Buffer.from('tallying characterises thoroughly everything\n');
  const repeating = Buffer.alloc(FILE_BYTES);
  for (let at = 0; at < FILE_BYTES; at += line.length) line.copy(repeating, at);
  const prose = folderOf('small-prose', () => repeating);
  const run = await runTally(['count', prose, '--workers', '1', '--format', 'json', '--top', '1']);
  t.is(run.code, 0, run.stderr);
  const counted = JSON.parse(run.stdout);
  t.is(counted.tasks, tasksAt(2 * 1024 * 1024));
  t.is(counted.totalWords, wcFolder(prose));

  // Every word distinct (ids, 568 of 9 bytes a file): bigger tasks would save nothing.
  const ids = folderOf('small-ids', (i) => {
    const lines = Array.from({ length: 568 }, (_, k) => String(10_000_000 + i * 568 + k)).join('\n');
    return Buffer.from(`${lines}\n`.padEnd(FILE_BYTES, ' '));
  });
  const distinct = await runTally(['count', ids, '--workers', '1', '--format', 'json', '--top', '1']);
  t.is(distinct.code, 0, distinct.stderr);
  const listed = JSON.parse(distinct.stdout);
  t.is(listed.tasks, tasksAt(1024 * 1024));
  t.is(listed.totalWords, wcFolder(ids));
  t.is(listed.uniqueWords, FILES * 568);
});

test.serial('without --chunk-size, a count whose words repeat gets 32 tasks with --server, 8 per embedded worker (at least 16), in whole MiB; of distinct words, 1 MiB; totals equal wc -w', async (t) => {
  // 40 MiB of lines: a 32nd is 1.25 MiB, so 2 MiB tasks: 20 of them (1 MiB would make 40).
  const big = join(corpus.path, 'big', 'forty.txt');
  mkdirSync(join(corpus.path, 'big'), { recursive: true });
  const line = Buffer.from('tally counts every word of forty mebibytes\n');
  const size = 40 * 1024 * 1024;
  const text = Buffer.alloc(size);
  for (let at = 0; at < size; at += line.length) line.copy(text, at);
  writeFileSync(big, text);
  const run = await runTally(['count', big, '--server', server.url, '--workers-read-files', '--format', 'json']);
  t.is(run.code, 0, run.stderr);
  const result = JSON.parse(run.stdout);
  t.is(result.tasks, size / (2 * 1024 * 1024));
  const wc = (path: string) => Number(execFileSync('wc', ['-w', path], { env: { ...process.env, LC_ALL: 'C' }, encoding: 'utf8' }).trim().split(/\s+/)[0]);
  t.is(result.totalWords, wc(big));
  // Embedded: one worker aims at 16 tasks (2.5 MiB, so 3 MiB: 14 of them), three at 24 (1.67 MiB, so 2 MiB: 20).
  for (const [workers, tasks] of [[1, 14], [3, 20]] as const) {
    const embedded = await runTally(['count', big, '--workers', String(workers), '--format', 'json', '--top', '1']);
    t.is(embedded.code, 0, embedded.stderr);
    const counted = JSON.parse(embedded.stdout);
    t.is(counted.tasks, tasks, `--workers ${workers}`);
    t.is(counted.totalWords, result.totalWords);
  }
  // Every word distinct (as a list of ids): bigger tasks would save nothing, the default stays 1 MiB.
  const ids = join(corpus.path, 'big', 'ids.txt');
  const lines: string[] = [];
  let bytes = 0;
  for (let n = 10_000_000; bytes < size; n++) {
    lines.push(String(n));
    bytes += 9;
  }
  writeFileSync(ids, `${lines.join('\n')}\n`);
  const distinct = await runTally(['count', ids, '--server', server.url, '--workers-read-files', '--format', 'json', '--top', '3']);
  t.is(distinct.code, 0, distinct.stderr);
  const counted = JSON.parse(distinct.stdout);
  t.is(counted.tasks, Math.ceil(bytes / (1024 * 1024)));
  t.is(counted.totalWords, wc(ids));
  t.is(counted.uniqueWords, lines.length);
});

test.serial('stdin is carried in the tasks even when workers read files', async (t) => {
  const text = readFileSync(files[0]!);
  const run = await runTally(['count', '-', '--server', server.url, '--workers-read-files', '--top', '0', '--format', 'json', '--chunk-size', '64K'], { input: text });
  t.is(run.code, 0, run.stderr);
  t.deepEqual(JSON.parse(run.stdout).counts, referenceUnicodeCount([text]).counts);
});

test.serial('workers that do not allow file reads fail the job, saying how to fix it', async (t) => {
  const other = await startTestServer();
  const plain = startWorkers(other.url, 1);
  t.teardown(async () => {
    await plain.stop();
    await other.stop();
  });
  const run = await runTally(['count', files[0]!, '--server', other.url, '--workers-read-files', '--no-progress']);
  t.is(run.code, 1, run.stderr);
  t.regex(run.stderr, /does not read files.*--read-files/);
  t.is(run.stdout, '');
});
