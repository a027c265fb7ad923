/**
 * Code point classes for the "unicode" tokenizer, and the byte-level UTF-8 facts that the
 * tokenizer and the chunker must agree on exactly.
 *
 * A word is a run of letters, marks and numbers (\p{L}\p{M}\p{N}); a single apostrophe (U+0027
 * or U+2019) between two such runs joins them; every other code point separates. Decoding
 * follows the WHATWG UTF-8 decoder: a well-formed (shortest-form, non-surrogate, ≤ U+10FFFF)
 * sequence is a code point, anything else becomes U+FFFD, which separates. Because the WHATWG
 * decoder re-reads the byte that broke a sequence, an invalid byte never swallows a following
 * ASCII or lead byte, so "which bytes form valid code points" can be decided locally.
 */

/** Separates words: punctuation, spaces, symbols, U+FFFD, end of text. */
export const SEP = 1;
/** Part of a word: \p{L}, \p{M}, \p{N}. */
export const WORD = 2;
/** Joins two word runs when it stands alone between them: ' (U+0027) and ’ (U+2019). */
export const APOS = 3;

export type CharClass = typeof SEP | typeof WORD | typeof APOS;

/** U+FFFD as returned by {@link decodeAt} for an invalid byte: length 1, class SEP. */
export const REPLACEMENT = 0xfffd;

const WORD_RE = /^[\p{L}\p{M}\p{N}]$/u;

/**
 * Class of every code point, filled lazily: 0 = not computed yet. 1.1 MB per process is cheap,
 * and a regex test per distinct code point keeps the table exactly in step with the Unicode
 * version of the running V8 (the same one the tests' reference regex uses).
 */
export const CLASS_TABLE = new Uint8Array(0x110000);

/** Class of each byte below 0x80 (ASCII code point), precomputed for the tokenizer's fast path. */
export const ASCII_CLASS = new Uint8Array(128);

for (let b = 0; b < 128; b++) {
  const cls = classify(b);
  ASCII_CLASS[b] = cls;
  CLASS_TABLE[b] = cls;
}

function classify(cp: number): CharClass {
  if (cp === 0x27 || cp === 0x2019) return APOS;
  // Surrogate code points never come out of a UTF-8 decoder; String.fromCodePoint would
  // produce a lone surrogate, which the regex would treat as "not a letter" anyway.
  if (cp >= 0xd800 && cp <= 0xdfff) return SEP;
  return WORD_RE.test(String.fromCodePoint(cp)) ? WORD : SEP;
}

/** Computes and caches the class of a code point whose table entry is still 0. */
export function fillClass(cp: number): CharClass {
  const cls = classify(cp);
  CLASS_TABLE[cp] = cls;
  return cls;
}

/** The class of a code point (cached). */
export function classOf(cp: number): CharClass {
  const cls = CLASS_TABLE[cp];
  return cls === 0 ? fillClass(cp) : (cls as CharClass);
}

/**
 * Whether toLowerCase changes a code point, filled lazily like {@link CLASS_TABLE}: 0 = not
 * computed yet, 1 = it stays, 2 = it changes. toLowerCase of a word changes nothing when no
 * code point of it changes alone: the one context rule it applies (final sigma) is about Σ,
 * which changes anyway.
 */
const CASE_TABLE = new Uint8Array(0x110000);

/** 1 when toLowerCase leaves the code point as it is, 2 when it changes it (cached). */
export function caseOf(cp: number): 1 | 2 {
  let known = CASE_TABLE[cp];
  if (known === 0) {
    const text = String.fromCodePoint(cp);
    known = CASE_TABLE[cp] = text.toLowerCase() === text ? 1 : 2;
  }
  return known as 1 | 2;
}

/**
 * True when a stored word bytes[start, end) (ASCII letters folded already, unless case is kept)
 * is written as it is: well-formed UTF-8 (a whitespace token need not be) whose code points
 * toLowerCase leaves alone, or any well-formed UTF-8 when case is kept.
 */
