/**
 * Sorted parts (shared/text/sorted-part.ts) and the streaming count renderer
 * (coordinator/render-count.ts): a table sorted into a part and read back gives its words in
 * the contract's order (computed here by the reference counter's code point comparison); parts
 * merged give the global order, reading no more than they must; malformed parts are refused,
 * whatever the pieces' edges; and the renderer prints what renderCount printed before it was
 * rewritten over the same code (kept below as `legacyRenderCount`), byte for byte.
 */
import test from 'ava';
import fc from 'fast-check';
import type { CountResult } from '../shared/kinds/count.js';
import { FNV_OFFSET, FNV_PRIME, IDENTITY, WordTable } from '../shared/text/word-table.js';
import { batchesOf, mergePartBatches, mergeParts, readPart, readPartBatches, sortPart, type PartRow } from '../shared/text/sorted-part.js';
import { counted, csvField, formatTable, loadDisplayWidth, type Format } from '../coordinator/output.js';
import { renderCount, writeCount, type CountRows, type CountSummary, type CountView } from '../coordinator/render-count.js';
import { sortCounts } from './helpers/reference-counter.js';
import { everyWordOver } from './helpers/texts.js';
import { checkSortedPart, expectedPart } from './helpers/parts.js';

const utf8 = (s: string) => Buffer.from(s, 'utf8');

/** A table holding exactly these (distinct) words with these counts. */
function tableOf(entries: Array<[string, number]>): WordTable {
  const table = new WordTable(IDENTITY, 16);
  for (const [word, count] of entries) {
    const bytes = utf8(word);
    let hash = FNV_OFFSET;
    let tail = 0;
    let high = 0;
    for (const b of bytes) {
      hash = Math.imul(hash ^ b, FNV_PRIME);
      tail = (tail << 8) | b;
      high |= b;
    }
    table.add(bytes, 0, bytes.length, hash, tail, high < 0x80, count);
  }
  return table;
}


/** The pieces of `bytes` cut at `cuts` (offsets, any order, duplicates allowed). */
function cutAt(bytes: Uint8Array, cuts: number[]): Uint8Array[] {
  const edges = [...new Set(cuts.map((c) => Math.min(c, bytes.length)))].sort((a, b) => a - b);
  const pieces: Uint8Array[] = [];
  let at = 0;
  for (const edge of [...edges, bytes.length]) {
    pieces.push(bytes.subarray(at, edge));
    at = edge;
  }
  return pieces;
}

/** An async source of pieces that counts how many it handed out. */
function source(pieces: Uint8Array[]): AsyncIterable<Uint8Array> & { pulls: number; closed: boolean } {
  const counter = {
    pulls: 0,
    closed: false,
    async *[Symbol.asyncIterator]() {
      try {
        for (const piece of pieces) {
          counter.pulls++;
          yield piece;
        }
      } finally {
        counter.closed = true;
      }
    },
  };
  return counter;
}

async function collectRows<T>(rows: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const row of rows) out.push(row);
  return out;
}

/** Characters that words are made of: every UTF-8 length, controls, marks, and U+E000-FFFF beside astral ones. */
const CHARS = ['a', 'b', 'z', 'A', '0', '9', '-', "'", '\u0000', '\u0001', '\r', '\x7f', '\x80', 'é', 'ß', 'ÿ', 'Ā', 'ж', '\u0301', '日', '本', '語', '한', 'ｱ', '\ue000', '\uffee', '\ufffd', '😀', '𝄞', '𠀀', '\u{10ffff}'];
const arbitraryWord = fc.oneof(
  fc.array(fc.constantFrom(...CHARS), { minLength: 1, maxLength: 6 }).map((cs) => cs.join('')),
  // Long shared prefixes: several rounds of the radix sort.
  fc.tuple(fc.constantFrom('internationalisation', 'a'.repeat(9), 'ab\u0000cd\u0000ef', '日本語日本語'), fc.array(fc.constantFrom(...CHARS), { maxLength: 4 })).map(([p, cs]) => p + cs.join('')),
);
const arbitraryCount = fc.oneof(
  { weight: 4, arbitrary: fc.integer({ min: 1, max: 3 }) },
  { weight: 2, arbitrary: fc.integer({ min: 1, max: 70_000 }) },
  { weight: 1, arbitrary: fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER }) },
  { weight: 1, arbitrary: fc.constantFrom(2 ** 30 - 1, 2 ** 30, 2 ** 31, 2 ** 32 + 1, Number.MAX_SAFE_INTEGER) },
);
const arbitraryEntries = fc.uniqueArray(fc.tuple(arbitraryWord, arbitraryCount), { selector: ([w]) => w, maxLength: 120 });

