/**
 * Counting a byte range of a file that the worker reads itself (a split by offset): the
 * coordinator names only [start, end) and reads nothing; where exactly the range begins and ends
 * is decided here, from the bytes, by rules that give every range of a file the same answer at
 * a shared edge. So the ranges of a file partition it, and their counts add up to the file's.
 *
 * The edge at a nominal offset x is the first SAFE cut (cuts.ts: no token spans it) in
 * [x, x + maxWordBytes + WORD_SLACK]. If there is none, one token covers that whole window, so
 * it is longer than maxWordBytes: an overlong word, counted but never kept. The edge is then
 * FORCED at the first code point boundary from x, and flagged as the chunker flags its forced
 * cuts (words.ts counts such edges): the range before ends inside the word, the range after
 * continues it. An overlong word is counted by the range in which it starts (Hadoop's rule for
 * records), never by a range that continues it. For the whitespace tokenizer a token counts only
 * if it holds a printable ASCII byte, which may first appear after the forced edge: the range
 * owning the word then reads on (in small blocks, keeping nothing) until the token ends.
 *
 * A range reads its own bytes plus at most maxWordBytes + 40 after them (and 16 before), except
 * for that rare scan; its memory never depends on the length of a word.
 */
import { WHITESPACE_BYTE, isPrintableAscii } from './char-classes.js';
import { HISTORY, LOOKAHEAD, firstCandidate, firstSafeCut } from './cuts.js';
import { WORD_SLACK } from './chunker.js';
import { tokenizeChunk, type CountSettings, type TokenSink } from './words.js';

/** Random access to the bytes of one file (or of a text in memory, for tests). */
export interface ByteSource {
  /** Total length in bytes. */
  readonly size: number;
  /**
   * Copies bytes [position, position + length) into `target` from index 0; returns how many
   * were copied (fewer only at the end of the source).
   */
  read(target: Uint8Array, position: number, length: number): number;
}

/** A source that ends before its size said: the file shrank while it was read. */
export class SourceShrankError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SourceShrankError';
  }
}

/** What one range contributed; its words went into the table given. */
export interface RangeCount {
  /** Bytes this range counted: the distance between its two edges. */
  bytes: number;
  totalWords: number;
  overlongWords: number;
}

interface Edge {
  at: number;
  /** Forced inside an overlong word. */
  inside: boolean;
}

/** A per-process buffer that range reads go into: the word table copies what it keeps. */
let scratch = new Uint8Array(0);

function buffer(length: number): Uint8Array {
  if (scratch.length < length) scratch = new Uint8Array(Math.max(length, 1024 * 1024));
  return scratch.subarray(0, length);
}

/**
 * Counts the words of the nominal range [start, end) of `source` into `words`.
 * @param source the file's bytes
 * @param start nominal first byte (0 for the file's start)
 * @param end nominal end (the file's size for its last range)
 * @param settings tokenizer, case folding and the overlong limit
 * @param words where the range's tokens go (a word table, for a word count)
 * @throws SourceShrankError when the source ends before its size said (the file shrank while being read)
 */
export function countRange(source: ByteSource, start: number, end: number, settings: CountSettings, words: TokenSink): RangeCount {
  const size = source.size;
  const reach = settings.maxWordBytes + WORD_SLACK;
  const lo = Math.max(0, start - HISTORY);
  const hi = Math.min(size, Math.max(end, start) + reach + LOOKAHEAD);
  const buf = buffer(hi - lo);
  const got = readFully(source, buf, lo);
  if (got < buf.length) throw new SourceShrankError(`it ends at byte ${lo + got}, before its size of ${size} bytes`);
  const n = buf.length;
  const tokenizer = settings.tokenizer;

  const edgeAt = (x: number): Edge => {
    if (x <= 0) return { at: 0, inside: false };
    if (x >= size) return { at: size, inside: false };
    // The window ends at hi: when hi is not the end of the file, LOOKAHEAD bytes past the last
    // cut examined are in the buffer, as isSafeCut needs.
    const t = firstSafeCut(buf, x - lo, Math.min(x + reach, size) - lo, n, tokenizer);
    if (t >= 0) return { at: lo + t, inside: false };
    return { at: lo + firstCandidate(buf, x - lo, n), inside: true };
  };

  const from = edgeAt(start);
  const to = edgeAt(end);
  if (to.at <= from.at) return { bytes: 0, totalWords: 0, overlongWords: 0 };
  const body = buf.subarray(from.at - lo, to.at - lo);
  const edges = { fileStart: from.at === 0, continuesWord: from.inside, endsInsideWord: to.inside, wordCounted: from.inside };
  let { totalWords, overlongWords } = tokenizeChunk(body, settings, edges, words);
  if (tokenizer === 'whitespace' && to.inside && ownsLastToken(body, from.inside) && printableAhead(source, to.at)) {
    totalWords++;
    overlongWords++;
    words.overlong();
  }
  return { bytes: body.length, totalWords, overlongWords };
}

function readFully(source: ByteSource, target: Uint8Array, position: number): number {
  let got = 0;
  while (got < target.length) {
    const n = source.read(target.subarray(got), position + got, target.length - got);
    if (n <= 0) break;
    got += n;
  }
  return got;
}

/**
 * Whitespace tokenizer, a range ending inside an overlong token: true when that token starts
 * in this range (it is not the one the range continues) and its part here holds no printable
 * ASCII byte, so that countChunk did not count it and its rest must be looked at.
 */
function ownsLastToken(body: Uint8Array, continues: boolean): boolean {
  let p = body.length;
  while (p > 0 && WHITESPACE_BYTE[body[p - 1]] === 0) p--;
  if (p === 0 && continues) return false;
  for (let k = p; k < body.length; k++) if (isPrintableAscii(body[k])) return false;
  return true;
}

/** Reads on from `position` until a whitespace byte or the end: is there a printable ASCII byte first? */
function printableAhead(source: ByteSource, position: number): boolean {
  const block = new Uint8Array(64 * 1024);
  for (let at = position; at < source.size; ) {
    const n = source.read(block, at, Math.min(block.length, source.size - at));
    if (n <= 0) return false;
    for (let k = 0; k < n; k++) {
      if (WHITESPACE_BYTE[block[k]] === 1) return false;
      if (isPrintableAscii(block[k])) return true;
    }
    at += n;
  }
  return false;
}

/** A text in memory as a ByteSource (tests, benchmarks). */
export function memorySource(bytes: Uint8Array): ByteSource {
  return {
    size: bytes.length,
    read(target, position, length) {
      const piece = bytes.subarray(position, Math.min(bytes.length, position + length));
      target.set(piece);
      return piece.length;
    },
  };
}
