/**
 * `tally ngrams N`: every run of N consecutive words of a file, counted once however the input
 * is cut. The truth is the reference counter's words of each whole file, slid over by a window
 * (tests/helpers/reference-counter.ts), never the code under test.
 *
 * The property runs the kind's own split, map (every task, with its shares), fold of the map
 * summaries in a random order, reduce per partition and finalize in this process, over real
 * files cut into tiny ranges and chunks; the end-to-end tests run the real CLI (embedded server
 * and workers: ranges read by the workers; stdin: chunks carried).
 */
import test from 'ava';
import fc from 'fast-check';
import { statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ngramsKind, joinEdges, type NgramsOptions, type NgramsResult } from '../shared/kinds/ngrams.js';
import { setFileReads } from '../shared/kinds/file-reads.js';
import type { PartSummary } from '../shared/kinds/kind.js';
import { WordTable } from '../shared/text/word-table.js';
import { referenceNgrams, referenceCount, sortCounts, type ReferenceSettings } from './helpers/reference-counter.js';
import { arbitrarySettings, arbitraryText, utf8 } from './helpers/texts.js';
import { runTally, tempDir } from './helpers/tally.js';

const dir = tempDir('tally-ngrams-');
test.after.always(() => dir.remove());
setFileReads(true);

/** What the job over `texts` counts, run through every step of the kind in this process. */
async function ngramsHere(texts: Uint8Array[], settings: ReferenceSettings, n: number, how: { chunkSize: number; workersReadFiles: boolean; reducers: number; order: number[] }, run: number) {
  const inputs = texts.map((bytes, i) => {
    const path = join(dir.path, `run${run}-file${i}.txt`);
    writeFileSync(path, bytes);
    // As the CLI takes them: whole milliseconds, which is what a worker compares.
    const st = statSync(path, { bigint: true });
    return { path, size: Number(st.size), mtimeMs: Number(st.mtimeMs) };
  });
  const options: NgramsOptions = { inputs, directory: dir.path, ...settings, chunkSize: how.chunkSize, workersReadFiles: how.workersReadFiles, reducers: how.reducers, n, summaryTop: 1e9 };
  const reduce = ngramsKind.partitioned!;
  ngramsKind.plan(options);
  const outputs: Array<{ summary: Uint8Array; shares: Uint8Array[] }> = [];
  for await (const task of ngramsKind.split(options, { maxBodyBytes: 1 << 20 })) {
    outputs.push(await reduce.map(task.spec, task.body ?? new Uint8Array(), { working() {} }, how.reducers));
  }
  // The coordinator folds map results in whatever order they arrive.
  let acc = ngramsKind.init(options);
  const order = outputs.map((_, i) => i).sort((a, b) => (how.order[a % how.order.length]! - how.order[b % how.order.length]!) || a - b);
  for (const i of order) acc = ngramsKind.reduce(acc, outputs[i]!.summary, i);
  const parts: PartSummary[] = [];
  const rows = new Map<string, number>();
  for (let p = 0; p < how.reducers; p++) {
    let table = reduce.initPartition(reduce.reduceSpec(options, p, acc));
    outputs.forEach((output, i) => (table = reduce.foldPartition(table, output.shares[p]!, i)));
    for (const [gram, count] of (table as WordTable).entries()) {
      if (rows.has(gram)) throw new Error(`${gram} is in two partitions`);
      rows.set(gram, count);
    }
    parts.push({ name: `part-${p}`, summary: reduce.finishPartition(table, reduce.reduceSpec(options, p, acc)).summary });
  }
  const result = (await reduce.finalize(acc, parts, { job: 'here', tasks: outputs.length }, options)) as NgramsResult;
  return { words: result.words, totalWords: result.totalWords, overlongWords: result.overlongWords, uniqueWords: result.uniqueWords, counts: sortCounts(rows) };
}

let runs = 0;

test('property: n-grams over files cut into tiny ranges or chunks equal the reference, whatever the cuts, partitions and folding order', async (t) => {
  await fc.assert(
    fc.asyncProperty(
      fc.array(arbitraryText, { minLength: 1, maxLength: 3 }),
      arbitrarySettings,
      fc.integer({ min: 1, max: 4 }),
      fc.record({ chunkSize: fc.integer({ min: 1, max: 48 }), workersReadFiles: fc.boolean(), reducers: fc.integer({ min: 1, max: 3 }), order: fc.array(fc.nat(100), { minLength: 1, maxLength: 8 }) }),
      async (texts, settings, n, how) => {
        const got = await ngramsHere(texts, settings, n, how, runs++);
        const want = referenceNgrams(texts, settings, n);
        t.deepEqual({ ...got, uniqueWords: undefined }, { ...want, uniqueWords: undefined });
        t.is(got.uniqueWords, want.counts.length);
      },
    ),
    { numRuns: 250 },
  );
});

test('1-grams are the words: the same table and totals as the word reference', async (t) => {
  const texts = [utf8("The cat's hat. THE CAT’S Hat!\n日本 語 ΟΔΟΣ"), utf8('a b a b a')];
  const settings: ReferenceSettings = { tokenizer: 'unicode', caseSensitive: false, maxWordBytes: 1024 };
  const got = await ngramsHere(texts, settings, 1, { chunkSize: 5, workersReadFiles: true, reducers: 2, order: [0] }, runs++);
  const words = referenceCount(texts, settings);
  t.deepEqual(got.counts, words.counts);
  t.is(got.totalWords, words.totalWords);
});

