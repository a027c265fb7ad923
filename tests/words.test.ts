/**
 * What a word is: both tokenizers against an independent reference (a regex over the
 * TextDecoder output for unicode, a byte split for whitespace) and against the real
 * `LC_ALL=C wc -w`; the partial format; spec validation; the result order.
 */
import test from 'ava';
import fc from 'fast-check';
import assert from 'node:assert';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { countBytes, countKind } from '../shared/kinds/count.js';
import { ChunkWords, compareCodePoints, countChunk } from '../shared/text/words.js';
import { useScanner } from '../shared/text/wasm-scanner.js';
import { TaskRejectedError } from '../shared/errors.js';
import { compareCodePoints as referenceOrder, referenceCount, type ReferenceCount, type ReferenceSettings } from './helpers/reference-counter.js';

type Settings = ReferenceSettings;
type Counted = ReferenceCount;
const byCodePoints = referenceOrder;
const reference = (bytes: Uint8Array, s: Settings): Counted => referenceCount(bytes, s);

/**
 * Counts with each scanner (shared/text/wasm-scanner.ts: WebAssembly and JavaScript), which
 * must agree exactly; so every test here holds for both.
 */
function counted(bytes: Uint8Array, s: Settings, chunkSize = 1 << 20): Counted {
  const [wasm, js] = (['wasm', 'js'] as const).map((scanner) => {
    useScanner(scanner);
    try {
      const r = countBytes(bytes, { ...s, chunkSize });
      return { totalWords: r.totalWords, overlongWords: r.overlongWords, counts: r.counts };
    } finally {
      useScanner(undefined);
    }
  });
  assert.deepStrictEqual(wasm, js, `the WebAssembly and JavaScript scanners disagree on ${Buffer.from(bytes).toString('hex').slice(0, 200)}`);
  return wasm!;
}

function wc(bytes: Uint8Array): number {
  const out = execFileSync('wc', ['-w'], { input: bytes, env: { ...process.env, LC_ALL: 'C' } });
  return Number(out.toString().trim());
}

const utf8 = (s: string) => new TextEncoder().encode(s);
const U: Settings = { tokenizer: 'unicode', caseSensitive: false, maxWordBytes: 1024 };
const W: Settings = { tokenizer: 'whitespace', caseSensitive: false, maxWordBytes: 1024 };

test('unicode: apostrophes join exactly one pair of word runs', (t) => {
  const r = counted(utf8("Don't l’homme rock'n'roll ''x'' a''b c'  'd e'’f g' "), U);
  t.deepEqual(r.counts, [
    ['a', 1], ['b', 1], ['c', 1], ['d', 1], ["don't", 1], ['e', 1], ['f', 1], ['g', 1], ['l’homme', 1], ["rock'n'roll", 1], ['x', 1],
  ]);
  t.is(r.totalWords, 11);
});

test('unicode: letters, marks and numbers; U+FFFD, symbols and emoji separate', (t) => {
  const bytes = Buffer.concat([utf8('a\u0301b 42x ٣٤ 日本語😀ok '), Buffer.from([0x61, 0xff, 0x62, 0x20, 0xe3, 0x81, 0x63])]);
  const r = counted(bytes, U);
  t.deepEqual(r, reference(bytes, U));
  t.deepEqual(
    r.counts.map(([w]) => w).sort(byCodePoints),
    ['42x', 'a', 'a\u0301b', 'b', 'c', 'ok', '٣٤', '日本語'].sort(byCodePoints),
  );
});

test('ill-formed UTF-8 that a lax decoder would read as letters separates', (t) => {
  // C1 A9 = overlong "i", E0 83 A9 = overlong "é", F0 80 81 81 = overlong "A", F4 90 80 80 > U+10FFFF.
  const bytes = Buffer.from([0x61, 0xc1, 0xa9, 0x62, 0xe0, 0x83, 0xa9, 0x63, 0xf0, 0x80, 0x81, 0x81, 0x64, 0xf4, 0x90, 0x80, 0x80, 0x65]);
  const r = counted(bytes, U);
  t.deepEqual(r, reference(bytes, U));
  t.is(r.totalWords, 5);
});

