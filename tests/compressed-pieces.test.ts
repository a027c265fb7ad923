/**
 * Compressed files that workers decompress themselves (shared/text/compressed-pieces.ts): a file
 * of many gzip members or bzip2 streams, as the real tools write them, is cut where members
 * start, and the pieces' counts add up to the text's, whatever the members cut through (words,
 * multi-byte characters, overlong words, members of a few bytes or none). The truth is the
 * reference counter over the plain text, and `gzip -dc | LC_ALL=C wc -w` for the whitespace
 * tokenizer; where pieces may start is known from how the test built the file. Through the CLI:
 * many gzip files, n-grams joined across pieces, a corrupt member (the job fails naming the file
 * and the compressed byte, or with --skip-failed is skipped and reported).
 */
import test, { type ExecutionContext } from 'ava';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as zlib from 'node:zlib';
import { countKind, type CountOptions } from '../shared/kinds/count.js';
import { setFileReads } from '../shared/kinds/file-reads.js';
import type { Task } from '../shared/kinds/kind.js';
import { isPiece, type RangeEntry } from '../shared/text/file-input.js';
import type { Compression } from '../shared/text/compressed.js';
import { referenceCount, referenceNgrams, type ReferenceSettings } from './helpers/reference-counter.js';
import { runTally, tempDir } from './helpers/tally.js';

const dir = tempDir('tally-pieces-');
test.after.always(() => dir.remove());
const p = (name: string) => join(dir.path, name);

const NO_BODY = new Uint8Array(0);
const context = { working: () => undefined };

/** Mixed scripts, apostrophes, long words and long runs without a separator. */
function sampleText(seed: number, words: number): Buffer {
  const vocabulary = ["Don't", 'l’homme', 'ΟΔΟΣ', 'Οδός', 'straße', '日本語のテキスト', 'the', 'THE', 'x1', '42', 'naïve', 'café', 'a'.repeat(40), 'b’c’d', 'ünïcödé'];
  const separators = [' ', ' ', '\n', ', ', '\t', '  ', '—', "' "];
  let text = '';
  let state = seed;
  for (let i = 0; i < words; i++) {
    state = (state * 1103515245 + 12345) % 2147483648;
    text += vocabulary[state % vocabulary.length]! + separators[(state >> 8) % separators.length]!;
  }
  return Buffer.from(text);
}

/**
 * The text cut at the given byte offsets (anywhere: inside words and characters), each part
 * compressed by the real tool, concatenated; and where each member starts in the result.
 */
function members(text: Buffer, cuts: number[], tool: 'gzip' | 'bzip2'): { file: Buffer; starts: number[] } {
  const parts: Buffer[] = [];
  const starts: number[] = [];
  let offset = 0;
  const edges = [0, ...cuts, text.length];
  for (let k = 1; k < edges.length; k++) {
    const member = execFileSync(tool, ['-c'], { input: text.subarray(edges[k - 1], edges[k]) });
    starts.push(offset);
    parts.push(member);
    offset += member.length;
  }
  return { file: Buffer.concat(parts), starts };
}

function optionsFor(path: string, compression: Compression, settings: ReferenceSettings, chunkSize: number): CountOptions {
  const st = statSync(path, { bigint: true });
  return { inputs: [{ path, size: Number(st.size), mtimeMs: Number(st.mtimeMs), compression }], ...settings, chunkSize, workersReadFiles: true };
}

async function tasksOf(options: CountOptions): Promise<Task[]> {
  const tasks: Task[] = [];
  for await (const task of countKind.split(options, { maxBodyBytes: 1 << 20 })) tasks.push(task);
  return tasks;
}

/** Runs every task through map and reduce, as workers and the coordinator would. */
async function countTasks(options: CountOptions, tasks: Task[]): Promise<{ bytes: number; totalWords: number; overlongWords: number; counts: [string, number][] }> {
  const acc = countKind.init(options);
  setFileReads(true);
  try {
    for (const [i, task] of tasks.entries()) countKind.reduce(acc, await countKind.map(JSON.parse(JSON.stringify(task.spec)), NO_BODY, context), i);
  } finally {
    setFileReads(false);
  }
  return countKind.finalize(acc, { job: 'local', tasks: tasks.length }, options) as { bytes: number; totalWords: number; overlongWords: number; counts: [string, number][] };
}