// Tables measure text beyond ASCII with string-width, loaded by the commands that print them.
test.before(loadDisplayWidth);

test('a sorted part holds the table in the contract order, and reads back whatever the pieces', async (t) => {
  await fc.assert(
    fc.asyncProperty(arbitraryEntries, fc.integer({ min: 1, max: 200 }), fc.array(fc.nat({ max: 6000 }), { maxLength: 30 }), fc.nat({ max: 10 }), async (entries, pieceBytes, cuts, top) => {
      const bytes = checkSortedPart(t, sortPart(tableOf(entries), { top, pieceBytes }), entries, top, pieceBytes);
      t.deepEqual(await collectRows(readPart(source(cutAt(bytes, cuts)), 'p')), sortCounts(entries));
    }),
    { numRuns: 300 },
  );
});

test('a part read back in 1-byte pieces', async (t) => {
  const entries: Array<[string, number]> = [['é', 3], ['😀', 3], ['\ue000', 3], ['a\u0000', 3], ['a', 3], ['日本語', 2 ** 40], ['z', 1]];
  const bytes = Buffer.concat([...sortPart(tableOf(entries)).pieces()]);
  const single = cutAt(bytes, Array.from({ length: bytes.length }, (_, i) => i));
  t.deepEqual(await collectRows(readPart(source(single), 'p')), sortCounts(entries));
  // U+E000 before U+1F600 (code point order), though its UTF-16 unit is the greater.
  t.deepEqual(sortCounts(entries).slice(1, 6).map(([w]) => w), ['a', 'a\u0000', 'é', '\ue000', '😀']);
});

test('every word over a small alphabet, NUL included: prefixes, zero bytes and long ties', (t) => {
  // All words of 1 to 8 characters over {NUL, a, b, é}: each word is the prefix of others,
  // and zero bytes look like the end of a word to a zero-padded key. 87,380 words of one
  // count take the big-range path; the same with counts 1-3 take the small one.
  const words = everyWordOver(['\u0000', 'a', 'b', 'é'], 8);
  for (const count of [() => 7, (i: number) => 1 + (i % 3)]) {
    const entries = words.map((w, i): [string, number] => [w, count(i)]);
    const part = sortPart(tableOf(entries), { top: 2 });
    t.true(Buffer.concat([...part.pieces()]).equals(expectedPart(entries)));
    t.is(part.words, words.length);
  }
});

test('words sharing a long prefix, some of them ending inside it', (t) => {
  const prefix = 'https://example.com/some/path/';
  const words = new Set<string>();
  for (let i = 0; i < prefix.length; i++) words.add(prefix.slice(0, i + 1));
  for (let i = 0; i < 3000; i++) words.add(`${prefix}${(i * 7919) % 10007}${i % 3 === 0 ? '\u0000' : ''}${i % 5 === 0 ? 'é' : ''}`);
  for (const count of [() => 1, (i: number) => 1 + (i % 2)]) {
    const entries = [...words].map((w, i): [string, number] => [w, count(i)]);
    t.true(Buffer.concat([...sortPart(tableOf(entries)).pieces()]).equals(expectedPart(entries)));
  }
});

test('an empty table is a part of one line', async (t) => {
  const part = sortPart(tableOf([]), { top: 5 });
  t.deepEqual(Buffer.concat([...part.pieces()]).toString(), 'tally-part 1\n');
  t.is(part.words, 0);
  t.deepEqual(part.top, []);
  t.deepEqual(await collectRows(readPart(source([...part.pieces()]), 'p')), []);
});