test('case folding uses toLowerCase on the whole word (final sigma), or keeps case', (t) => {
  // U+212A KELVIN SIGN folds to ASCII "k"; "ΟΔΟΣ" folds to "οδος" with a final sigma.
  const bytes = utf8('ΟΔΟΣ Οδός οδος The THE the İstanbul \u212Aelvin kelvin');
  const folded = counted(bytes, U);
  t.deepEqual(folded, reference(bytes, U));
  t.truthy(folded.counts.find(([w]) => w === 'οδο\u03c2'), 'final sigma');
  t.deepEqual(folded.counts.slice(0, 2), [['the', 3], ['kelvin', 2]]);
  const kept = counted(bytes, { ...U, caseSensitive: true });
  t.deepEqual(kept, reference(bytes, { ...U, caseSensitive: true }));
  t.is(kept.counts.length, 9);
  // A chunk's partial lists each folded word once: spellings that fold alike are merged, with
  // each other and with the spelling stored as it is.
  for (const scanner of ['wasm', 'js'] as const) {
    useScanner(scanner);
    const lines = new TextDecoder().decode(countChunk(bytes, U, { fileStart: true, continuesWord: false, endsInsideWord: false, wordCounted: false }).words.encodeLines().bytes);
    useScanner(undefined);
    const words = lines.split('\n').filter(Boolean).map((line) => line.split('\t')[0]!);
    t.deepEqual(words.slice().sort(), [...new Set(words)].sort(), `${scanner}: one line per word`);
    t.true(lines.includes('kelvin\t2\n') && lines.includes('οδος\t2\n') && lines.includes('οδός\t1\n'), lines);
  }
});

test('overlong words count in totals but not in the table', (t) => {
  const bytes = utf8('abc abcd éé ééé it’s it’ss');
  const s = { ...U, maxWordBytes: 4 };
  const r = counted(bytes, s);
  t.deepEqual(r, reference(bytes, s));
  t.is(r.totalWords, 6);
  t.is(r.overlongWords, 3); // ééé (6 bytes), it’s (6), it’ss (7)
});

test('whitespace: printable-ASCII rule, BOM, invalid UTF-8, agrees with LC_ALL=C wc -w', (t) => {
  const cases: Uint8Array[] = [
    utf8('日本 語'),
    Buffer.from('a\x01b'),
    Buffer.from([0x01]),
    Buffer.from([0xc2, 0xa0]),
    Buffer.from([0x78, 0xc2, 0xa0, 0x79]),
    Buffer.from([0xef, 0xbb, 0xbf, 0x48, 0x69, 0x20, 0xef, 0xbb, 0xbf, 0x48, 0x69]),
    Buffer.from([0xff, 0xfe, 0x41, 0x0b, 0x80, 0x0c, 0x7f, 0x0d, 0x5a, 0xe3, 0x81, 0x09, 0x00, 0x21]),
    utf8("The quick\tbrown\n\nfox's — jumps\r\nover   the lazy dog. Ünïcödé wörds"),
  ];
  for (const bytes of cases) {
    const r = counted(bytes, W);
    t.deepEqual(r, reference(bytes, W));
    t.is(r.totalWords, wc(bytes), `wc -w on ${Buffer.from(bytes).toString('hex')}`);
  }
  t.deepEqual(counted(cases[5], W).counts, [['hi', 1], ['\ufeffhi', 1]]);
});

/** Random byte texts built from fragments that stress every rule. */
const FRAGMENTS: Uint8Array[] = [
  ...['a', 'B', 'z', 'Q', 'word', 'The', 'the', 'THE', '0', '7', 'x1', "'", '’', "''", ' ', '  ', '\t', '\n', '\r\n', '\v', '\f', '.', ',', '-', '!', '"', '(', 'é', 'É', 'Σ', 'σ', 'ς', 'ΟΔΟΣ', '日本', '語', '😀', '𝐀', '𠀀', '\u0301', 'क्षि', '٣', '\u00a0', '\ufeff', 'İ', 'K', 'ß', '\u0001', '\u007f'].map(utf8),
  ...[[0x80], [0xbf], [0xc0, 0xaf], [0xc1], [0xf5], [0xff], [0xe3, 0x81], [0xf0, 0x9f, 0x98], [0xed, 0xa0, 0x80], [0xe0, 0x80, 0x80], [0x80, 0x80, 0x80, 0x80, 0x80], [0xe2, 0x80], [0xc1, 0xa9], [0xe0, 0x83, 0xa9], [0xf0, 0x80, 0x81, 0x81], [0xf4, 0x90, 0x80, 0x80], [0xed, 0xbf, 0xbf], [0xe2, 0x80, 0x99]].map((b) => Uint8Array.from(b)),
];