function piecesOf(tasks: Task[]): RangeEntry[] {
  return tasks.flatMap((task) => (task.spec as { ranges?: RangeEntry[] }).ranges ?? []);
}

/**
 * Splits the file as the coordinator would, checks that every piece starts where a member does
 * (`starts`, known from how the test built it), runs every task and compares with the reference
 * counter over `text`; returns the tasks.
 */
async function countedLikeText(t: ExecutionContext, options: CountOptions, starts: number[], text: Buffer, settings: ReferenceSettings, what = ''): Promise<Task[]> {
  const tasks = await tasksOf(options);
  for (const piece of piecesOf(tasks)) t.true(starts.includes(piece[4]), `${what}: a piece starts at ${piece[4]}, where no member does`);
  const expected = referenceCount(text, settings);
  const got = await countTasks(options, tasks);
  t.is(got.bytes, text.length, `${what}: bytes of the text`);
  t.is(got.totalWords, expected.totalWords, what);
  t.is(got.overlongWords, expected.overlongWords, what);
  t.deepEqual(got.counts, expected.counts, what);
  return tasks;
}

const unicode: ReferenceSettings = { tokenizer: 'unicode', caseSensitive: false, maxWordBytes: 1024 };
const whitespace: ReferenceSettings = { tokenizer: 'whitespace', caseSensitive: true, maxWordBytes: 1024 };

test.serial('gzip members cut anywhere in the text: pieces start only where members do, and add up to the text', async (t) => {
  const text = sampleText(1, 20000);
  // Cuts every 997 bytes land inside words and characters; a few members of 1 to 5 bytes, and
  // empty ones, near the start, the middle and the end.
  const cuts: number[] = [];
  for (let at = 997; at < text.length - 20; at += 997) cuts.push(at);
  const middle = cuts[Math.floor(cuts.length / 2)]!;
  cuts.push(1, 2, 2, 7, middle + 1, middle + 3, text.length - 9, text.length - 4, text.length - 4, text.length - 1);
  cuts.sort((a, b) => a - b);
  const { file, starts } = members(text, cuts, 'gzip');
  writeFileSync(p('members.gz'), file);
  for (const [settings, chunkSize] of [[unicode, 2048], [whitespace, 2048], [unicode, 300], [{ ...unicode, maxWordBytes: 8 }, 1024], [{ ...whitespace, maxWordBytes: 8 }, 700]] as const) {
    const what = `${settings.tokenizer} max ${settings.maxWordBytes} chunk ${chunkSize}`;
    const tasks = await countedLikeText(t, optionsFor(p('members.gz'), 'gzip', settings, chunkSize), starts, text, settings, what);
    const pieces = piecesOf(tasks);
    t.true(pieces.length > 10, `${what}: ${pieces.length} pieces`);
    t.true(tasks.every((task) => task.body === undefined), `${what}: the coordinator carries no text`);
    t.true(pieces.every(isPiece), what);
  }
});

test.serial('bytes that look like a gzip header inside a member are not taken for a member start', async (t) => {
  // A gzip header (no flags, OS 3) and then a deflate block of the reserved type, inside stored
  // (level 0) members, where the bytes appear as they are: three bytes of magic are not enough.
  const fake = Buffer.from([0x1f, 0x8b, 0x08, 0x00, 0, 0, 0, 0, 0x00, 0x03, 0x07, 0x20]);
  const parts = [sampleText(11, 400), Buffer.concat([sampleText(12, 200), fake, sampleText(13, 200), fake, sampleText(14, 100)]), sampleText(15, 400)];
  const text = Buffer.concat(parts);
  const memberBytes = parts.map((part) => zlib.gzipSync(part, { level: 0 }));
  const file = Buffer.concat(memberBytes);
  const starts = memberBytes.map((_, k) => memberBytes.slice(0, k).reduce((sum, member) => sum + member.length, 0));
  t.true(file.indexOf(fake) > starts[1]!, 'the fake header is inside the second member');
  writeFileSync(p('fake-magic.gz'), file);
  await countedLikeText(t, optionsFor(p('fake-magic.gz'), 'gzip', unicode, 256), starts, text, unicode, 'fake header');
});

