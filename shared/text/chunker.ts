/**
 * Cutting a stream of bytes into chunks that workers can count independently, with totals
 * exactly equal to counting the whole stream at once.
 *
 * A cut between code points x|y is SAFE when no token spans it:
 *   unicode:    spanned iff W(x)&W(y)  or  W(x)&A(y)&W(z)  or  W(w)&A(x)&W(y)
 *               (W = letter/mark/number, A = apostrophe, w before x, z after y)
 *   whitespace: safe iff x or y is one of the six ASCII whitespace bytes
 * Cuts are only ever made where no valid multi-byte UTF-8 sequence is split. A cut inside an
 * invalid sequence is harmless: both sides then decode to U+FFFD there, and U+FFFD separates.
 * Every decision below is taken from a few bytes around the cut (see `isCandidate`,
 * `isSafeCut`), never by decoding the whole chunk, so the coordinator stays cheap.
 *
 * Choosing the end of a chunk that starts at c, aiming for e = c + chunkSize:
 *  1. the last safe cut in (c, e], looking back at most maxWordBytes + 16 bytes;
 *  2. if there is none and the look-back reached c, the chunk lies inside one token. If that
 *     token started at c (it does when c was a safe cut) it may still be short enough to be
 *     kept: look forward for its end up to c + maxWordBytes + 8 and cut there;
 *  3. otherwise the token is certainly longer than maxWordBytes (overlong): cut anyway, at a
 *     code point boundary at or before e, and FLAG the cut: this chunk `endsInsideWord`, the
 *     next `continuesWord`. Such a word is not kept in the table, only counted, so the workers
 *     need only agree on counting it exactly once (see words.ts for the worker's side).
 *
 * `wordCounted` tells the next chunk whether the flagged word has already been counted. For
 * the unicode tokenizer the chunk that ends inside a word always holds a letter of it, so the
 * word is always counted there and `wordCounted` is always true on continuation chunks. For
 * the whitespace tokenizer a token only counts if it holds a printable ASCII byte, which may
 * first appear in any later piece, so the chunker tracks whether one has been seen.
 *
 * Why the totals are exact. Tokens are intervals of the decoded text, and whether one spans a
 * cut depends only on w x | y z, which `isSafeCut` reads from the bytes around the cut:
 *  - at a safe cut no token is split, and tokenizing each side alone finds exactly the whole
 *    text's tokens on that side (an edge adds no context a token could join across);
 *  - a flagged cut is always spanned (every candidate in the searched range failed), and the
 *    word spanning it is overlong. The chunk before sees the word's head as its last token,
 *    possibly followed by one dangling apostrophe ("…abc'|def"); the chunk after sees the
 *    word's tail as its first token, possibly after one ("…abc|'def"). An apostrophe never
 *    starts or ends a token, so nothing else can sit between the cut and those tokens. A chunk
 *    strictly inside the word has it as both first and last token, or has no token at all (a
 *    lone apostrophe between two cuts);
 *  - the worker counts the word in the first chunk whose piece of it qualifies, which is what
 *    `wordCounted` tracks; so each overlong word counts exactly once.
 * The property tests in tests/chunker.test.ts check all of this against a whole-text reference
 * for chunk sizes down to 1 byte.
 *
 * Bodies never exceed max(chunkSize, maxWordBytes + 8) bytes. With a chunkSize smaller than a
 * character, the chunk grows to the first character boundary (at most 4 bytes).
 */
import { WHITESPACE_BYTE, isPrintableAscii } from './char-classes.js';
import { isCandidate, isSafeCut } from './cuts.js';

/** How words are delimited. */
export type Tokenizer = 'unicode' | 'whitespace';

/** Extra bytes a chunk may exceed maxWordBytes by, so that any keepable word fits in one chunk. */
export const WORD_SLACK = 8;

export interface ChunkOptions {
  tokenizer: Tokenizer;
  /** Target body size in bytes (≥ 1). */
  chunkSize: number;
  /** Words longer than this (in UTF-8 bytes) are counted but not kept (≥ 1). */
  maxWordBytes: number;
}