export function writtenAsStored(bytes: Uint8Array, start: number, end: number, caseSensitive: boolean): boolean {
  for (let i = start; i < end; ) {
    if (bytes[i] < 0x80) {
      i++;
      continue;
    }
    const d = decodeAt(bytes, i, end);
    const length = d & 7;
    // Ill-formed (a real U+FFFD is 3 bytes long): the decoder's replacement is written instead.
    if (length === 1) return false;
    if (!caseSensitive && caseOf(d >>> 3) !== 1) return false;
    i += length;
  }
  return true;
}

/**
 * Length of the well-formed sequence a lead byte announces: 1 for ASCII, 2–4 for valid leads,
 * 0 for bytes that can never start a well-formed sequence (continuations, C0, C1, F5–FF).
 */
export function sequenceLength(lead: number): number {
  if (lead < 0x80) return 1;
  if (lead < 0xc2) return 0;
  if (lead < 0xe0) return 2;
  if (lead < 0xf0) return 3;
  if (lead < 0xf5) return 4;
  return 0;
}

/**
 * Decodes the code point starting at `i` (which must be < end), assuming the decoder is not in
 * the middle of a sequence there. Returns `(codePoint << 3) | byteLength`; for any ill-formed
 * or truncated sequence returns U+FFFD with length 1: skipping one byte at a time is enough,
 * because continuation bytes can never start a well-formed sequence, so the set of well-formed
 * code points found is exactly the WHATWG decoder's (only the number of U+FFFD differs, and
 * U+FFFD is a separator however many there are).
 */
export function decodeAt(bytes: Uint8Array, i: number, end: number): number {
  const b0 = bytes[i];
  if (b0 < 0x80) return (b0 << 3) | 1;
  if (b0 < 0xc2) return (REPLACEMENT << 3) | 1;
  if (b0 < 0xe0) {
    if (i + 1 >= end) return (REPLACEMENT << 3) | 1;
    const b1 = bytes[i + 1];
    if ((b1 & 0xc0) !== 0x80) return (REPLACEMENT << 3) | 1;
    return ((((b0 & 0x1f) << 6) | (b1 & 0x3f)) << 3) | 2;
  }
  if (b0 < 0xf0) {
    if (i + 2 >= end) return (REPLACEMENT << 3) | 1;
    const b1 = bytes[i + 1];
    const b2 = bytes[i + 2];
    // E0 needs A0..BF (no overlongs), ED needs 80..9F (no surrogates).
    const lo = b0 === 0xe0 ? 0xa0 : 0x80;
    const hi = b0 === 0xed ? 0x9f : 0xbf;
    if (b1 < lo || b1 > hi || (b2 & 0xc0) !== 0x80) return (REPLACEMENT << 3) | 1;
    return ((((b0 & 0x0f) << 12) | ((b1 & 0x3f) << 6) | (b2 & 0x3f)) << 3) | 3;
  }
  if (b0 < 0xf5) {
    if (i + 3 >= end) return (REPLACEMENT << 3) | 1;
    const b1 = bytes[i + 1];
    const b2 = bytes[i + 2];
    const b3 = bytes[i + 3];
    // F0 needs 90..BF (no overlongs), F4 needs 80..8F (nothing above U+10FFFF).
    const lo = b0 === 0xf0 ? 0x90 : 0x80;
    const hi = b0 === 0xf4 ? 0x8f : 0xbf;
    if (b1 < lo || b1 > hi || (b2 & 0xc0) !== 0x80 || (b3 & 0xc0) !== 0x80) return (REPLACEMENT << 3) | 1;
    return ((((b0 & 0x07) << 18) | ((b1 & 0x3f) << 12) | ((b2 & 0x3f) << 6) | (b3 & 0x3f)) << 3) | 4;
  }
  return (REPLACEMENT << 3) | 1;
}

/** The six bytes that separate whitespace tokens (the C locale's isspace): space \t \n \v \f \r. */
export const WHITESPACE_BYTE = new Uint8Array(256);
for (const b of [0x20, 0x09, 0x0a, 0x0b, 0x0c, 0x0d]) WHITESPACE_BYTE[b] = 1;

/** True for the bytes `LC_ALL=C wc -w` needs to see in a token before it counts it: 0x21–0x7E. */
export function isPrintableAscii(b: number): boolean {
  return b >= 0x21 && b <= 0x7e;
}
