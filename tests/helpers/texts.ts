/**
 * Generated texts for the property tests of chunking and splitting: words in many scripts,
 * apostrophes, whitespace of every kind, invalid UTF-8, byte order marks, long runs that make
 * overlong words, and random bytes.
 */
import fc from 'fast-check';

export const utf8 = (s: string) => new TextEncoder().encode(s);

export const FRAGMENTS: Uint8Array[] = [
  ...['a', 'B', 'word', 'The', 'THE', '7', "'", '’', 'é', 'Σ', 'ς', '日本', '𝐀', '\u0301', "a'", 'é’', "日'", "𠀀'", '٣’', "''", ' ', '  ', '\t', '\n', '\r\n', '\v', '\f', '.', ',', '-', '"', 'ΟΔΟΣ', '語', '😀', '𠀀', 'क्षि', '\u00a0', '\ufeff', 'İ', 'K', '\u0001'].map(utf8),
  ...[[0x80], [0xbf], [0xc0, 0xaf], [0xf5], [0xff], [0xe3, 0x81], [0xf0, 0x9f, 0x98], [0xed, 0xa0, 0x80], [0xe0, 0x80, 0x80], [0x80, 0x80, 0x80, 0x80, 0x80, 0x80], [0xe2, 0x80], [0xc1, 0xa9], [0xe0, 0x83, 0xa9], [0xf0, 0x80, 0x81, 0x81], [0xf4, 0x90, 0x80, 0x80], [0xed, 0xbf, 0xbf], [0xef, 0xbb, 0xbf]].map((b) => Uint8Array.from(b)),
];
/** Fragments that make long words when repeated (the first 20 above are word-ish). */
export const WORDISH = FRAGMENTS.slice(0, 20);

export const arbitraryText = fc
  .array(
    fc.oneof(
      { weight: 6, arbitrary: fc.constantFrom(...FRAGMENTS) },
      { weight: 2, arbitrary: fc.tuple(fc.constantFrom(...WORDISH), fc.integer({ min: 2, max: 60 })).map(([f, n]) => Buffer.concat(Array(n).fill(f))) },
      { weight: 1, arbitrary: fc.uint8Array({ maxLength: 6 }) },
    ),
    { maxLength: 100 },
  )
  .map((parts) => Buffer.concat(parts))
  .filter((b) => b.length < 2048);

export const arbitrarySettings = fc.record({
  tokenizer: fc.constantFrom<'unicode' | 'whitespace'>('unicode', 'whitespace'),
  caseSensitive: fc.boolean(),
  maxWordBytes: fc.oneof(fc.integer({ min: 1, max: 12 }), fc.constant(1024)),
});

/** Every word of 1 to `maxLength` characters over `alphabet`, shorter ones first. */
export function everyWordOver(alphabet: string[], maxLength: number): string[] {
  const words: string[] = [];
  let level = [''];
  for (let length = 1; length <= maxLength; length++) {
    level = level.flatMap((w) => alphabet.map((c) => w + c));
    words.push(...level);
  }
  return words;
}