/** One chunk of a stream and what a worker needs to know about its edges. */
export interface Chunk {
  /** The chunk's bytes; a fresh copy that the consumer owns. */
  body: Uint8Array;
  /** Offset of body[0] in the stream. */
  start: number;
  /** The first token is the tail of an overlong word that began in an earlier chunk. */
  continuesWord: boolean;
  /** The last token is the head of an overlong word that continues in the next chunk. */
  endsInsideWord: boolean;
  /** With continuesWord: the word that continues here has already been counted. */
  wordCounted: boolean;
}

/** Largest body a chunk can have with these options. */
export function maxChunkBody(options: Pick<ChunkOptions, 'chunkSize' | 'maxWordBytes'>): number {
  return Math.max(options.chunkSize, options.maxWordBytes + WORD_SLACK);
}

/** Bytes kept before the chunk start so that w (up to 8 bytes back) can be decoded. */
const HISTORY = 16;
/** Bytes needed after the furthest cut examined: y and z, 4 bytes each. */
const LOOKAHEAD = 16;
/** First look-back window; a safe cut is nearly always within a few bytes. */
const NEAR_WINDOW = 64;

/**
 * Incremental chunker: `push` bytes as they arrive, `finish` at end of stream. Memory is
 * bounded by about twice the largest chunk body plus one pushed piece at a time.
 */
export class Chunker {
  private readonly tokenizer: Tokenizer;
  private readonly chunkSize: number;
  private readonly maxWordBytes: number;
  private readonly maxBody: number;
  private buf: Uint8Array;
  /** Valid bytes in buf. */
  private len = 0;
  /** Stream offset of buf[0]. */
  private base = 0;
  /** Start of the next chunk, as an index into buf. */
  private c = 0;
  private continuing = false;
  private counted = false;
  private finished = false;

  constructor(options: ChunkOptions) {
    const { tokenizer, chunkSize, maxWordBytes } = options;
    if (tokenizer !== 'unicode' && tokenizer !== 'whitespace') throw new RangeError(`unknown tokenizer ${String(tokenizer)}`);
    if (!Number.isSafeInteger(chunkSize) || chunkSize < 1) throw new RangeError(`chunkSize must be a positive integer, got ${chunkSize}`);
    if (!Number.isSafeInteger(maxWordBytes) || maxWordBytes < 1) throw new RangeError(`maxWordBytes must be a positive integer, got ${maxWordBytes}`);
    this.tokenizer = tokenizer;
    this.chunkSize = chunkSize;
    this.maxWordBytes = maxWordBytes;
    this.maxBody = maxChunkBody(options);
    // No minimum size on purpose: with small chunks the buffer compacts often, which the
    // property tests then exercise (history bytes, offsets) on short texts.
    this.buf = new Uint8Array(2 * (this.maxBody + HISTORY + LOOKAHEAD));
  }

  /** Adds bytes from the stream; returns the chunks that became decidable. */
  push(data: Uint8Array): Chunk[] {
    if (this.finished) throw new Error('Chunker.push after finish');
    const out: Chunk[] = [];
    let offset = 0;
    while (offset < data.length) {
      if (this.len === this.buf.length) this.compact();
      const take = Math.min(this.buf.length - this.len, data.length - offset);
      this.buf.set(data.subarray(offset, offset + take), this.len);
      this.len += take;
      offset += take;
      while (this.len - this.c >= this.maxBody + LOOKAHEAD) out.push(this.next(false));
    }
    return out;
  }

  /** Ends the stream; returns the remaining chunks. */
  finish(): Chunk[] {
    if (this.finished) return [];
    this.finished = true;
    const out: Chunk[] = [];
    while (this.c < this.len) out.push(this.next(true));
    return out;
  }

  /** Drops consumed bytes, keeping HISTORY bytes before the chunk start. */
  private compact(): void {
    const keep = Math.min(this.c, HISTORY);
    const from = this.c - keep;
    this.buf.copyWithin(0, from, this.len);
    this.len -= from;
    this.base += from;
    this.c = keep;
  }