test.serial('bzip2 streams (as pbzip2 writes them): pieces start where streams do, and add up to the text', async (t) => {
  const text = sampleText(2, 12000);
  const cuts: number[] = [];
  for (let at = 1500; at < text.length; at += 1500) cuts.push(at);
  const { file, starts } = members(text, cuts, 'bzip2');
  writeFileSync(p('streams.bz2'), file);
  const tasks = await countedLikeText(t, optionsFor(p('streams.bz2'), 'bzip2', unicode, 4096), starts, text, unicode, 'bzip2');
  t.true(piecesOf(tasks).length > 3, `${piecesOf(tasks).length} pieces`);
});

test.serial('one gzip member too big for a task is carried by the coordinator; a small one is a single piece', async (t) => {
  const text = sampleText(3, 4000);
  writeFileSync(p('one.gz'), zlib.gzipSync(text));
  const small = await tasksOf(optionsFor(p('one.gz'), 'gzip', unicode, 1 << 20));
  t.deepEqual(piecesOf(small).map((piece) => [piece[4], piece[5]]), [[0, statSync(p('one.gz')).size]]);
  // Bigger than MAX_PIECE_BYTES (16 MiB) and a single member: bytes that do not compress.
  const big = randomBytes(17 * 1024 * 1024);
  writeFileSync(p('big.gz'), zlib.gzipSync(big, { level: 1 }));
  t.true(statSync(p('big.gz')).size > 16 * 1024 * 1024);
  const tasks = await tasksOf(optionsFor(p('big.gz'), 'gzip', unicode, 1 << 20));
  t.is(piecesOf(tasks).length, 0, 'no pieces');
  t.true(tasks.every((task) => task.body !== undefined), 'every task carries its text');
});

test.serial('twenty gzip files through the CLI: the whitespace total equals gzip -dc | LC_ALL=C wc -w, the table the reference', async (t) => {
  const folder = p('twenty');
  mkdirSync(folder);
  const texts: Buffer[] = [];
  for (let i = 0; i < 20; i++) {
    const text = sampleText(100 + i, 3000);
    texts.push(text);
    const cuts = [Math.floor(text.length / 3), Math.floor((2 * text.length) / 3)];
    writeFileSync(join(folder, `part-${String(i).padStart(2, '0')}.gz`), members(text, cuts, 'gzip').file);
  }
  const files = Array.from({ length: 20 }, (_, i) => join(folder, `part-${String(i).padStart(2, '0')}.gz`));
  // File by file: a text ending in a non-space byte would join the next file's first word.
  const wc = files.reduce((sum, file) => sum + Number(execFileSync('sh', ['-c', `gzip -dc '${file}' | LC_ALL=C wc -w`], { encoding: 'utf8' }).trim()), 0);
  const run = await runTally(['count', folder, '--tokenizer', 'whitespace', '--case-sensitive', '--chunk-size', '4K', '--format', 'json', '--top', '0', '--workers', '2']);
  t.is(run.code, 0, run.stderr);
  const got = JSON.parse(run.stdout) as { totalWords: number; counts: [string, number][]; bytes: number; tasks: number };
  t.is(got.totalWords, wc);
  t.is(got.bytes, texts.reduce((sum, text) => sum + text.length, 0));
  t.deepEqual(got.counts, referenceCount(texts, whitespace).counts);
});