/** Splits entries into `r` parts by the picks (part of each entry), as sorted part pieces. */
function splitParts(entries: Array<[string, number]>, picks: number[], r: number, pieceBytes = 64): Uint8Array[][] {
  const parts = Array.from({ length: r }, () => [] as Array<[string, number]>);
  entries.forEach((entry, i) => parts[(picks[i] ?? i) % r]!.push(entry));
  return parts.map((part) => [...sortPart(tableOf(part), { pieceBytes }).pieces()]);
}

test('parts merged give the global order; the top K of the merge are the first K', async (t) => {
  await fc.assert(
    fc.asyncProperty(arbitraryEntries, fc.integer({ min: 1, max: 12 }), fc.array(fc.nat(), { maxLength: 120 }), fc.nat({ max: 40 }), async (entries, r, picks, k) => {
      const parts = splitParts(entries, picks, r);
      const expected = sortCounts(entries);
      t.deepEqual(await collectRows(mergeParts(parts.map((pieces, i) => readPart(source(pieces), `part ${i}`)))), expected);
      // Rows one at a time (no batches behind them) merge the same.
      const plain = parts.map((pieces, i) => rowByRow(readPart(source(pieces), `part ${i}`)));
      t.deepEqual(await collectRows(mergeParts(plain)), expected);
      // Batches, directly.
      const batches = await collectRows(mergePartBatches(parts.map((pieces, i) => readPartBatches(source(pieces), `part ${i}`)), 3));
      t.true(batches.every((batch) => batch.length >= 1 && batch.length <= 3));
      t.deepEqual(batches.flat(), expected);
      if (k > 0) t.deepEqual(await take(mergeParts(parts.map((pieces, i) => readPart(source(pieces), `part ${i}`))), k), expected.slice(0, k));
    }),
    { numRuns: 200 },
  );
});

/** The same rows through a plain async generator (mergeParts cannot see batches behind it). */
async function* rowByRow(rows: AsyncIterable<PartRow>): AsyncGenerator<PartRow> {
  for await (const row of rows) yield row;
}

/** The first k rows, then stop. */
async function take<T>(rows: AsyncIterable<T>, k: number): Promise<T[]> {
  const out: T[] = [];
  if (k === 0) return out;
  for await (const row of rows) {
    out.push(row);
    if (out.length >= k) break;
  }
  return out;
}

test('the merge reads only what the rows taken need, and closes its parts', async (t) => {
  const entries: Array<[string, number]> = Array.from({ length: 3000 }, (_, i) => [`w${i}`, 1 + (i % 50)]);
  const r = 16;
  const picks = entries.map((_, i) => i * 7);
  // A piece per line: every row pulled is a piece pulled.
  const parts = splitParts(entries, picks, r, 1);
  const total = parts.reduce((sum, pieces) => sum + pieces.length, 0);
  for (const k of [1, 10, 100]) {
    const sources = parts.map((pieces) => source(pieces));
    const rows = await take(mergeParts(sources.map((s, i) => readPart(s, `part ${i}`))), k);
    t.deepEqual(rows, sortCounts(entries).slice(0, k));
    const pulls = sources.reduce((sum, s) => sum + s.pulls, 0);
    // Each part's header and first line, then one line per row taken after the first.
    t.true(pulls <= 2 * r + k, `${pulls} pulls for ${k} rows`);
    t.true(pulls < total / 2);
    t.true(sources.every((s) => s.closed));
  }
  // Rows one at a time: the first row of each part, then one per row taken after the first.
  const counters = Array.from({ length: r }, () => 0);
  const plain = parts.map((pieces, i) =>
    (async function* () {
      for await (const row of readPart(source(pieces), `part ${i}`)) {
        counters[i]++;
        yield row;
      }
    })(),
  );
  t.deepEqual(await take(mergeParts(plain), 5), sortCounts(entries).slice(0, 5));
  t.is(counters.reduce((a, b) => a + b, 0), r + 4);
});

