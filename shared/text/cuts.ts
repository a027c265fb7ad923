/**
 * Where a text may be cut so that no token spans the cut, decided from a few bytes around it.
 * The coordinator's chunker (chunker.ts) and the workers' offset splits (ranges.ts) cut by
 * these same rules, so both produce pieces whose counts add up to the whole text's.
 *
 * A cut between code points x|y is SAFE when no token spans it:
 *   unicode:    spanned iff W(x)&W(y)  or  W(x)&A(y)&W(z)  or  W(w)&A(x)&W(y)
 *               (W = letter/mark/number, A = apostrophe, w before x, z after y)
 *   whitespace: safe iff x or y is one of the six ASCII whitespace bytes
 * Cuts are only made where no valid multi-byte UTF-8 sequence is split (a CANDIDATE cut). A cut
 * inside an invalid sequence is harmless: both sides then decode to U+FFFD, which separates.
 *
 * Every function reads `buf` in [0, n): `n` is the end of the text (or of what is known of it;
 * then the caller keeps LOOKAHEAD bytes after any cut it asks about), and index 0 is either the
 * text's start or at least HISTORY bytes before any cut asked about.
 */
import { ASCII_CLASS, APOS, SEP, WORD, WHITESPACE_BYTE, classOf, decodeAt, sequenceLength } from './char-classes.js';
import type { Tokenizer } from './chunker.js';

/** Bytes before a cut that deciding it may read: w, up to 8 bytes back. */
export const HISTORY = 16;
/** Bytes after a cut that deciding it may read: y and z, 4 bytes each. */
export const LOOKAHEAD = 16;

/**
 * A cut at t is a candidate unless it falls strictly inside a well-formed multi-byte sequence.
 * Only the nearest non-continuation byte within 3 bytes back can start one.
 */
export function isCandidate(buf: Uint8Array, t: number, n: number): boolean {
  if (t >= n || t <= 0) return true;
  if ((buf[t] & 0xc0) !== 0x80) return true;
  for (let j = t - 1; j >= t - 3 && j >= 0; j--) {
    const b = buf[j];
    if ((b & 0xc0) === 0x80) continue;
    const len = sequenceLength(b);
    if (len <= t - j) return true;
    // The sequence from j reaches past t: t is inside it only if it is well-formed.
    return (decodeAt(buf, j, n) & 7) !== len;
  }
  return true;
}

/** Class of the code point ending at t (SEP if none, or if that byte is part of U+FFFD), and where it starts. */
function classBefore(buf: Uint8Array, t: number): { cls: number; start: number } {
  if (t <= 0) return { cls: SEP, start: t };
  const b = buf[t - 1];
  if (b < 0x80) return { cls: ASCII_CLASS[b], start: t - 1 };
  if ((b & 0xc0) === 0x80) {
    for (let j = t - 2; j >= t - 4 && j >= 0; j--) {
      const lead = buf[j];
      if ((lead & 0xc0) === 0x80) continue;
      const len = sequenceLength(lead);
      if (len === t - j) {
        const d = decodeAt(buf, j, t);
        if ((d & 7) === len) return { cls: classOf(d >>> 3), start: j };
      }
      break;
    }
  }
  return { cls: SEP, start: t - 1 };
}

/** Class and length of the code point starting at t (SEP past the end of the text). */
function classAt(buf: Uint8Array, t: number, n: number): { cls: number; len: number } {
  if (t >= n) return { cls: SEP, len: 1 };
  const d = decodeAt(buf, t, n);
  return { cls: classOf(d >>> 3), len: d & 7 };
}

/** Is the candidate cut at t safe (no token spans it)? Reads up to HISTORY bytes before and LOOKAHEAD after. */
export function isSafeCut(buf: Uint8Array, t: number, n: number, tokenizer: Tokenizer): boolean {
  if (tokenizer === 'whitespace') {
    return t >= n || t <= 0 || WHITESPACE_BYTE[buf[t - 1]] === 1 || WHITESPACE_BYTE[buf[t]] === 1;
  }
  const x = classBefore(buf, t);
  const y = classAt(buf, t, n);
  if (x.cls === SEP || y.cls === SEP) return true;
  if (x.cls === WORD && y.cls === WORD) return false;
  if (x.cls === WORD && y.cls === APOS) return classAt(buf, t + y.len, n).cls !== WORD;
  if (x.cls === APOS && y.cls === WORD) return classBefore(buf, x.start).cls !== WORD;
  return true; // two apostrophes never join anything
}

/** The first safe cut t with from ≤ t ≤ to, or -1. */
export function firstSafeCut(buf: Uint8Array, from: number, to: number, n: number, tokenizer: Tokenizer): number {
  for (let t = from; t <= to; t++) {
    if (isCandidate(buf, t, n) && isSafeCut(buf, t, n, tokenizer)) return t;
  }
  return -1;
}

/** The first candidate cut t ≥ from (at most from + 3, or n). */
export function firstCandidate(buf: Uint8Array, from: number, n: number): number {
  let t = from;
  while (t < n && !isCandidate(buf, t, n)) t++;
  return t;
}
