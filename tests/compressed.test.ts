/**
 * Compressed inputs through the real CLI (embedded server and workers): the totals and table of
 * a compressed file are those of its text, compressed by the real gzip, bzip2 and zstd tools
 * (several members or streams concatenated, as Common Crawl and pbzip2 write them), found by
 * their first bytes whatever their names, on stdin too. The truth is the reference counter
 * over the plain text. A corrupt or truncated file fails with one line naming it and where, and
 * no result.
 */
import test from 'ava';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as zlib from 'node:zlib';
import { REPO_ROOT, runTally, tempDir } from './helpers/tally.js';
import { referenceUnicodeCount } from './helpers/reference-counter.js';

const dir = tempDir('tally-compressed-');
test.after.always(() => dir.remove());
const p = (name: string) => join(dir.path, name);

// The multilingual samples, one text, cut in three for members and streams.
const samples = join(REPO_ROOT, 'samples');
const text = Buffer.concat(
  readdirSync(samples)
    .sort()
    .flatMap((language) => readdirSync(join(samples, language), { withFileTypes: true }).filter((entry) => entry.isFile()).map((entry) => readFileSync(join(samples, language, entry.name)))),
);
const thirds = [text.subarray(0, 9000), text.subarray(9000, 20000), text.subarray(20000)];
const reference = referenceUnicodeCount([text]);

/** The real tool's output for each third, concatenated: gzip members, bzip2 or zstd streams. */
function concatenated(tool: string): Buffer {
  return Buffer.concat(thirds.map((third) => execFileSync(tool, ['-c'], { input: third })));
}

interface CountJson {
  job: string;
  bytes: number;
  totalWords: number;
  uniqueWords: number;
  overlongWords: number;
  counts: Array<[string, number]>;
}

async function countJson(args: string[], input?: Uint8Array): Promise<CountJson> {
  const run = await runTally(['count', ...args, '--format', 'json', '--top', '0', '--workers', '2'], input ? { input } : {});
  if (run.code !== 0) throw new Error(`tally count ${args.join(' ')}: exit ${run.code}: ${run.stderr}`);
  return JSON.parse(run.stdout) as CountJson;
}

function sameAsText(t: import('ava').ExecutionContext, got: CountJson, what: string): void {
  t.is(got.bytes, text.length, `${what}: bytes of the text, not of the compressed file`);
  t.is(got.totalWords, reference.totalWords, what);
  t.deepEqual(got.counts, reference.counts, what);
}

test.before(() => {
  writeFileSync(p('plain.txt'), text);
  writeFileSync(p('members.gz'), concatenated('gzip'));
  writeFileSync(p('streams.bz2'), concatenated('bzip2'));
  writeFileSync(p('streams.zst'), concatenated('zstd'));
  // Names do not decide: a gzip file called .txt, and a text file called .gz.
  writeFileSync(p('misnamed.txt'), concatenated('gzip'));
  writeFileSync(p('plain-named.gz'), text);
});

test('gzip members and bzip2 streams, concatenated, count as their text; names do not decide', async (t) => {
  for (const name of ['members.gz', 'streams.bz2', 'misnamed.txt', 'plain-named.gz']) sameAsText(t, await countJson([p(name)]), name);
});

test('compressed stdin counts as its text (gzip and bzip2, found by the first bytes)', async (t) => {
  sameAsText(t, await countJson(['-'], readFileSync(p('members.gz'))), 'gzip on stdin');
  sameAsText(t, await countJson(['-', '--chunk-size', '4K'], readFileSync(p('streams.bz2'))), 'bzip2 on stdin');
});

test('a folder of plain and compressed files: workers read and decompress them all, totals add up', async (t) => {
  const folder = p('mixed');
  mkdirSync(folder);
  writeFileSync(join(folder, 'a.txt'), thirds[0]!);
  writeFileSync(join(folder, 'b.gz'), zlib.gzipSync(thirds[1]!));
  writeFileSync(join(folder, 'c.bz2'), execFileSync('bzip2', ['-c'], { input: thirds[2]! }));
  const got = await countJson([folder, '--chunk-size', '2K']);
  t.is(got.totalWords, referenceUnicodeCount(thirds).totalWords);
  t.deepEqual(got.counts, referenceUnicodeCount(thirds).counts);
});

test('zstd counts as its text where this Node has zstd, and is refused naming the file where it does not', async (t) => {
  const hasZstd = typeof (zlib as { createZstdDecompress?: unknown }).createZstdDecompress === 'function';
  t.log(`Node ${process.versions.node}: zstd ${hasZstd ? 'available' : 'not available'}`);
  if (hasZstd) {
    sameAsText(t, await countJson([p('streams.zst')]), 'zstd');
    return;
  }
  const run = await runTally(['count', p('streams.zst')]);
  t.is(run.code, 2);
  t.is(run.stderr, `tally: ${p('streams.zst')}: zstd-compressed, and Node ${process.versions.node} cannot decompress zstd (Node 22.15 or later can); decompress it first (zstd -d)\n`);
});

test('a truncated or corrupt compressed file: one line naming it and where, no result, --output not written (exit 1 when a worker finds it, 2 on stdin)', async (t) => {
  const gz = readFileSync(p('members.gz'));
  writeFileSync(p('truncated.gz'), gz.subarray(0, 3000));
  const corrupt = Buffer.from(gz);
  corrupt[40] = corrupt[40]! ^ 0xff;
  corrupt[41] = corrupt[41]! ^ 0xff;
  writeFileSync(p('corrupt.gz'), corrupt);
  writeFileSync(p('truncated.bz2'), readFileSync(p('streams.bz2')).subarray(0, 500));
  const escape = (text: string) => text.replace(/[.]/g, '\\.');
  for (const [name, reason] of [
    ['truncated.gz', /gzip data is corrupt near compressed byte \d+: it ends in the middle \(truncated\)/],
    ['corrupt.gz', /gzip data is corrupt near compressed byte \d+: /],
    ['truncated.bz2', /bzip2 data is corrupt near compressed byte \d+: not valid bzip2 data/],
  ] as const) {
    // A file: the workers decompress it, and the job fails on the piece that holds the damage.
    const output = p(`${name}.json`);
    const run = await runTally(['count', p(name), '--output', output]);
    t.is(run.code, 1, `${name}: ${run.stderr}`);
    t.regex(run.stderr, new RegExp(`^tally: job \\S+ failed on ${escape(p(name))} bytes \\d+-\\d+: ${escape(p(name))}: ${reason.source}`));
    t.is(run.stderr.trim().split('\n').length, 1, run.stderr);
    t.false(existsSync(output), `${name}: nothing written`);
    // On stdin: the coordinator decompresses it, and says so before any result.
    const piped = await runTally(['count', '-', '--output', output], { input: readFileSync(p(name)) });
    t.is(piped.code, 2, `${name} on stdin: ${piped.stderr}`);
    t.regex(piped.stderr, new RegExp(`^tally: stdin: ${reason.source}`));
    t.is(piped.stderr.trim().split('\n').length, 1, piped.stderr);
    t.false(existsSync(output), `${name} on stdin: nothing written`);
  }
});