const arbitraryText = fc
  .array(
    fc.oneof(
      { weight: 6, arbitrary: fc.constantFrom(...FRAGMENTS) },
      { weight: 1, arbitrary: fc.tuple(fc.constantFrom(...FRAGMENTS.slice(0, 12)), fc.integer({ min: 2, max: 40 })).map(([f, n]) => Buffer.concat(Array(n).fill(f))) },
      { weight: 1, arbitrary: fc.uint8Array({ maxLength: 8 }) },
    ),
    { maxLength: 120 },
  )
  .map((parts) => Buffer.concat(parts));

test('property: one-chunk counts equal the reference (both tokenizers, both case modes)', (t) => {
  fc.assert(
    fc.property(arbitraryText, fc.constantFrom<'unicode' | 'whitespace'>('unicode', 'whitespace'), fc.boolean(), fc.integer({ min: 1, max: 40 }), (bytes, tokenizer, caseSensitive, maxWordBytes) => {
      const s = { tokenizer, caseSensitive, maxWordBytes };
      t.deepEqual(counted(bytes, s), reference(bytes, s));
    }),
    { numRuns: 400 },
  );
});

/** `LC_ALL=C wc -w` run once on the files `names` in `dir`: each file's total, by name. */
function wcTotals(dir: string, names: string[]): Map<string, number> {
  const out = execFileSync('wc', ['-w', '--', ...names], { cwd: dir, env: { ...process.env, LC_ALL: 'C' }, encoding: 'utf8' });
  const totals = new Map<string, number>();
  for (const line of out.trimEnd().split('\n')) {
    const match = /^\s*(\d+) (\S+)$/.exec(line);
    if (!match) throw new Error(`unexpected wc line: ${JSON.stringify(line)}`);
    if (match[2] !== 'total') totals.set(match[2]!, Number(match[1]));
  }
  return totals;
}

/**
 * Against the real wc in bulk: each run writes a batch of generated texts to files and runs wc
 * once on all of them (a wc process per text allowed only 40 texts in the time), so thousands
 * of texts are checked in a few seconds. Each text is also cut into chunks of a random size, down
 * to 1 byte, with a random --max-word-bytes: the totals depend on neither.
 */
test('property: whitespace totals equal LC_ALL=C wc -w, 3,000 texts, one wc process per batch of 250', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'tally-wc-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const BATCH = 250;
  const RUNS = 12;
  const text = fc.record({
    bytes: arbitraryText,
    chunkSize: fc.oneof(fc.integer({ min: 1, max: 64 }), fc.constant(1 << 20)),
    maxWordBytes: fc.integer({ min: 1, max: 1024 }),
  });
  let checked = 0;
  const property = fc.property(fc.array(text, { minLength: BATCH, maxLength: BATCH }), (batch) => {
    const names = batch.map((_, i) => `text-${i}`);
    batch.forEach(({ bytes }, i) => writeFileSync(join(dir, names[i]!), bytes));
    const totals = wcTotals(dir, names);
    batch.forEach(({ bytes, chunkSize, maxWordBytes }, i) => {
      const ours = counted(bytes, { ...W, maxWordBytes }, chunkSize).totalWords;
      const theirs = totals.get(names[i]!);
      if (ours !== theirs) throw new Error(`tally counts ${ours}, wc ${theirs} (chunk size ${chunkSize}) in the text ${Buffer.from(bytes).toString('hex')}`);
    });
    checked += batch.length;
  });
  // No shrinking: the texts of a batch are independent and the message names the one that
  // disagrees, while shrinking a batch (a wc run per try) takes minutes. The seed replays it.
  const run = fc.check(property, { numRuns: RUNS, endOnFailure: true });
  t.false(run.failed, run.failed ? `seed ${run.seed}: ${run.errorInstance instanceof Error ? run.errorInstance.message : String(run.errorInstance)}` : undefined);
  t.is(checked, BATCH * RUNS);
});