  /** Decides and emits the chunk starting at this.c. */
  private next(eof: boolean): Chunk {
    const c = this.c;
    const n = this.len;
    let end: number;
    let endsInside = false;
    if (eof && n - c <= this.chunkSize) {
      end = n;
    } else {
      const first = this.nextCandidate(c, n);
      const e = Math.max(c + this.chunkSize, first);
      const reach = Math.max(c, e - (this.maxWordBytes + 16));
      const near = Math.max(c, e - NEAR_WINDOW);
      let t = this.lastSafe(near, e, n);
      if (t < 0 && near > reach) t = this.lastSafe(reach, near, n);
      if (t >= 0) {
        end = t;
      } else {
        // Every cut in (reach, e] is spanned. If reach > c, one token covers more than
        // maxWordBytes + 9 bytes of the window: overlong. If reach == c and c was a safe cut,
        // the token starts at c and its end may still be near enough to keep it whole.
        if (reach === c && !this.continuing) t = this.firstSafe(e, Math.min(c + this.maxWordBytes + WORD_SLACK, n), n);
        if (t >= 0) {
          end = t;
        } else {
          end = this.lastCandidateAtOrBefore(e, c, n);
          endsInside = true;
        }
      }
    }
    const chunk: Chunk = {
      body: this.buf.slice(c, end),
      start: this.base + c,
      continuesWord: this.continuing,
      endsInsideWord: endsInside,
      wordCounted: this.continuing && this.counted,
    };
    if (endsInside) {
      this.counted = this.tokenizer === 'unicode' ? true : this.countedAfter(c, end);
      this.continuing = true;
    } else {
      this.continuing = false;
      this.counted = false;
    }
    this.c = end;
    return chunk;
  }

  /**
   * Whitespace tokenizer, cutting inside a token at `end`: has the token been counted by the
   * time the next chunk starts? It has if its part before `end` holds a printable ASCII byte,
   * or if it began before this chunk and had been counted already.
   */
  private countedAfter(c: number, end: number): boolean {
    const buf = this.buf;
    let p = end - 1;
    let printable = false;
    while (p >= c && WHITESPACE_BYTE[buf[p]] === 0) {
      if (isPrintableAscii(buf[p])) printable = true;
      p--;
    }
    if (p < c && this.continuing) return this.counted || printable;
    return printable;
  }

  /** Last safe cut t with lo < t ≤ hi, or -1. */
  private lastSafe(lo: number, hi: number, n: number): number {
    for (let t = hi; t > lo; t--) {
      if (this.isCandidate(t, n) && this.isSafeCut(t, n)) return t;
    }
    return -1;
  }

  /** First safe cut t with lo < t ≤ hi, or -1. The end of the stream (t = n at EOF) counts as safe. */
  private firstSafe(lo: number, hi: number, n: number): number {
    for (let t = lo + 1; t <= hi; t++) {
      if (this.isCandidate(t, n) && this.isSafeCut(t, n)) return t;
    }
    return -1;
  }

  /** Smallest candidate cut after c (at most c + 4). */
  private nextCandidate(c: number, n: number): number {
    let t = c + 1;
    while (t < n && !this.isCandidate(t, n)) t++;
    return t;
  }

  /** Largest candidate cut in (c, e], or the smallest one after c if there is none. */
  private lastCandidateAtOrBefore(e: number, c: number, n: number): number {
    for (let t = e; t > c; t--) if (this.isCandidate(t, n)) return t;
    return this.nextCandidate(c, n);
  }

  private isCandidate(t: number, n: number): boolean {
    return isCandidate(this.buf, t, n);
  }

  private isSafeCut(t: number, n: number): boolean {
    return isSafeCut(this.buf, t, n, this.tokenizer);
  }
}

/**
 * Cuts an in-memory text into chunks (see the module comment for the rules).
 * @param bytes the whole text
 * @param options tokenizer, target chunk size and the overlong-word limit
 */
export function* chunkBytes(bytes: Uint8Array, options: ChunkOptions): Generator<Chunk> {
  const chunker = new Chunker(options);
  // Push in pieces so the chunker's buffer stays bounded even for a huge in-memory text.
  const piece = Math.max(maxChunkBody(options), 64 * 1024);
  for (let i = 0; i < bytes.length; i += piece) yield* chunker.push(bytes.subarray(i, i + piece));
  yield* chunker.finish();
}

/**
 * Cuts a byte stream into chunks as it arrives, with bounded memory.
 * @param source any async iterable of byte pieces (a file read stream, process.stdin, ...)
 * @param options tokenizer, target chunk size and the overlong-word limit
 */
export async function* chunkStream(source: AsyncIterable<Uint8Array>, options: ChunkOptions): AsyncGenerator<Chunk> {
  const chunker = new Chunker(options);
  for await (const piece of source) yield* chunker.push(piece);
  yield* chunker.finish();
}