test.serial('a corrupt member: the job fails naming the file and the compressed byte; --skip-failed skips that piece and says so', async (t) => {
  const text = sampleText(4, 8000);
  const cuts: number[] = [];
  for (let at = 2000; at < text.length; at += 2000) cuts.push(at);
  const { file, starts } = members(text, cuts, 'gzip');
  // The fourth member's CRC is wrong: its piece fails; the piece before reads only the start of
  // its text (to find where it ends), which is sound.
  const corrupt = Buffer.from(file);
  const at = starts[4]! - 8;
  corrupt[at] = corrupt[at]! ^ 0xff;
  writeFileSync(p('corrupt.gz'), corrupt);
  const output = p('corrupt.json');
  const run = await runTally(['count', p('corrupt.gz'), '--chunk-size', '1K', '--workers', '2', '--output', output]);
  t.is(run.code, 1, run.stderr);
  t.regex(run.stderr, new RegExp(`^tally: job \\S+ failed on ${p('corrupt.gz').replace(/[.]/g, '\\.')} bytes \\d+-\\d+: .*gzip data is corrupt near compressed byte \\d+: incorrect data check\n$`));
  t.is(run.stderr.trim().split('\n').length, 1, run.stderr);
  const skipped = await runTally(['count', p('corrupt.gz'), '--chunk-size', '1K', '--workers', '2', '--skip-failed', '1', '--format', 'json', '--top', '0']);
  t.is(skipped.code, 0, skipped.stderr);
  const result = JSON.parse(skipped.stdout) as { totalWords: number; skipped: Array<{ input: string; error: string }> };
  t.is(result.skipped.length, 1);
  t.true(result.skipped[0]!.input.startsWith(`${p('corrupt.gz')} bytes `), result.skipped[0]!.input);
  t.regex(result.skipped[0]!.error, /gzip data is corrupt near compressed byte \d+/);
  t.true(result.totalWords < referenceCount(text, unicode).totalWords && result.totalWords > 0);
});

test.serial('small compressed files share tasks, but with --skip-failed each has its own: a corrupt one costs only itself', async (t) => {
  const folder = p('small');
  mkdirSync(folder);
  const texts = [sampleText(7, 300), sampleText(8, 300), sampleText(9, 300)];
  texts.forEach((text, i) => writeFileSync(join(folder, `ok-${i}.gz`), zlib.gzipSync(text)));
  const damaged = Buffer.from(zlib.gzipSync(sampleText(10, 300)));
  damaged[damaged.length - 6] = damaged[damaged.length - 6]! ^ 0xff;
  writeFileSync(join(folder, 'damaged.gz'), damaged);
  const packed = await runTally(['count', folder, '--workers', '2', '--format', 'json', '--top', '0']);
  t.is(packed.code, 1, 'without --skip-failed the job fails');
  t.regex(packed.stderr, /damaged\.gz: gzip data is corrupt near compressed byte \d+: incorrect data check/);
  const run = await runTally(['count', folder, '--workers', '2', '--format', 'json', '--top', '0', '--skip-failed', '1']);
  t.is(run.code, 0, run.stderr);
  const result = JSON.parse(run.stdout) as { tasks: number; totalWords: number; counts: [string, number][]; skipped: Array<{ input: string }> };
  t.is(result.tasks, 4, 'a task per compressed file');
  t.deepEqual(result.skipped.map((skipped) => skipped.input), [`${join(folder, 'damaged.gz')} bytes 0-${damaged.length - 1}`]);
  const expected = referenceCount(texts, unicode);
  t.is(result.totalWords, expected.totalWords);
  t.deepEqual(result.counts, expected.counts);
});

test.serial('ngrams over a file of gzip members: joined across the pieces, equal to the n-grams of the text', async (t) => {
  const text = sampleText(16, 6000);
  const cuts: number[] = [];
  for (let at = 1234; at < text.length; at += 1234) cuts.push(at);
  writeFileSync(p('ngrams.gz'), members(text, cuts, 'gzip').file);
  const run = await runTally(['ngrams', '3', p('ngrams.gz'), '--chunk-size', '1K', '--format', 'json', '--top', '0', '--workers', '2', '--no-progress']);
  t.is(run.code, 0, run.stderr);
  const result = JSON.parse(run.stdout) as { tasks: number; counts: [string, number][] };
  t.true(result.tasks > 10, `${result.tasks} tasks`);
  t.deepEqual(result.counts, referenceNgrams([text], unicode, 3).counts);
});