test('thousands of distinct words in one chunk: equal lengths and endings never merge', (t) => {
  // Enough words that the hash table fills, grows and probes long clusters, where only the
  // byte comparison tells apart words of equal length (and, here, equal last 4 bytes).
  const words: string[] = [];
  const letters = 'abcdefghijklmnopqrstuvwxyz';
  for (const a of letters) for (const b of letters) for (const c of letters) words.push(a + b + c);
  for (const a of letters) for (const b of 'xyzé日') words.push(`${a}${b}bcde`, `${a}${b}bcdé`, `${a.toUpperCase()}${b}BCDE`, `${b}${a}’bcd`);
  for (const a of letters) words.push(`${a}wxyz`, `${a}é`);
  const cjk = Array.from('日本語中文字國家人大小山川田天地水火木金土');
  for (const a of cjk) for (const b of cjk) words.push(a + b, `${a}${b}${a}`);
  let seed = 7;
  const random = () => (seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32;
  const text = words.flatMap((w) => Array.from({ length: 1 + Math.floor(random() * 3) }, () => (random() < 0.2 ? w.toUpperCase() : w))).sort(() => random() - 0.5).join(random() < 0.5 ? ' ' : '\n');
  const bytes = utf8(text);
  for (const tokenizer of ['unicode', 'whitespace'] as const) {
    for (const caseSensitive of [false, true]) {
      const s = { tokenizer, caseSensitive, maxWordBytes: 1024 };
      t.deepEqual(counted(bytes, s, 1 << 20), reference(bytes, s), `${tokenizer} ${caseSensitive}`);
    }
  }
});

test('ChunkWords: words in one probe cluster are told apart by their bytes', (t) => {
  // Every word gets the same hash, so every lookup walks one cluster and only the stored
  // length, last 4 bytes and byte comparison can keep words apart.
  const list = ['a', 'b', 'ab', 'ba', 'abcd', 'abce', 'xbcd', 'abcde', 'xbcde', 'axcde', 'abxde', 'abcdef', 'xbcdef', 'Abcde', 'ABCDE', 'é', 'è', 'éa', 'aé', '日本', '本日', '日本語', '日本日', 'a\u0000', '\u0000a'];
  for (const caseSensitive of [false, true]) {
    const text = list.flatMap((w, i) => Array(i + 1).fill(w)).join(' ');
    const body = utf8(text);
    const table = new ChunkWords(caseSensitive, body.length);
    const expected = new Map<string, number>();
    let start = 0;
    for (const word of text.split(' ')) {
      const bytes = utf8(word);
      const folded = caseSensitive ? bytes : bytes.map((b) => (b >= 0x41 && b <= 0x5a ? b + 32 : b));
      const tail = folded.slice(-4).reduce((acc, b) => (acc << 8) | b, 0);
      table.add(body, start, bytes.length, 12345, tail, bytes.every((b) => b < 0x80), 1);
      const key = caseSensitive ? word : word.toLowerCase();
      expected.set(key, (expected.get(key) ?? 0) + 1);
      start += bytes.length + 1;
    }
    const got = new Map<string, number>();
    table.forEach((w, n) => got.set(w, (got.get(w) ?? 0) + n));
    t.deepEqual([...got].sort(), [...expected].sort());
    const lines = new TextDecoder().decode(table.encodeLines().bytes).split('\n').filter(Boolean);
    const fromLines = new Map<string, number>();
    for (const line of lines) {
      const [w, n] = line.split('\t');
      fromLines.set(w, (fromLines.get(w) ?? 0) + Number(n));
    }
    t.deepEqual([...fromLines].sort(), [...expected].sort());
  }
});

test('compareCodePoints orders by code point, not UTF-16 unit', (t) => {
  t.true(compareCodePoints('\uffff', '😀') < 0); // JS < says the opposite
  t.true('\uffff' > '😀');
  fc.assert(
    fc.property(fc.string({ unit: 'grapheme' }), fc.string({ unit: 'grapheme' }), (a, b) => {
      t.is(Math.sign(compareCodePoints(a, b)), Math.sign(byCodePoints(a, b)));
    }),
    { numRuns: 500 },
  );
});

test('result: every counted word, by count descending then code point order', (t) => {
  // U+FF58 (fullwidth x) < U+1D400 (bold A) in code points, though JS '<' puts the pair first.
  const r = countBytes(utf8('𝐀 ｘ b a b z 𝐀 ｘ'), { ...U, caseSensitive: true });
  t.deepEqual(r.counts, [['b', 2], ['ｘ', 2], ['𝐀', 2], ['a', 1], ['z', 1]]);
  t.is(r.uniqueWords, 5);
  t.is(r.totalWords, 8);
});

test('map rejects malformed specs', (t) => {
  const how = { tokenizer: 'unicode', caseSensitive: false, maxWordBytes: 1024 };
  const one = (offset: number, length: number, flags: number) => ({ ...how, chunks: [[0, offset, length, flags]] });
  const good = one(0, 11, 0);
  const body = utf8('hello world');
  t.notThrows(() => countKind.map(good, body, { working() {} }));
  const bad: unknown[] = [
    null,
    [],
    'x',
    { ...good, tokenizer: 'words' },
    { ...good, maxWordBytes: 0 },
    { ...good, maxWordBytes: 1.5 },
    { ...good, maxWordBytes: 1024 * 1024 + 1 },
    { ...good, caseSensitive: 'no' },
    { ...good, extra: true },
    { ...how, chunks: [] },
    { ...how },
    one(-1, 11, 0),
    { ...how, chunks: [['0', 0, 11, 0]] },
    { ...how, chunks: [[0, 0, 11]] },
    one(0, 11, 8),
    one(0, 10, 0), // the chunks do not add up to the body
    one(0, 11, 4), // wordCounted without continuesWord
    one(0, 11, 1), // continuesWord on the first chunk of a file
  ];
  for (const spec of bad) t.throws(() => countKind.map(spec, body, { working() {} }), { instanceOf: TaskRejectedError }, JSON.stringify(spec));
  t.notThrows(() => countKind.map(one(5, 11, 3), body, { working() {} }));
  // Flags that cannot describe the chunk: a flagged edge next to a separator.
  t.throws(() => countKind.map(one(5, 6, 2), utf8('hello '), { working() {} }), { instanceOf: TaskRejectedError });
  t.throws(() => countKind.map(one(5, 6, 1), utf8(' hello'), { working() {} }), { instanceOf: TaskRejectedError });
  t.throws(() => countKind.map({ ...one(5, 6, 2), tokenizer: 'whitespace' }, utf8('hello\n'), { working() {} }), { instanceOf: TaskRejectedError });
});

test('partials: text format, reduce sums duplicates and rejects garbage', async (t) => {
  const spec = { tokenizer: 'unicode', caseSensitive: false, maxWordBytes: 1024, chunks: [[0, 0, 11, 0]] };
  const partial = countKind.map(spec, utf8('The the cat'), { working() {} }) as Uint8Array;
  const text = new TextDecoder().decode(partial);
  const [header, ...lines] = text.split('\n');
  t.is(header, 'tally-count 1 11 3 0 2');
  t.deepEqual(lines.filter(Boolean).sort(), ['cat\t1', 'the\t2']);
  const acc = countKind.init({ inputs: [], tokenizer: 'unicode', caseSensitive: false, maxWordBytes: 1024, chunkSize: 1024 });
  countKind.reduce(acc, partial, 0);
  countKind.reduce(acc, utf8('tally-count 1 4 2 0 2\ncat\t1\ncat\t1\n'), 1);
  const result = await countKind.finalize(acc, { job: 'j1', tasks: 2 }, { inputs: [{ path: 'a', size: 11 }, { path: 'b', size: 4 }], tokenizer: 'unicode', caseSensitive: false, maxWordBytes: 1024, chunkSize: 1024 });
  t.deepEqual(result, { job: 'j1', kind: 'count', files: 2, bytes: 15, tasks: 2, totalWords: 5, uniqueWords: 2, overlongWords: 0, counts: [['cat', 3], ['the', 2]] });
  for (const garbage of ['', 'hello', 'tally-count 1 1 1 0 1\nx\t0\n', 'tally-count 1 1 1 0 2\nx\t1\n', 'tally-count 1 1 1 0 1\nx 1\n', 'tally-count 2 1 1 0 0\n']) {
    t.throws(() => countKind.reduce(countKind.init({ inputs: [], tokenizer: 'unicode', caseSensitive: false, maxWordBytes: 1, chunkSize: 1 }), utf8(garbage), 7), { message: /task 7: malformed/ });
  }
});