test('the merge: no parts, empty parts, a word in two parts, a part out of order', async (t) => {
  t.deepEqual(await collectRows(mergeParts([])), []);
  const empty = () => readPart(source([utf8('tally-part 1\n')]), 'empty');
  t.deepEqual(await collectRows(mergeParts([empty(), empty()])), []);
  const a = (): AsyncIterable<PartRow> => readPart(source([utf8('tally-part 1\nx\t5\nb\t2\n')]), 'a');
  const b = (): AsyncIterable<PartRow> => readPart(source([utf8('tally-part 1\nx\t5\nc\t2\nx\t1\n')]), 'b');
  // Yielded twice, the earlier part's first: a mistake in partitioning shows.
  t.deepEqual(await collectRows(mergeParts([b(), empty(), a()])), [['x', 5], ['x', 5], ['b', 2], ['c', 2], ['x', 1]]);
  const unsorted = (async function* (): AsyncGenerator<PartRow> {
    yield ['a', 2];
    yield ['b', 3];
  })();
  await t.throwsAsync(collectRows(mergeParts([unsorted, a()])), { message: /part 0 is not sorted/ });
  // Rows taken in batches cannot be read again one by one.
  const rows = readPart(source([utf8('tally-part 1\nx\t5\n')]), 'once');
  t.truthy(batchesOf(rows));
  t.is(batchesOf(rows), undefined);
  await t.throwsAsync(collectRows(rows), { message: /taken in batches/ });
});

const HEAD = 'tally-part 1\n';
const MALFORMED: Array<[string, Uint8Array, RegExp]> = [
  ['empty', utf8(''), /^p: line 1: empty \(no header\)$/],
  ['another header', utf8('tally-part 2\n'), /^p: line 1: not a sorted part/],
  ['header with CR', utf8('tally-part 1\r\na\t1\n'), /^p: line 1: not a sorted part/],
  ['partial result header', utf8('tally-count 1 3 1 0 1\na\t1\n'), /^p: line 1: not a sorted part/],
  ['header without newline', utf8('tally-part 1'), /^p: line 1: no newline at the end$/],
  ['last line without newline', utf8(`${HEAD}a\t1`), /^p: line 2: no newline at the end$/],
  ['no tab', utf8(`${HEAD}a 1\n`), /^p: line 2: no tab/],
  ['empty line', utf8(`${HEAD}a\t2\n\nb\t1\n`), /^p: line 3: no tab/],
  ['empty word', utf8(`${HEAD}\t1\n`), /^p: line 2: empty word$/],
  ['no count', utf8(`${HEAD}a\t\n`), /^p: line 2: bad count ""$/],
  ['count 0', utf8(`${HEAD}a\t0\n`), /^p: line 2: bad count "0"$/],
  ['leading zero', utf8(`${HEAD}a\t01\n`), /^p: line 2: bad count "01"$/],
  ['sign', utf8(`${HEAD}a\t+1\n`), /^p: line 2: bad count/],
  ['fraction', utf8(`${HEAD}a\t1.0\n`), /^p: line 2: bad count/],
  ['space after the count', utf8(`${HEAD}a\t1 \n`), /^p: line 2: bad count/],
  ['tab in the count', utf8(`${HEAD}a\t1\t2\n`), /^p: line 2: bad count/],
  ['2^53', utf8(`${HEAD}a\t9007199254740992\n`), /^p: line 2: bad count/],
  ['17 digits', utf8(`${HEAD}a\t12345678901234567\n`), /^p: line 2: bad count/],
  ['count going up', utf8(`${HEAD}a\t1\nb\t2\n`), /^p: line 3: count 2 after 1/],
  ['words going down', utf8(`${HEAD}a\t3\nc\t2\nb\t2\n`), /^p: line 4: "b" after "c"/],
  ['word repeated', utf8(`${HEAD}a\t2\na\t2\n`), /^p: line 3: "a" repeated$/],
  ['astral before U+E000', utf8(`${HEAD}😀\t1\n\ue000\t1\n`), /^p: line 3: "\ue000" after "😀"/],
  ['invalid byte', Buffer.concat([utf8(`${HEAD}a\t2\n`), Buffer.from([0x62, 0xff, 0x09, 0x31, 0x0a])]), /^p: line 3: the word is not valid UTF-8$/],
  ['overlong sequence', Buffer.concat([utf8(HEAD), Buffer.from([0xc0, 0x80, 0x09, 0x31, 0x0a])]), /^p: line 2: the word is not valid UTF-8$/],
  ['encoded surrogate', Buffer.concat([utf8(HEAD), Buffer.from([0xed, 0xa0, 0x80, 0x09, 0x31, 0x0a])]), /^p: line 2: the word is not valid UTF-8$/],
  ['truncated sequence', Buffer.concat([utf8(HEAD), Buffer.from([0x61, 0xe6, 0x97, 0x09, 0x31, 0x0a])]), /^p: line 2: the word is not valid UTF-8$/],
  ['invalid count bytes', Buffer.concat([utf8(HEAD), Buffer.from([0x61, 0x09, 0x31, 0xff, 0x0a])]), /^p: line 2: bad count/],
];

