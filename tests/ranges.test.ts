/**
 * Splits by offset are invisible: a text cut at ANY nominal offsets, each range counted alone by
 * reading its own bytes (and a few after), gives exactly what an independent reference computes
 * on the whole text, as chunking does. And a range reads a bounded number of bytes, however long
 * a word runs.
 */
import test from 'ava';
import fc from 'fast-check';
import { countRange, memorySource, type ByteSource } from '../shared/text/ranges.js';
import { ChunkWords } from '../shared/text/words.js';
import { referenceCount, sortCounts, type ReferenceCount, type ReferenceSettings } from './helpers/reference-counter.js';
import { arbitrarySettings, arbitraryText, utf8 } from './helpers/texts.js';

/** Counts `bytes` as ranges between the given nominal offsets (sorted, within the text). */
function countInRanges(bytes: Uint8Array, settings: ReferenceSettings, offsets: number[]): ReferenceCount & { bytes: number } {
  const points = [0, ...offsets, bytes.length];
  const words = new ChunkWords(settings.caseSensitive, bytes.length);
  const source = memorySource(bytes);
  let total = 0;
  let overlong = 0;
  let counted = 0;
  for (let i = 0; i + 1 < points.length; i++) {
    const range = countRange(source, points[i]!, points[i + 1]!, settings, words);
    total += range.totalWords;
    overlong += range.overlongWords;
    counted += range.bytes;
  }
  const table = new Map<string, number>();
  words.forEach((word, n) => table.set(word, (table.get(word) ?? 0) + n));
  return { totalWords: total, overlongWords: overlong, counts: sortCounts(table), bytes: counted };
}

const withOffsets = arbitraryText.chain((bytes) =>
  fc.tuple(fc.constant(bytes), fc.uniqueArray(fc.integer({ min: 1, max: Math.max(1, bytes.length - 1) }), { maxLength: 40 }).map((a) => a.filter((x) => x < bytes.length).sort((x, y) => x - y))),
);

test('property: ranges cut at any offsets count exactly what the reference counts on the whole text', (t) => {
  fc.assert(
    fc.property(withOffsets, arbitrarySettings, ([bytes, offsets], settings) => {
      const got = countInRanges(bytes, settings, offsets);
      t.is(got.bytes, bytes.length, 'the ranges partition the text');
      const { bytes: _bytes, ...counts } = got;
      t.deepEqual(counts, referenceCount(bytes, settings));
    }),
    { numRuns: 600 },
  );
});

test('property: ranges of every fixed size from 1 to 64 bytes count exactly what the reference counts', (t) => {
  fc.assert(
    fc.property(arbitraryText, arbitrarySettings, fc.integer({ min: 1, max: 64 }), (bytes, settings, size) => {
      const offsets: number[] = [];
      for (let x = size; x < bytes.length; x += size) offsets.push(x);
      const { bytes: _bytes, ...counts } = countInRanges(bytes, settings, offsets);
      t.deepEqual(counts, referenceCount(bytes, settings));
    }),
    { numRuns: 400 },
  );
});

test('words at, under and over maxWordBytes straddle every offset, for both tokenizers', (t) => {
  for (const tokenizer of ['unicode', 'whitespace'] as const) {
    for (const maxWordBytes of [1, 3, 5, 8]) {
      // Whitespace tokens whose only printable byte comes late: the range owning one must read on.
      const text = utf8(`ab abc abcde abcdefgh é${'é'.repeat(6)}x ${'\u00a0'.repeat(9)}q 日本語's l’homme ${'\u0001'.repeat(12)}z`);
      const settings = { tokenizer, caseSensitive: false, maxWordBytes };
      for (let size = 1; size <= 24; size++) {
        const offsets: number[] = [];
        for (let x = size; x < text.length; x += size) offsets.push(x);
        const { bytes: _bytes, ...counts } = countInRanges(text, settings, offsets);
        t.deepEqual(counts, referenceCount(text, settings), `${tokenizer} max ${maxWordBytes} size ${size}`);
      }
    }
  }
});

test('a range reads its own bytes and at most maxWordBytes + 40 more, even inside a 5 MB word', (t) => {
  const text = new Uint8Array(5 * 1024 * 1024).fill(0x61);
  text.set(utf8(' tail words'), text.length - 11);
  let largest = 0;
  const source: ByteSource = {
    size: text.length,
    read(target, position, length) {
      largest = Math.max(largest, length);
      const piece = text.subarray(position, Math.min(text.length, position + length));
      target.set(piece);
      return piece.length;
    },
  };
  for (const tokenizer of ['unicode', 'whitespace'] as const) {
    const settings = { tokenizer, caseSensitive: false, maxWordBytes: 1024 };
    const words = new ChunkWords(false, 0);
    let total = 0;
    let overlong = 0;
    const size = 64 * 1024;
    for (let x = 0; x < text.length; x += size) {
      largest = 0;
      const range = countRange(source, x, Math.min(text.length, x + size), settings, words);
      total += range.totalWords;
      overlong += range.overlongWords;
      t.true(largest <= size + 1024 + 40, `read ${largest} bytes at once`);
    }
    t.is(total, 3, tokenizer);
    t.is(overlong, 1, tokenizer);
  }
});
