/**
 * Chunking is invisible: counting a text in chunks of any size, pushed in pieces of any size,
 * gives exactly what an independent reference computes on the whole text.
 */
import test from 'ava';
import fc from 'fast-check';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { countBytes, countKind, type CountOptions } from '../shared/kinds/count.js';
import { Chunker, chunkBytes, chunkStream, type Chunk, type ChunkOptions } from '../shared/text/chunker.js';
import { UsageError } from '../shared/errors.js';
import { compareCodePoints, referenceCount, type ReferenceCount, type ReferenceSettings } from './helpers/reference-counter.js';
import { arbitrarySettings, arbitraryText, utf8 } from './helpers/texts.js';

type Settings = ReferenceSettings;
type Counted = ReferenceCount;
const byCodePoints = compareCodePoints;
const reference = (bytes: Uint8Array, s: Settings): Counted => referenceCount(bytes, s);

function counted(bytes: Uint8Array, s: Settings, chunkSize: number): Counted {
  const r = countBytes(bytes, { ...s, chunkSize });
  return { totalWords: r.totalWords, overlongWords: r.overlongWords, counts: r.counts };
}

test('property: counting in chunks of 1..64 bytes equals the reference', (t) => {
  fc.assert(
    fc.property(arbitraryText, arbitrarySettings, fc.integer({ min: 1, max: 64 }), (bytes, s, chunkSize) => {
      t.deepEqual(counted(bytes, s, chunkSize), reference(bytes, s));
    }),
    { numRuns: 500 },
  );
});

/** Checks what every chunk sequence must satisfy, whatever the text. */
function checkChunks(bytes: Uint8Array, chunks: Chunk[], options: ChunkOptions): void {
  const bodies = chunks.map((c) => c.body);
  if (Buffer.compare(Buffer.concat(bodies), Buffer.from(bytes)) !== 0) throw new Error('chunks do not reassemble the text');
  const limit = Math.max(options.chunkSize, options.maxWordBytes + 8);
  // Decoding the pieces apart must give the whole text's decoding, up to how many U+FFFD
  // stand in a row: a cut inside a valid sequence would turn a character into U+FFFD.
  const dec = (b: Uint8Array) => new TextDecoder('utf-8', { ignoreBOM: true }).decode(b).replace(/\uFFFD+/g, '\uFFFD');
  let offset = 0;
  for (let i = 0; i < chunks.length; i++) {
    const c = chunks[i];
    if (c.body.length === 0) throw new Error('empty chunk');
    if (c.body.length > limit) throw new Error(`chunk of ${c.body.length} bytes over ${limit}`);
    if (c.start !== offset) throw new Error('wrong start');
    offset += c.body.length;
    if (c.continuesWord !== (i > 0 && chunks[i - 1].endsInsideWord)) throw new Error('flags disagree');
    if (c.wordCounted && !c.continuesWord) throw new Error('wordCounted without continuesWord');
    if (i > 0) {
      const left = bytes.subarray(0, c.start);
      const right = bytes.subarray(c.start);
      if ((dec(left) + dec(right)).replace(/\uFFFD+/g, '\uFFFD') !== dec(bytes)) throw new Error(`cut at ${c.start} splits a character`);
    }
  }
  if (chunks.at(-1)?.endsInsideWord) throw new Error('last chunk ends inside a word');
}

test('property: chunks reassemble the text, respect the size limit and never split a character', (t) => {
  fc.assert(
    fc.property(arbitraryText, arbitrarySettings, fc.integer({ min: 1, max: 64 }), (bytes, s, chunkSize) => {
      const options = { tokenizer: s.tokenizer, chunkSize, maxWordBytes: s.maxWordBytes };
      checkChunks(bytes, [...chunkBytes(bytes, options)], options);
      t.pass();
    }),
    { numRuns: 300 },
  );
});

test('property: pushing the stream in pieces of any size gives the same chunks', async (t) => {
  await fc.assert(
    fc.asyncProperty(arbitraryText, arbitrarySettings, fc.integer({ min: 1, max: 64 }), fc.array(fc.integer({ min: 1, max: 97 }), { minLength: 1, maxLength: 20 }), async (bytes, s, chunkSize, sizes) => {
      const options = { tokenizer: s.tokenizer, chunkSize, maxWordBytes: s.maxWordBytes };
      async function* pieces() {
        let i = 0;
        for (let k = 0; i < bytes.length; k++) {
          const n = sizes[k % sizes.length];
          yield bytes.subarray(i, i + n);
          i += n;
        }
      }
      const streamed: Chunk[] = [];
      for await (const chunk of chunkStream(pieces(), options)) streamed.push(chunk);
      t.deepEqual(streamed, [...chunkBytes(bytes, options)]);
    }),
    { numRuns: 200 },
  );
});