test('readPart refuses malformed parts, naming the part and the line, whatever the pieces', async (t) => {
  for (const [what, bytes, message] of MALFORMED) {
    const ways = [[bytes], cutAt(bytes, Array.from({ length: bytes.length }, (_, i) => i)), cutAt(bytes, [3, 14, 15, 17])];
    for (const pieces of ways) {
      await t.throwsAsync(collectRows(readPart(source(pieces), 'p')), { message }, `${what}, ${pieces.length} pieces`);
    }
  }
  // The largest count is fine.
  t.deepEqual(await collectRows(readPart(source([utf8(`${HEAD}a\t9007199254740991\n`)]), 'p')), [['a', Number.MAX_SAFE_INTEGER]]);
  // Rows before the bad line are given first.
  const rows: PartRow[] = [];
  await t.throwsAsync(async () => {
    for await (const row of readPart(source([utf8(`${HEAD}a\t3\nb\t2\nc\t0\n`)]), 'p')) rows.push(row);
  });
  t.deepEqual(rows, [['a', 3], ['b', 2]]);
});

test('readPart refuses a line longer than the longest word, holding no more than that', async (t) => {
  const long = Buffer.alloc(1024 * 1024 + 100, 0x61);
  for (const pieces of [[Buffer.concat([utf8(HEAD), long, utf8('\t1\n')])], cutAt(Buffer.concat([utf8(HEAD), long]), [20, 300_000, 600_000, 900_000])]) {
    await t.throwsAsync(collectRows(readPart(source(pieces), 'p')), { message: /^p: line 2: longer than/ });
  }
  // A word of exactly 1 MiB is fine.
  const word = 'é'.repeat(512 * 1024);
  const bytes = utf8(`${HEAD}${word}\t1\n`);
  t.deepEqual(await collectRows(readPart(source(cutAt(bytes, [1, 100_001, 700_001])), 'p')), [[word, 1]]);
});

/** renderCount as it was before the streaming renderer (git 47c5bab), the reference. */
function legacyRenderCount(result: CountResult, view: CountView): string {
  const counts = view.top === 0 ? result.counts : result.counts.slice(0, view.top);
  switch (view.format) {
    case 'json':
      return JSON.stringify({ ...result, counts }) + '\n';
    case 'tsv':
      return counts.map(([word, count]) => `${word}\t${count}\n`).join('');
    case 'csv':
      return 'word,count\n' + counts.map(([word, count]) => `${csvField(word)},${count}\n`).join('');
    case 'table': {
      const rows = counts.map(([word, count], i) => [i + 1, word, count] as Array<string | number>);
      const table = rows.length > 0 ? formatTable(rows, ['#', 'word', 'count']) : '(no words)\n';
      const totals =
        `${counted(result.totalWords, 'word')}, ${result.uniqueWords} unique, ${result.overlongWords} overlong` +
        ` · ${counted(result.files, 'file')}${result.mergedPaths ? ` (${counted(result.mergedPaths, 'repeated path')} counted once)` : ''}, ${counted(result.bytes, 'byte')}, ${counted(result.tasks, 'task')} · job ${result.job}\n`;
      return table + totals;
    }
  }
}