test('the join of entry edges: n-grams across three entries of one file, none across files, an overlong word spoils the n-grams it is in', (t) => {
  // File 0 is "a b | c | d e" cut in three entries (listed out of order); file 1 is "x y".
  const joined = joinEdges(
    [
      [0, 10, 1, ['c'], ['c']],
      [0, 0, 2, ['a', 'b'], ['a', 'b']],
      [0, 20, 2, ['d', 'e'], ['d', 'e']],
      [1, 0, 2, ['x', 'y'], ['x', 'y']],
    ],
    3,
    1,
  );
  // Wholly inside an entry: none (no entry has 3 words). Across: a b c, b c d, c d e.
  t.deepEqual(sortCounts(joined.byPartition[0]!), [['a b c', 1], ['b c d', 1], ['c d e', 1]]);
  t.is(joined.total, 3);
  const spoiled = joinEdges(
    [
      [0, 0, 2, ['a'], [null]],
      [0, 5, 2, ['b'], ['c']],
    ],
    2,
    1,
  );
  // "null b" is overlong; "b c" is inside the second entry (the map counts it), so nothing is kept.
  t.deepEqual(spoiled.byPartition[0], []);
  t.deepEqual([spoiled.total, spoiled.overlong], [1, 1]);
});

/** The JSON result of a CLI run. */
async function cli(args: string[], input?: string): Promise<NgramsResult> {
  const run = await runTally([...args, '--format', 'json', '--top', '0'], input === undefined ? {} : { input });
  if (run.code !== 0) throw new Error(`tally ${args.join(' ')} exited ${run.code}: ${run.stderr}`);
  return JSON.parse(run.stdout) as NgramsResult;
}

const CORPUS = [
  'It was the best of times, it was the worst of times, it was the age of wisdom, it was the age of foolishness.',
  'The quick brown fox jumps over the lazy dog. The quick brown fox! THE QUICK BROWN FOX?',
  "l’homme qui rit, l'homme qui pleure; 日本 語 日本 語 — ΟΔΟΣ οδος Οδός",
];

test('tally ngrams 3 over a folder (workers read 16-byte ranges) and over stdin (chunks carried) equals the reference; result reprints it', async (t) => {
  const folder = join(dir.path, 'corpus');
  const texts = CORPUS.map(utf8);
  (await import('node:fs')).mkdirSync(folder);
  texts.forEach((bytes, i) => writeFileSync(join(folder, `${i}.txt`), bytes));
  const settings: ReferenceSettings = { tokenizer: 'unicode', caseSensitive: false, maxWordBytes: 1024 };
  const want = referenceNgrams(texts, settings, 3);
  const fromFiles = await cli(['ngrams', '3', folder, '--chunk-size', '16', '--workers', '2']);
  t.deepEqual(fromFiles.counts, want.counts);
  t.deepEqual([fromFiles.kind, fromFiles.n, fromFiles.words, fromFiles.totalWords, fromFiles.uniqueWords, fromFiles.files], ['ngrams', 3, want.words, want.totalWords, want.counts.length, 3]);
  t.true(fromFiles.tasks > 3, `${fromFiles.tasks} tasks: the files were cut`);

  const fromStdin = await cli(['ngrams', '3', '-', '--chunk-size', '16', '--workers', '1'], CORPUS[0]!);
  t.deepEqual(fromStdin.counts, referenceNgrams([texts[0]!], settings, 3).counts);

  const table = await runTally(['result', fromFiles.job, '--top', '3']);
  t.is(table.code, 0, table.stderr);
  t.regex(table.stdout, /^#\s+3-gram\s+count\n1\s+it was the\s+4\n/);
  t.regex(table.stdout, new RegExp(`${want.totalWords} 3-grams, ${want.counts.length} unique, 0 overlong`));
  const jobs = await runTally(['jobs']);
  t.regex(jobs.stdout, /3-grams of /);
});

test('tally ngrams 1 prints what tally count prints (the whitespace tokenizer, case kept)', async (t) => {
  const args = ['samples/', '--tokenizer', 'whitespace', '--case-sensitive'];
  const words = await cli(['count', ...args]);
  const grams = await cli(['ngrams', '1', ...args]);
  t.deepEqual(grams.counts, words.counts);
  t.deepEqual([grams.totalWords, grams.uniqueWords, grams.overlongWords, grams.words], [words.totalWords, words.uniqueWords, words.overlongWords, words.totalWords]);
});

test('bad N and bad options: exit 2, one line naming what the user typed', async (t) => {
  const BIG = join(dir.path, 'big.txt');
  writeFileSync(BIG, Buffer.alloc(3_000_000, 'word '));
  for (const [args, expected] of [
    [['ngrams', '0', 'README.md'], /^tally: N: 0 is out of range \(1\.\.8\)\n$/],
    [['ngrams', 'two', 'README.md'], /^tally: N: 'two' is not a whole number\n$/],
    [['ngrams', '2'], /^tally: ngrams: no input given/],
    [['ngrams', '2', 'README.md', '--chunk-size', '1'], /^tally: --chunk-size: 1 is out of range/],
    // 16-byte cuts of a 3 MB file: more joins across cuts than one reducer takes.
    [['ngrams', '2', BIG, '--chunk-size', '16', '--reducers', '1'], /^tally: --chunk-size: 16 bytes cut the files \d+ times, too many n-grams to join across cuts for 1 reducer\(s\)/],
  ] as Array<[string[], RegExp]>) {
    const run = await runTally([...args, '--server', 'nats://127.0.0.1:1']);
    t.is(run.code, 2, args.join(' '));
    t.regex(run.stderr, expected);
  }
});