test('apostrophes next to a forced cut, at every chunk size', (t) => {
  // Multi-byte letters before an ASCII apostrophe: deciding a cut right after it needs the
  // letter before it, which may lie in the previous chunk (the chunker keeps history bytes;
  // the texts are long enough for the chunker's buffer to compact).
  const texts = ["abcdefgh'ijklmnop q", "x abcdefgh’ijklmnop'q r'", "''abcdefghijklmnopqrst'' a'b", "é’é’é’é’é’é’é’é’é’é’ z", "a'b'c'd'e'f'g'h'i'j'k'l", "日'語'".repeat(40) + '日 x', "𠀀'".repeat(40) + '𠀀 y'];
  for (const text of texts) {
    for (const maxWordBytes of [1, 2, 3, 5, 8]) {
      for (const caseSensitive of [false, true]) {
        const s = { tokenizer: 'unicode' as const, caseSensitive, maxWordBytes };
        for (let chunkSize = 1; chunkSize <= 24; chunkSize++) t.deepEqual(counted(utf8(text), s, chunkSize), reference(utf8(text), s), `${text} ${maxWordBytes} ${chunkSize}`);
      }
    }
  }
});

test('whitespace: an overlong token counts once, where its first printable byte is', (t) => {
  const texts = [
    Buffer.concat([Buffer.alloc(50, 1), utf8('a'), Buffer.alloc(30, 0x80), utf8(' b')]),
    Buffer.concat([Buffer.alloc(50, 1), utf8(' b')]),
    Buffer.concat([utf8('Z'), Buffer.alloc(70, 0xff), utf8('Y')]),
    Buffer.concat([utf8('\ufeff'), Buffer.alloc(20, 2), utf8('\ufeffq\n\ufeff')]),
  ];
  for (const bytes of texts) {
    for (const maxWordBytes of [1, 4, 1024]) {
      const s = { tokenizer: 'whitespace' as const, caseSensitive: false, maxWordBytes };
      for (let chunkSize = 1; chunkSize <= 40; chunkSize++) t.deepEqual(counted(bytes, s, chunkSize), reference(bytes, s), `${maxWordBytes} ${chunkSize}`);
    }
  }
});

test('a 5 MB text without whitespace: one overlong word, bounded chunks', (t) => {
  const bytes = new Uint8Array(5 * 1024 * 1024).fill(0x61);
  const chunkSize = 64 * 1024;
  for (const tokenizer of ['unicode', 'whitespace'] as const) {
    const r = countBytes(bytes, { tokenizer, caseSensitive: false, maxWordBytes: 1024, chunkSize });
    t.is(r.totalWords, 1);
    t.is(r.overlongWords, 1);
    t.is(r.uniqueWords, 0);
    t.is(r.bytes, bytes.length);
    t.is(r.tasks, 80);
    let chunks = 0;
    for (const chunk of chunkBytes(bytes, { tokenizer, chunkSize, maxWordBytes: 1024 })) {
      t.true(chunk.body.length <= chunkSize);
      chunks++;
    }
    t.is(chunks, 80);
  }
});

test('words just under, at and over maxWordBytes straddle cuts of every size', (t) => {
  for (const maxWordBytes of [4, 9, 12, 30]) {
    for (const unit of ['x', 'é', '日']) {
      const n = Buffer.byteLength(unit);
      const words = [maxWordBytes - n, maxWordBytes, maxWordBytes + n].map((bytes) => unit.repeat(Math.max(1, Math.floor(bytes / n))));
      const bytes = utf8(Array.from({ length: 12 }, (_, i) => words[i % 3] + (i % 4 === 0 ? "'" + unit : '')).join(' '));
      for (const tokenizer of ['unicode', 'whitespace'] as const) {
        const s = { tokenizer, caseSensitive: false, maxWordBytes };
        for (let chunkSize = 1; chunkSize <= 3 * maxWordBytes + 40; chunkSize++) {
          t.deepEqual(counted(bytes, s, chunkSize), reference(bytes, s), `${tokenizer} ${unit} ${maxWordBytes} ${chunkSize}`);
        }
      }
    }
  }
});