/** Words that need CSV quoting, terminal escapes, or are wide, narrow or zero-width. */
const AWKWARD = ['a,b', 'say "hi"', 'cr\rhere', '\x1b[31mred', '\u202eevil', 'back\\slash', '\x9bcsi', '\x07', '日本語', '😀', 'ｱｲｳ', 'a\u0301', 'e\u0301\u0301', '\u200b', 'x\u200dy', 'Ω', '👩‍👩‍👧', 'internationalization', 'k'];

function resultOf(counts: Array<[string, number]>, mergedPaths?: number): CountResult {
  return {
    job: 'j123',
    kind: 'count',
    files: 2,
    ...(mergedPaths ? { mergedPaths } : {}),
    bytes: 1234,
    tasks: 1,
    totalWords: counts.reduce((sum, [, c]) => sum + c, 0) + 7,
    uniqueWords: counts.length,
    overlongWords: 7,
    counts,
  };
}

/** writeCount's text, in the pieces it wrote. */
async function streamed(summary: CountSummary, openRows: () => CountRows, view: CountView, slowWrite = false): Promise<{ text: string; writes: number; opens: number }> {
  let text = '';
  let writes = 0;
  let opens = 0;
  await writeCount(
    summary,
    () => {
      opens++;
      return openRows();
    },
    view,
    (piece) => {
      text += piece;
      writes++;
      if (slowWrite) return new Promise((resolve) => setImmediate(resolve));
    },
  );
  return { text, writes, opens };
}

const FORMATS: Format[] = ['table', 'json', 'tsv', 'csv'];

test('the streaming renderer prints what renderCount printed, byte for byte', async (t) => {
  const results = [
    resultOf(sortCounts(AWKWARD.map((w, i) => [w, 1 + (i % 4) * 1000]))),
    resultOf(sortCounts(AWKWARD.map((w, i) => [w, 1 + (i % 3)])), 3),
    resultOf([]),
    resultOf([], 1),
    resultOf([['only', Number.MAX_SAFE_INTEGER]]),
  ];
  for (const result of results) {
    const { counts, ...summary } = result;
    const rowsInParts = () => {
      const parts = splitParts(counts, counts.map((_, i) => i), 3);
      return mergeParts(parts.map((pieces, i) => readPart(source(pieces), `part ${i}`)));
    };
    for (const format of FORMATS) {
      for (const top of [0, 1, 5, counts.length + 3]) {
        const view = { format, top };
        const expected = legacyRenderCount(result, view);
        const what = `${format} --top ${top}, ${counts.length} rows${result.mergedPaths ? ', merged paths' : ''}`;
        t.is(renderCount(result, view), expected, what);
        t.is((await streamed(summary, () => counts, view)).text, expected, `${what}, array`);
        t.is((await streamed(result, () => rowByRow(asyncRows(counts)), view, true)).text, expected, `${what}, rows, full result as summary`);
        t.is((await streamed(summary, () => asyncBatches(counts, 4), view)).text, expected, `${what}, batches`);
        const merged = await streamed(summary, rowsInParts, view);
        t.is(merged.text, expected, `${what}, merged parts`);
        t.is(merged.opens, format === 'table' ? 2 : 1);
      }
    }
  }
});

async function* asyncRows(rows: Array<[string, number]>): AsyncGenerator<PartRow> {
  yield* rows;
}

async function* asyncBatches(rows: Array<[string, number]>, size: number): AsyncGenerator<PartRow[]> {
  for (let i = 0; i < rows.length; i += size) yield rows.slice(i, i + size);
}

