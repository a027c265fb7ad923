/**
 * The Object Store commands in the embedded default (no --server, no NATS_URL), through the real
 * CLI: `put` uploads into the embedded server's store, which outlives the run; `ls`, `count`,
 * `ngrams` and `rm` read it there (the embedded workers fetch their chunks from that server);
 * `put` is resumable; a missing bucket or prefix is one line, exit 2; a `put` while a `count`
 * runs joins the count's server; compressed objects count as their text. Each test has an embedded store of its own (a temporary
 * XDG_DATA_HOME), never the developer's.
 */
import test from 'ava';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import { existsSync, mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { cleanEnv, collect, runTally, spawnTally, tempDir } from './helpers/tally.js';
import { referenceNgrams, referenceUnicodeCount } from './helpers/reference-counter.js';
import { waitFor } from './helpers/watch.js';

const dir = tempDir('tally-obj-embedded-');

/** About 2.3 Object Store chunks of words, lines and accents: ranges cross chunk edges. */
const BIG = Buffer.from(Array.from({ length: 60_000 }, (_, i) => `${i % 13 === 0 ? 'Été' : 'mot'}${(i * 7919) % 997}${i % 10 === 0 ? '\n' : ' '}`).join(''));
const SMALL = [Buffer.from('The quick brown fox\n'), Buffer.from('jumps over the lazy dog, the end\n')];

test.before(() => {
  mkdirSync(join(dir.path, 'corpus', 'sub'), { recursive: true });
  writeFileSync(join(dir.path, 'corpus', 'a.txt'), SMALL[0]!);
  writeFileSync(join(dir.path, 'corpus', 'big.txt'), BIG);
  writeFileSync(join(dir.path, 'corpus', 'sub', 'b.txt'), SMALL[1]!);
});

test.after.always(() => dir.remove());

/** An environment whose embedded store is a fresh temp directory, removed after the test. */
function ownStore(t: { teardown(fn: () => void): void }, extra: NodeJS.ProcessEnv = {}): { env: NodeJS.ProcessEnv; home: string } {
  const home = tempDir('tally-obj-embedded-home-');
  t.teardown(() => home.remove());
  return { env: cleanEnv({ XDG_DATA_HOME: home.path, ...extra }), home: home.path };
}

/** Nothing of a server left running: no lock, no server file (only the store). */
function serverStopped(home: string): boolean {
  return readdirSync(join(home, 'tally')).every((entry) => entry === 'jetstream');
}

test.serial('embedded: put, ls, count and ngrams equal the reference, a second put sends nothing, rm empties the bucket', async (t) => {
  const { env, home } = ownStore(t);
  const tally = (args: string[]) => runTally([...args, '--no-progress'], { env, cwd: dir.path });

  const put = await tally(['put', 'corpus']);
  t.is(put.code, 0, put.stderr);
  t.is(put.stdout, `uploaded 3 files (${BIG.length + SMALL[0]!.length + SMALL[1]!.length} bytes), 0 unchanged, to obj://tally-inputs\n`);
  t.true(serverStopped(home), 'put stopped the server it started');
  const again = await tally(['put', 'corpus']);
  t.is(again.code, 0, again.stderr);
  t.is(again.stdout, 'uploaded 0 files (0 bytes), 3 unchanged, to obj://tally-inputs\n', 'resumable: the store kept the objects');

  const ls = await tally(['ls', 'obj://tally-inputs', '--format', 'json']);
  t.is(ls.code, 0, ls.stderr);
  const rows = JSON.parse(ls.stdout) as Array<{ name: string; size: number }>;
  t.deepEqual(
    rows.map((row) => [row.name, row.size]),
    [
      ['corpus/a.txt', SMALL[0]!.length],
      ['corpus/big.txt', BIG.length],
      ['corpus/sub/b.txt', SMALL[1]!.length],
    ],
  );

  // Objects are listed by name: corpus/a.txt, corpus/big.txt, corpus/sub/b.txt.
  const texts = [SMALL[0]!, BIG, SMALL[1]!];
  const count = await tally(['count', 'obj://tally-inputs/corpus/', '--chunk-size', '50000', '--workers', '2', '--top', '0', '--format', 'json']);
  t.is(count.code, 0, count.stderr);
  const got = JSON.parse(count.stdout) as { totalWords: number; counts: [string, number][]; files: number; tasks: number };
  const want = referenceUnicodeCount(texts);
  t.is(got.files, 3);
  t.true(got.tasks > 3, String(got.tasks));
  t.is(got.totalWords, want.totalWords);
  t.deepEqual(got.counts, want.counts);

  const ngrams = await tally(['ngrams', '2', 'obj://tally-inputs', '--workers', '1', '--top', '0', '--format', 'json']);
  t.is(ngrams.code, 0, ngrams.stderr);
  const pairs = JSON.parse(ngrams.stdout) as { totalWords: number; counts: [string, number][] };
  const wantPairs = referenceNgrams(texts, { tokenizer: 'unicode', caseSensitive: false, maxWordBytes: 256 }, 2);
  t.is(pairs.totalWords, wantPairs.totalWords);
  t.deepEqual(pairs.counts, wantPairs.counts);

  const rm = await tally(['rm', '--recursive', 'obj://tally-inputs']);
  t.is(rm.code, 0, rm.stderr);
  t.is(rm.stdout, 'deleted 3 objects\n');
  const empty = await tally(['ls', 'obj://tally-inputs']);
  t.is(empty.code, 0, empty.stderr);
  t.is(empty.stdout, '(no objects)\n');
  t.true(serverStopped(home), 'every command stopped the server it started');
});

test.serial('embedded: a missing bucket or an empty prefix is one line, exit 2, and leaves no server running', async (t) => {
  const { env, home } = ownStore(t);
  const tally = (args: string[]) => runTally([...args, '--no-progress'], { env, cwd: dir.path });
  const missing = await tally(['count', 'obj://nowhere', '--workers', '1']);
  t.is(missing.code, 2);
  t.is(missing.stderr, "tally: no bucket 'nowhere' on the embedded server (tally put creates it)\n");
  const put = await tally(['put', join('corpus', 'a.txt'), '--bucket', 'shelf']);
  t.is(put.code, 0, put.stderr);
  const none = await tally(['ngrams', '2', 'obj://shelf/none/', '--workers', '1']);
  t.is(none.code, 2);
  t.is(none.stderr, 'tally: obj://shelf/none/: no objects\n');
  const ls = await tally(['ls', 'obj://nowhere']);
  t.is(ls.code, 2);
  t.is(ls.stderr, "tally: no bucket 'nowhere' on the embedded server (tally put creates it)\n");
  t.true(serverStopped(home));
});

test.serial('embedded: a put while a count of objects runs joins its server; both succeed', async (t) => {
  const gate = join(dir.path, 'gate');
  writeFileSync(gate, 'held\n');
  t.teardown(() => rmSync(gate, { force: true }));
  // The count's worker holds the map of its one object until the gate is removed.
  const { env, home } = ownStore(t, { TALLY_TEST_HOOKS: JSON.stringify({ holdWhenInputIncludes: 'a.txt', holdWhileFileExists: gate }) });
  const plain = cleanEnv({ XDG_DATA_HOME: home });
  const first = await runTally(['put', join('corpus', 'a.txt'), '--bucket', 'shelf'], { env: plain, cwd: dir.path });
  t.is(first.code, 0, first.stderr);
  const job = spawnTally(['count', 'obj://shelf', '--workers', '1', '--format', 'json', '--log-level', 'debug', '--no-progress'], { env, cwd: dir.path });
  let log = '';
  job.stderr!.on('data', (d: Buffer) => (log += d.toString()));
  const done = collect(job);
  await waitFor(() => /"hook":"hold"/.test(log) || job.exitCode !== null, 'the count to hold its task', 60_000);
  const put = await runTally(['put', join('corpus', 'sub', 'b.txt'), '--bucket', 'shelf', '--log-level', 'debug'], { env: plain, cwd: dir.path });
  t.is(put.code, 0, put.stderr);
  t.regex(put.stderr, /joining the embedded server of another tally process/);
  t.regex(put.stdout, /^uploaded 1 file \(33 bytes\), 0 unchanged, to obj:\/\/shelf\n$/);
  t.is(job.exitCode, null, 'the count was still running while put ran');
  rmSync(gate);
  const run = await done;
  t.is(run.code, 0, run.stderr);
  // Planned before the put: the count is of a.txt only.
  t.deepEqual((JSON.parse(run.stdout) as { totalWords: number }).totalWords, referenceUnicodeCount([SMALL[0]!]).totalWords);
  const ls = await runTally(['ls', 'obj://shelf', '--format', 'json'], { env: plain, cwd: dir.path });
  t.deepEqual((JSON.parse(ls.stdout) as Array<{ name: string }>).map((row) => row.name), ['a.txt', 'b.txt']);
  t.true(serverStopped(home));
  t.false(existsSync(join(home, 'tally', 'server.lock')));
});

test.serial('embedded: compressed objects (gzip members, bzip2) count as their text, each decompressed by a worker; one too big for a task is refused', async (t) => {
  const { env } = ownStore(t);
  const tally = (args: string[]) => runTally([...args, '--no-progress'], { env, cwd: dir.path });
  const folder = join(dir.path, 'packed');
  mkdirSync(folder, { recursive: true });
  // Members cut through a word, as concatenated gzip files are.
  const cut = BIG.length / 2 + 3;
  writeFileSync(join(folder, 'big.txt.gz'), Buffer.concat([gzipSync(BIG.subarray(0, cut)), gzipSync(BIG.subarray(cut))]));
  writeFileSync(join(folder, 'small.bz2'), execFileSync('bzip2', ['-c'], { input: SMALL[0]! }));
  writeFileSync(join(folder, 'plain.txt'), SMALL[1]!);
  const put = await tally(['put', 'packed']);
  t.is(put.code, 0, put.stderr);
  const count = await tally(['count', 'obj://tally-inputs/packed', '--format', 'json', '--top', '0', '--workers', '2']);
  t.is(count.code, 0, count.stderr);
  const got = JSON.parse(count.stdout) as { bytes: number; totalWords: number; counts: Array<[string, number]> };
  const expected = referenceUnicodeCount([BIG, SMALL[0]!, SMALL[1]!]);
  t.is(got.bytes, BIG.length + SMALL[0]!.length + SMALL[1]!.length, 'bytes of the text, not of the objects');
  t.is(got.totalWords, expected.totalWords);
  t.deepEqual(got.counts, expected.counts);

  // 17 MiB that do not compress: more than one task's 16 MiB, and objects are never carried.
  writeFileSync(join(dir.path, 'noise.gz'), gzipSync(randomBytes(17 * 1024 * 1024), { level: 1 }));
  t.is((await tally(['put', 'noise.gz'])).code, 0);
  const refused = await tally(['count', 'obj://tally-inputs/noise.gz']);
  t.is(refused.code, 2, refused.stderr);
  t.regex(refused.stderr, /^tally: obj:\/\/tally-inputs\/noise\.gz: gzip-compressed and \d+ bytes: compressed objects of up to 16777216 bytes are counted \(each by one worker\); upload it decompressed, or in parts\n$/);
});