test('a word of exactly maxWordBytes is kept whole even when chunks are much smaller', (t) => {
  const word = 'x'.repeat(1000);
  const bytes = utf8(`${word} ${word}y ${word}`);
  const r = countBytes(bytes, { tokenizer: 'unicode', caseSensitive: false, maxWordBytes: 1000, chunkSize: 16 });
  t.deepEqual(r.counts, [[word, 2]]);
  t.is(r.overlongWords, 1);
  for (const chunk of chunkBytes(bytes, { tokenizer: 'unicode', chunkSize: 16, maxWordBytes: 1000 })) t.true(chunk.body.length <= 1008);
});

test('Chunker rejects bad options', (t) => {
  t.throws(() => new Chunker({ tokenizer: 'unicode', chunkSize: 0, maxWordBytes: 1 }));
  t.throws(() => new Chunker({ tokenizer: 'unicode', chunkSize: 1, maxWordBytes: 0 }));
  t.throws(() => new Chunker({ tokenizer: 'x' as 'unicode', chunkSize: 1, maxWordBytes: 1 }));
});

test('split: streams files into bounded tasks that map/reduce to the reference', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'tally-split-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const a = Buffer.concat([utf8("The quick brown fox's tale. "), Buffer.from([0xff, 0xe3]), utf8('日本語 ' + 'z'.repeat(300) + ' end'.repeat(2000))]);
  const b = utf8('Σίσυφος ΟΔΟΣ the end');
  await writeFile(join(dir, 'a.txt'), a);
  await writeFile(join(dir, 'empty.txt'), '');
  await writeFile(join(dir, 'b.txt'), b);
  const options: CountOptions = {
    inputs: [
      { path: join(dir, 'a.txt'), size: a.length },
      { path: join(dir, 'empty.txt'), size: 0 },
      { path: join(dir, 'b.txt'), size: b.length },
    ],
    tokenizer: 'unicode',
    caseSensitive: false,
    maxWordBytes: 100,
    chunkSize: 1 << 20,
  };
  t.deepEqual(await countKind.plan(options), { totalWeight: a.length + b.length, unit: 'B' });
  const maxBodyBytes = 200;
  const acc = countKind.init(options);
  let tasks = 0;
  let weight = 0;
  const files = new Set<number>();
  for await (const task of countKind.split(options, { maxBodyBytes })) {
    t.true(task.body!.length <= maxBodyBytes);
    t.regex(task.input, /\/(a|b)\.txt bytes \d+-\d+$|\/a\.txt, .*\/b\.txt \(2 files, \d+ bytes\)$/);
    weight += task.weight;
    for (const [file] of (task.spec as { chunks: number[][] }).chunks) files.add(file!);
    countKind.reduce(acc, await countKind.map(JSON.parse(JSON.stringify(task.spec)), task.body!, { working() {} }), tasks++);
  }
  t.deepEqual([...files], [0, 2]);
  t.is(weight, a.length + b.length);
  const result = await countKind.finalize(acc, { job: 'j', tasks }, options);
  const s = { tokenizer: 'unicode' as const, caseSensitive: false, maxWordBytes: 100 };
  const ra = reference(a, s);
  const rb = reference(b, s);
  const merged = new Map<string, number>();
  for (const [w, n] of [...ra.counts, ...rb.counts]) merged.set(w, (merged.get(w) ?? 0) + n);
  t.is(result.files, 3);
  t.is(result.bytes, a.length + b.length);
  t.is(result.totalWords, ra.totalWords + rb.totalWords);
  t.is(result.overlongWords, 1);
  t.deepEqual(result.counts, [...merged].sort((x, y) => y[1] - x[1] || byCodePoints(x[0], y[0])));

  await t.throwsAsync(async () => {
    for await (const _ of countKind.split({ ...options, maxWordBytes: 1000 }, { maxBodyBytes: 1000 })) void _;
  }, { instanceOf: UsageError });
  await t.throwsAsync(async () => {
    for await (const _ of countKind.split({ ...options, inputs: [{ path: join(dir, 'missing.txt'), size: 1 }] }, { maxBodyBytes })) void _;
  }, { message: /missing\.txt: no such file or directory/ });
});