test('the streaming renderer writes in pieces and reads only the top rows', async (t) => {
  const counts: Array<[string, number]> = sortCounts(Array.from({ length: 30_000 }, (_, i) => [`word${i}${AWKWARD[i % AWKWARD.length]}`, 1 + (i % 100)]));
  const result = resultOf(counts, 2);
  const { counts: _, ...summary } = result;
  for (const format of FORMATS) {
    const out = await streamed(summary, () => counts, { format, top: 0 }, true);
    t.is(out.text, legacyRenderCount(result, { format, top: 0 }));
    t.true(out.writes > 5, `${format}: ${out.writes} writes`);
  }
  // --top 3 over 16 parts of a piece per line: a few pieces each, not the parts.
  const parts = splitParts(counts, counts.map((_, i) => i * 13), 16, 1);
  for (const format of FORMATS) {
    let pulls = 0;
    const open = () =>
      mergeParts(
        parts.map((pieces, i) => {
          const s = source(pieces);
          return readPart(
            {
              async *[Symbol.asyncIterator]() {
                for await (const piece of s) {
                  pulls++;
                  yield piece;
                }
              },
            },
            `part ${i}`,
          );
        }),
      );
    const out = await streamed(summary, open, { format, top: 3 });
    t.is(out.text, legacyRenderCount(result, { format, top: 3 }));
    t.true(pulls <= (format === 'table' ? 2 : 1) * (2 * 16 + 3), `${format}: ${pulls} pulls`);
  }
});

test('2,000,000 distinct words sort, read back and merge in order', async (t) => {
  // Numbers, words sharing long prefixes, words with NUL bytes, and non-ASCII words; counts
  // from few values (runs of hundreds of thousands of words) to big ones.
  const n = 2_000_000;
  const kinds = ['', 'a shared prefix longer than eight bytes ', 'a\u0000', 'é', '日本', '😀', '\ue000'];
  const word = (i: number) => `${kinds[i % kinds.length]}${(i * 2654435761) % 4294967311}`;
  const count = (i: number) => (i % 5 === 0 ? 1 + Math.floor(1e9 / (i + 1)) : 1 + (i % 3));
  const table = new WordTable(IDENTITY);
  const byWord = new Map<string, number>();
  for (let i = 0; i < n; i++) {
    const w = word(i);
    if (byWord.has(w)) continue;
    byWord.set(w, count(i));
    const bytes = utf8(w);
    let hash = FNV_OFFSET;
    let tail = 0;
    let high = 0;
    for (const b of bytes) {
      hash = Math.imul(hash ^ b, FNV_PRIME);
      tail = (tail << 8) | b;
      high |= b;
    }
    table.add(bytes, 0, bytes.length, hash, tail, high < 0x80, count(i));
  }
  const part = sortPart(table, { top: 3, pieceBytes: 1 << 20 });
  t.is(part.words, byWord.size);
  // Checked line by line against the words put in, with bytes compared by Buffer.compare.
  const bytes = Buffer.concat([...part.pieces()]);
  t.is(bytes.length, part.bytes);
  t.is(bytes.toString('latin1', 0, 13), 'tally-part 1\n');
  let lines = 0;
  let prev: Buffer | undefined;
  let prevCount = Infinity;
  let ordered = true;
  let known = true;
  for (let p = 13; p < bytes.length; ) {
    const tab = bytes.indexOf(0x09, p);
    const nl = bytes.indexOf(0x0a, tab);
    const w = bytes.subarray(p, tab);
    const c = Number(bytes.toString('latin1', tab + 1, nl));
    if (prev !== undefined && !(c < prevCount || (c === prevCount && Buffer.compare(prev, w) < 0))) ordered = false;
    if (byWord.get(w.toString('utf8')) !== c) known = false;
    prev = w;
    prevCount = c;
    lines++;
    p = nl + 1;
  }
  t.true(ordered);
  t.true(known);
  t.is(lines, byWord.size);
  t.deepEqual(part.top, sortCounts([...byWord].filter(([, c]) => c >= part.top[2]![1])).slice(0, 3));
  // Read back, and merged from 7 parts: the same rows.
  const whole: PartRow[] = [];
  for await (const batch of batchesOf(readPart(source(cutAt(bytes, [1000, 5_000_000, 5_000_001])), 'whole'))!) whole.push(...batch);
  t.is(whole.length, byWord.size);
  const entries = [...byWord];
  const parts = splitParts(entries, entries.map((_, i) => i), 7, 1 << 20);
  let i = 0;
  let same = true;
  for await (const batch of batchesOf(mergeParts(parts.map((pieces, k) => readPart(source(pieces), `part ${k}`))))!) {
    for (const [w, c] of batch) if (whole[i]![0] !== w || whole[i++]![1] !== c) same = false;
  }
  t.true(same);
  t.is(i, whole.length);
});
