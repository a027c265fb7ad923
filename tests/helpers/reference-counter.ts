/**
 * The count contract read literally, for the tests: whole text in memory, a regex, a Map. Slow
 * and simple on purpose; tally's streaming, chunked, byte-level counter must agree with it.
 */

export type Tokenizer = 'unicode' | 'whitespace';

export interface ReferenceSettings {
  tokenizer: Tokenizer;
  caseSensitive: boolean;
  maxWordBytes: number;
}

export interface ReferenceCount {
  totalWords: number;
  overlongWords: number;
  counts: Array<[string, number]>;
}

const WHITESPACE = new Set([0x20, 0x09, 0x0a, 0x0b, 0x0c, 0x0d]);
const WORD = /[\p{L}\p{M}\p{N}]+(?:['’][\p{L}\p{M}\p{N}]+)*/gu;

/** Code point order (not UTF-16 unit order), as the count contract sorts words. */
export function compareCodePoints(a: string, b: string): number {
  const x = Array.from(a, (c) => c.codePointAt(0)!);
  const y = Array.from(b, (c) => c.codePointAt(0)!);
  for (let i = 0; i < Math.min(x.length, y.length); i++) if (x[i] !== y[i]) return x[i]! - y[i]!;
  return x.length - y.length;
}

/** Sorts [word, count] pairs as the contract does: count descending, then code point order. */
export function sortCounts(counts: Iterable<[string, number]>): Array<[string, number]> {
  return [...counts].sort((a, b) => b[1] - a[1] || compareCodePoints(a[0], b[0]));
}

/** Counts each text (a file) by the contract and adds the results up. */
export function referenceCount(texts: Uint8Array | Uint8Array[], settings: ReferenceSettings): ReferenceCount {
  const map = new Map<string, number>();
  let total = 0;
  let overlong = 0;
  for (const bytes of Array.isArray(texts) ? texts : [texts]) {
    for (const { word, overlong: tooLong } of referenceWords(bytes, settings)) {
      total++;
      if (tooLong) overlong++;
      else map.set(word, (map.get(word) ?? 0) + 1);
    }
  }
  return { totalWords: total, overlongWords: overlong, counts: sortCounts(map) };
}

const DEFAULTS = { caseSensitive: false, maxWordBytes: 1024 };

/** The unicode tokenizer contract over several files. */
export function referenceUnicodeCount(texts: Uint8Array[], options: Partial<Omit<ReferenceSettings, 'tokenizer'>> = {}): ReferenceCount {
  return referenceCount(texts, { ...DEFAULTS, ...options, tokenizer: 'unicode' });
}

/** The whitespace tokenizer contract over several files. */
export function referenceWhitespaceCount(texts: Uint8Array[], options: Partial<Omit<ReferenceSettings, 'tokenizer'>> = {}): ReferenceCount {
  return referenceCount(texts, { ...DEFAULTS, ...options, tokenizer: 'whitespace' });
}

/** A file's words in order, as the contract reads them: folded text, and whether it is overlong. */
export function referenceWords(bytes: Uint8Array, settings: ReferenceSettings): Array<{ word: string; overlong: boolean }> {
  const words: Array<{ word: string; overlong: boolean }> = [];
  const keep = (word: string, byteLength: number) => words.push({ word: settings.caseSensitive ? word : word.toLowerCase(), overlong: byteLength > settings.maxWordBytes });
  if (settings.tokenizer === 'unicode') {
    for (const m of new TextDecoder().decode(bytes).matchAll(WORD)) keep(m[0], Buffer.byteLength(m[0]));
    return words;
  }
  // new TextDecoder() drops a BOM at the start of a file, so it is not part of the text.
  let buf = Buffer.from(bytes);
  if (buf[0] === 0xef && buf[1] === 0xbb && buf[2] === 0xbf) buf = buf.subarray(3);
  let start = 0;
  for (let i = 0; i <= buf.length; i++) {
    if (i < buf.length && !WHITESPACE.has(buf[i]!)) continue;
    const token = buf.subarray(start, i);
    start = i + 1;
    // GNU wc -w in the C locale counts only runs holding a printable ASCII byte.
    if (!token.some((b) => b >= 0x21 && b <= 0x7e)) continue;
    keep(new TextDecoder('utf-8', { ignoreBOM: true }).decode(token), token.length);
  }
  return words;
}

/**
 * Word n-grams by the contract: every run of n consecutive words of one file (n-grams do not
 * cross files), written as its words joined by one space; one holding an overlong word is
 * counted as overlong and not kept.
 */
export function referenceNgrams(texts: Uint8Array[], settings: ReferenceSettings, n: number): ReferenceCount & { words: number } {
  const map = new Map<string, number>();
  let total = 0;
  let overlong = 0;
  let wordCount = 0;
  for (const bytes of texts) {
    const words = referenceWords(bytes, settings);
    wordCount += words.length;
    for (let i = 0; i + n <= words.length; i++) {
      const gram = words.slice(i, i + n);
      total++;
      if (gram.some((w) => w.overlong)) overlong++;
      else {
        const key = gram.map((w) => w.word).join(' ');
        map.set(key, (map.get(key) ?? 0) + 1);
      }
    }
  }
  return { words: wordCount, totalWords: total, overlongWords: overlong, counts: sortCounts(map) };
}
