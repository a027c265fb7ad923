/**
 * Sorted parts: one reducer's words, in the order the count result prints them, as a stream of
 * UTF-8 lines that a k-way merge can read back in bounded memory.
 *
 * Format (UTF-8 text):
 *   tally-part 1\n
 *   <word>\t<count>\n          × one line per distinct word
 * Lines are ordered by count descending, then by the word's UTF-8 bytes ascending (memcmp;
 * for valid UTF-8 that is Unicode code point order, the order of compareCodePoints). Words are
 * final (folded), non-empty, valid UTF-8 without \t or \n; counts are decimal integers from 1
 * to 2^53 - 1 without leading zeros. A word appears once in a part. The header is line 1.
 *
 * Sorting (sortColumns): words are bucketed by count (a counting sort; counts too big for its
 * histogram are ranked apart), then each bucket is sorted by bytes: an MSD radix sort over
 * 4-byte digits read from the table's arena, each digit sorted by LSD byte passes over typed
 * arrays (a big range split on its top 16 bits first, to work in the cache). No string is
 * made per word, and comparisons only sort ranges of at most 24 words. 10 million distinct
 * words: ~2 s, against ~8 s for Array.prototype.sort with compareCodePoints.
 */
import { isUtf8 } from 'node:buffer';
import { BATCH_FLAGS, CHECKED, COMPARABLE, batchesOf, rowsOf, type PartRow } from './row-batches.js';
import { compareCodePoints } from './words.js';
import { decimalDigits, writeDecimal, type WordColumns, type WordTable } from './word-table.js';

export { batchesOf, type PartRow };

/** First line of a sorted part. */
export const PART_HEADER = 'tally-part 1';
/** The header line that starts every part, as bytes. */
export const PART_HEADER_LINE = new TextEncoder().encode(`${PART_HEADER}\n`);

/** Default size of the pieces a part is encoded in (8 MiB). */
export const PART_PIECE_BYTES = 8 * 1024 * 1024;

/**
 * Longest word a part may hold (1 MiB, count's largest maxWordBytes): readPart refuses longer
 * lines, so that a part without newlines cannot make it hold more than one line.
 */
export const PART_MAX_WORD_BYTES = 1024 * 1024;

/** A table's words in part order: see {@link sortColumns}. */
export interface SortedWords {
  /** The words' bytes (the table's arena). */
  arena: Uint8Array;
  /** Arena offset of each word, in part order. */
  starts: Int32Array;
  /** Byte length of each word, in part order. */
  lengths: Int32Array;
  /**
   * Runs of one count, in order: run r is words [runEnds[r - 1] (0 for the first), runEnds[r])
   * and their count is runCounts[r].
   */
  runEnds: Int32Array;
  runCounts: Float64Array;
}

/** Ranges at most this long are sorted by insertion (byte comparisons) rather than by radix. */
const INSERTION_LIMIT = 24;
/** Ranges at least this long are first split on 16 bits of their keys (MSD), then LSD. */
const MSD_MIN = 1 << 16;

/**
 * Sorts a table's words by count descending, then bytes ascending.
 * @param columns the table's words (WordTable.columns())
 */
export function sortColumns(columns: WordColumns): SortedWords {
  const { arena, counts } = columns;
  const n = counts.length;
  // 1. Bucket by count. Counts below `small` are counted in a histogram; larger ones (few: a
  // word with count c needs c occurrences) are ranked by sorting their distinct values.
  const small = Math.max(256, Math.min(65536, n + 1));
  const at = new Int32Array(small);
  let large = 0;
  for (let i = 0; i < n; i++) {
    const c = counts[i];
    if (c < small) at[c]++;
    else large++;
  }
  let big = new Float64Array(0);
  if (large > 0) {
    const values = new Float64Array(large);
    let k = 0;
    for (let i = 0; i < n; i++) if (counts[i] >= small) values[k++] = counts[i];
    values.sort();
    // Distinct values, descending.
    let d = 0;
    for (let i = 0; i < large; i++) if (d === 0 || values[i] !== values[d - 1]) values[d++] = values[i];
    big = values.slice(0, d).reverse();
  }
  let runs = big.length;
  for (let c = 0; c < small; c++) if (at[c] > 0) runs++;
  const runEnds = new Int32Array(runs);
  const runCounts = new Float64Array(runs);
  // Starts of the big counts' runs, then the histogram turned into the small counts' starts.
  const bigAt = new Int32Array(big.length);
  if (large > 0) {
    for (let i = 0; i < n; i++) if (counts[i] >= small) bigAt[rankOf(big, counts[i])]++;
  }
  let r = 0;
  let pos = 0;
  for (let k = 0; k < big.length; k++) {
    const size = bigAt[k];
    bigAt[k] = pos;
    pos += size;
    runCounts[r] = big[k];
    runEnds[r++] = pos;
  }
  for (let c = small - 1; c >= 0; c--) {
    const size = at[c];
    if (size === 0) continue;
    at[c] = pos;
    pos += size;
    runCounts[r] = c;
    runEnds[r++] = pos;
  }
  // The words' offsets and lengths travel together from here on: each round of the sort then
  // reads one scattered place (the word's bytes), not three.
  const starts = new Int32Array(n);
  const lengths = new Int32Array(n);
  const { starts: from, lengths: sizes } = columns;
  for (let i = 0; i < n; i++) {
    const c = counts[i];
    const j = c < small ? at[c]++ : bigAt[rankOf(big, c)]++;
    starts[j] = from[i];
    lengths[j] = sizes[i];
  }
  // 2. Sort each run by bytes.
  const sorter = new ByteSorter(arena, starts, lengths);
  let lo = 0;
  for (let k = 0; k < runs; k++) {
    const hi = runEnds[k];
    if (hi - lo > 1) sorter.sort(lo, hi);
    lo = hi;
  }
  return { arena, starts, lengths, runEnds, runCounts };
}

/** Index of `c` in `values` (distinct, descending). */
function rankOf(values: Float64Array, c: number): number {
  let lo = 0;
  let hi = values.length - 1;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (values[mid] > c) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/**
 * Sorts ranges of words (arena offsets and lengths, moved together) by their bytes. A range
 * whose words share their first `depth` bytes is sorted on the next 4 bytes (a 32-bit key,
 * zero-padded past a word's end) by an LSD radix sort; words with equal keys are then told
 * apart: those that end within the 4 bytes are prefixes of the others (shorter first), and the
 * rest go round again 4 bytes deeper. An explicit stack, not recursion: a long shared prefix
 * is many rounds.
 */
class ByteSorter {
  private keys = new Uint32Array(0);
  private spareKeys = new Uint32Array(0);
  private spareStarts = new Int32Array(0);
  private spareLengths = new Int32Array(0);
  private readonly histogram = new Int32Array(1024);
  private top16: Int32Array | undefined;
  private readonly stack: number[] = [];

  constructor(
    private readonly arena: Uint8Array,
    private readonly starts: Int32Array,
    private readonly lengths: Int32Array,
  ) {}

  /** Sorts words [lo, hi). */
  sort(lo: number, hi: number): void {
    const n = hi - lo;
    if (n <= INSERTION_LIMIT) {
      this.insertionSort(lo, hi, 0);
      return;
    }
    if (this.keys.length < n) {
      // Scratch, indexed from `lo` of the top-level range.
      this.keys = new Uint32Array(n);
      this.spareKeys = new Uint32Array(n);
      this.spareStarts = new Int32Array(n);
      this.spareLengths = new Int32Array(n);
    }
    const stack = this.stack;
    stack.push(lo, hi, 0);
    while (stack.length > 0) {
      const depth = stack.pop()!;
      const b = stack.pop()!;
      const a = stack.pop()!;
      this.round(a, b, depth, a - lo);
    }
  }

  /**
   * One round: sorts words [a, b) on bytes [depth, depth + 4), then settles or stacks ties.
   * Their keys and scratch are at [k0, k0 + b - a).
   */
  private round(a: number, b: number, depth: number, k0: number): void {
    const { arena, starts, lengths, keys } = this;
    const n = b - a;
    for (let i = 0; i < n; i++) {
      const s = starts[a + i] + depth;
      const m = lengths[a + i] - depth;
      let key: number;
      if (m >= 4) key = ((arena[s] << 24) | (arena[s + 1] << 16) | (arena[s + 2] << 8) | arena[s + 3]) >>> 0;
      else if (m === 3) key = ((arena[s] << 24) | (arena[s + 1] << 16) | (arena[s + 2] << 8)) >>> 0;
      else if (m === 2) key = ((arena[s] << 24) | (arena[s + 1] << 16)) >>> 0;
      else if (m === 1) key = (arena[s] << 24) >>> 0;
      else key = 0;
      keys[k0 + i] = key;
    }
    if (n < MSD_MIN) this.lsd(a, n, k0, 4);
    else this.msd(a, n, k0);
    // Ties: equal keys.
    for (let i = 0; i < n; ) {
      const key = keys[k0 + i];
      let j = i + 1;
      while (j < n && keys[k0 + j] === key) j++;
      if (j - i > 1) this.settle(a + i, a + j, depth);
      i = j;
    }
  }

  /**
   * Sorts a big range, words [a, a + n) with keys at [k0, k0 + n): first split on the top 16
   * bits of the keys, so that the rest of the work is on pieces that fit in the cache, then
   * each piece on the low 16 bits.
   */
  private msd(a: number, n: number, k0: number): void {
    const { starts, lengths, keys } = this;
    const at = (this.top16 ??= new Int32Array(65536));
    at.fill(0);
    for (let i = 0; i < n; i++) at[keys[k0 + i] >>> 16]++;
    if (at[keys[k0] >>> 16] === n) {
      // One value (words sharing a long prefix): nothing to split.
      this.lsd(a, n, k0, 2);
      return;
    }
    let sum = 0;
    for (let d = 0; d < 65536; d++) {
      const size = at[d];
      at[d] = sum;
      sum += size;
    }
    const { spareStarts, spareLengths, spareKeys } = this;
    for (let i = 0; i < n; i++) {
      const key = keys[k0 + i];
      const j = k0 + at[key >>> 16]++;
      spareStarts[j] = starts[a + i];
      spareLengths[j] = lengths[a + i];
      spareKeys[j] = key;
    }
    starts.set(spareStarts.subarray(k0, k0 + n), a);
    lengths.set(spareLengths.subarray(k0, k0 + n), a);
    keys.set(spareKeys.subarray(k0, k0 + n), k0);
    // at[d] is now the end of piece d.
    for (let d = 0, lo = 0; d < 65536; d++) {
      const hi = at[d];
      if (hi - lo > 1) this.lsd(a + lo, hi - lo, k0 + lo, 2);
      lo = hi;
    }
  }

  /**
   * Sorts words [a, a + n) with keys at [k0, k0 + n) on the low `bytes` bytes of their keys:
   * an insertion sort when few, else one stable pass per byte (least significant first),
   * skipping bytes that are the same in every key. Data and keys end where they started.
   */
  private lsd(a: number, n: number, k0: number, bytes: number): void {
    const { starts, lengths, keys, histogram: counts } = this;
    if (n <= INSERTION_LIMIT) {
      for (let i = 1; i < n; i++) {
        const key = keys[k0 + i];
        const start = starts[a + i];
        const len = lengths[a + i];
        let j = i;
        for (; j > 0 && keys[k0 + j - 1] > key; j--) {
          keys[k0 + j] = keys[k0 + j - 1];
          starts[a + j] = starts[a + j - 1];
          lengths[a + j] = lengths[a + j - 1];
        }
        keys[k0 + j] = key;
        starts[a + j] = start;
        lengths[a + j] = len;
      }
      return;
    }
    counts.fill(0, 0, bytes * 256);
    for (let i = 0; i < n; i++) {
      const key = keys[k0 + i];
      counts[key & 0xff]++;
      counts[256 + ((key >>> 8) & 0xff)]++;
      if (bytes > 2) {
        counts[512 + ((key >>> 16) & 0xff)]++;
        counts[768 + (key >>> 24)]++;
      }
    }
    // Data moves between (starts, lengths, keys) at [a | k0, + n) and the spares at [k0, + n).
    let srcS: Int32Array = starts;
    let srcL: Int32Array = lengths;
    let srcK: Uint32Array = keys;
    let dstS: Int32Array = this.spareStarts;
    let dstL: Int32Array = this.spareLengths;
    let dstK: Uint32Array = this.spareKeys;
    let srcOff = a;
    let dstOff = k0;
    for (let pass = 0; pass < bytes; pass++) {
      const h = pass * 256;
      const shift = pass * 8;
      let single = false;
      for (let d = 0; d < 256; d++) {
        const size = counts[h + d];
        if (size === 0) continue;
        single = size === n;
        break;
      }
      if (single) continue;
      let sum = dstOff;
      for (let d = 0; d < 256; d++) {
        const size = counts[h + d];
        counts[h + d] = sum;
        sum += size;
      }
      const srcKeys = srcK === keys ? k0 - srcOff : 0;
      const dstKeys = dstK === keys ? k0 - dstOff : 0;
      for (let i = srcOff, end = srcOff + n; i < end; i++) {
        const key = srcK[i + srcKeys];
        const j = counts[h + ((key >>> shift) & 0xff)]++;
        dstS[j] = srcS[i];
        dstL[j] = srcL[i];
        dstK[j + dstKeys] = key;
      }
      let t = srcS;
      srcS = dstS;
      dstS = t;
      t = srcL;
      srcL = dstL;
      dstL = t;
      const tk = srcK;
      srcK = dstK;
      dstK = tk;
      const o = srcOff;
      srcOff = dstOff;
      dstOff = o;
    }
    if (srcS !== starts) {
      starts.set(srcS.subarray(srcOff, srcOff + n), a);
      lengths.set(srcL.subarray(srcOff, srcOff + n), a);
      keys.set(srcK.subarray(srcOff, srcOff + n), k0);
    }
  }

  /**
   * Words [a, b) have equal keys at `depth`: those that end within the key are prefixes of
   * each other and of the rest, so they go first, shortest first; the rest are sorted deeper,
   * from the first byte where they differ (words sharing a long prefix, such as URLs, would
   * take a round per 4 bytes of it; finding it stops at the first word that differs early).
   */
  private settle(a: number, b: number, depth: number): void {
    const { arena, starts, lengths } = this;
    let p = a;
    for (let i = a; i < b; i++) {
      const len = lengths[i];
      if (len - depth > 4) continue;
      const start = starts[i];
      // Insert the word among the short ones so far (at most 4 of them: one per length).
      starts[i] = starts[p];
      lengths[i] = lengths[p];
      let q = p++;
      while (q > a && lengths[q - 1] > len) {
        starts[q] = starts[q - 1];
        lengths[q] = lengths[q - 1];
        q--;
      }
      starts[q] = start;
      lengths[q] = len;
    }
    if (b - p <= 1) return;
    let next = depth + 4;
    if (b - p <= INSERTION_LIMIT) {
      this.insertionSort(p, b, next);
      return;
    }
    const first = starts[p] + next;
    let shared = lengths[p] - next;
    for (let i = p + 1; i < b && shared > 0; i++) {
      const s = starts[i] + next;
      const m = Math.min(shared, lengths[i] - next);
      let k = 0;
      while (k < m && arena[first + k] === arena[s + k]) k++;
      shared = k;
    }
    this.stack.push(p, b, next + shared);
  }

  /** Insertion sort of words [a, b), which share their first `depth` bytes. */
  private insertionSort(a: number, b: number, depth: number): void {
    const { arena, starts, lengths } = this;
    for (let i = a + 1; i < b; i++) {
      const start = starts[i];
      const len = lengths[i];
      let j = i;
      while (j > a && compareBytes(arena, starts[j - 1], lengths[j - 1], start, len, depth) > 0) {
        starts[j] = starts[j - 1];
        lengths[j] = lengths[j - 1];
        j--;
      }
      starts[j] = start;
      lengths[j] = len;
    }
  }
}

/** memcmp order of two words of the arena from byte `depth` on, then shorter first. */
function compareBytes(arena: Uint8Array, sx: number, lx: number, sy: number, ly: number, depth: number): number {
  const m = Math.min(lx, ly);
  for (let k = depth; k < m; k++) {
    const d = arena[sx + k] - arena[sy + k];
    if (d !== 0) return d;
  }
  return lx - ly;
}

/** A table's words sorted, ready to be written out as a part: see {@link sortPart}. */
export interface SortedPart {
  /** Distinct words (lines after the header). */
  readonly words: number;
  /** Byte length of the whole part, header included. */
  readonly bytes: number;
  /** The first rows of the part (as many as asked for, or all if fewer), decoded. */
  readonly top: [string, number][];
  /**
   * Encodes the part, lazily: UTF-8 pieces that hold whole lines, each at most `pieceBytes`
   * long unless one line is longer (it then has a piece to itself). Each piece is a new array
   * that the caller may keep; the part is only ever `pieceBytes` (plus a line) ahead of the
   * caller. May be called again for a second copy, as long as the table is not changed.
   */
  pieces(): Generator<Uint8Array, void, undefined>;
}

/** Options of {@link sortPart}. */
export interface SortPartOptions {
  /** Rows to decode into `top`; default 0. */
  top?: number;
  /** Size of the pieces; default {@link PART_PIECE_BYTES}. */
  pieceBytes?: number;
}

/**
 * Sorts a table's words into a part (count descending, then bytes ascending). The table's
 * words must be final: folded, valid UTF-8, without \t or \n (as the coordinator's and
 * reducers' tables are: they are made from checked partials).
 * @param table the words; not to be changed until the part's pieces have been taken
 * @returns the part's size and first rows now, its bytes on demand
 */
export function sortPart(table: WordTable, options: SortPartOptions = {}): SortedPart {
  return sortedPartOf(table.columns(), options);
}

/**
 * A part whose lines are written already, in part order behind its header (a reducer's table
 * held in WebAssembly writes them there: shared/text/partition-table.ts), as a SortedPart: its
 * pieces are cut at line ends.
 * @param written the part's words, its bytes (header and lines) and its first rows, decoded
 */
export function writtenPart(written: { words: number; bytes: Uint8Array; top: [string, number][] }, options: SortPartOptions = {}): SortedPart {
  const pieceBytes = options.pieceBytes ?? PART_PIECE_BYTES;
  if (!Number.isSafeInteger(pieceBytes) || pieceBytes < 1) throw new RangeError(`sortPart: pieceBytes must be a positive integer, got ${pieceBytes}`);
  const { words, bytes, top } = written;
  function* pieces(): Generator<Uint8Array, void, undefined> {
    for (let at = 0; at < bytes.length; ) {
      // The last line end within pieceBytes, else the end of the line that is longer.
      let end = at + pieceBytes >= bytes.length ? bytes.length : bytes.lastIndexOf(0x0a, at + pieceBytes - 1) + 1;
      if (end <= at) end = bytes.indexOf(0x0a, at) + 1 || bytes.length;
      yield bytes.slice(at, end);
      at = end;
    }
  }
  return { words, bytes: bytes.length, top, pieces };
}

/** {@link sortPart} of a table's columns. */
export function sortedPartOf(columns: WordColumns, options: SortPartOptions = {}): SortedPart {
  const topRows = options.top ?? 0;
  const pieceBytes = options.pieceBytes ?? PART_PIECE_BYTES;
  if (!Number.isSafeInteger(topRows) || topRows < 0) throw new RangeError(`sortPart: top must be a non-negative integer, got ${topRows}`);
  if (!Number.isSafeInteger(pieceBytes) || pieceBytes < 1) throw new RangeError(`sortPart: pieceBytes must be a positive integer, got ${pieceBytes}`);
  const { arena, starts, lengths, runEnds, runCounts } = sortColumns(columns);
  const n = starts.length;
  let bytes = PART_HEADER_LINE.length + 2 * n;
  for (let i = 0; i < n; i++) bytes += lengths[i];
  for (let r = 0, lo = 0; r < runEnds.length; lo = runEnds[r++]) bytes += (runEnds[r] - lo) * decimalDigits(runCounts[r]);
  const text = Buffer.from(arena.buffer, arena.byteOffset, arena.byteLength);
  const top: [string, number][] = [];
  for (let r = 0, i = 0; r < runEnds.length && i < topRows; r++) {
    for (; i < runEnds[r] && i < topRows; i++) {
      top.push([text.toString('utf8', starts[i], starts[i] + lengths[i]), runCounts[r]]);
    }
  }
  function* pieces(): Generator<Uint8Array, void, undefined> {
    let left = bytes;
    let piece = new Uint8Array(Math.max(PART_HEADER_LINE.length, Math.min(pieceBytes, left)));
    piece.set(PART_HEADER_LINE);
    let p = PART_HEADER_LINE.length;
    const digits = new Uint8Array(16);
    for (let r = 0, i = 0; r < runEnds.length; r++) {
      const end = runEnds[r];
      const d = writeDecimal(digits, 0, runCounts[r]);
      for (; i < end; i++) {
        const len = lengths[i];
        const need = len + d + 2;
        if (p + need > piece.length) {
          yield p === piece.length ? piece : piece.subarray(0, p);
          left -= p;
          piece = new Uint8Array(Math.max(need, Math.min(pieceBytes, left)));
          p = 0;
        }
        const s = starts[i];
        if (len <= 16) for (let k = s, end = s + len; k < end; k++) piece[p++] = arena[k];
        else {
          piece.set(arena.subarray(s, s + len), p);
          p += len;
        }
        piece[p++] = 0x09;
        for (let k = 0; k < d; k++) piece[p++] = digits[k];
        piece[p++] = 0x0a;
      }
    }
    yield p === piece.length ? piece : piece.subarray(0, p);
  }
  return { words: n, bytes, top, pieces };
}

/** A UTF-16 unit from which `<` and code point order may differ. */
const HIGH_UNIT = /[\uD800-\uFFFF]/;

/** Code point order of words a and b, by `<` when both are known to allow it. */
function compareWords(a: string, b: string, comparable: boolean): number {
  if (comparable) return a < b ? -1 : a === b ? 0 : 1;
  return compareCodePoints(a, b);
}

/** Longest line readPart accepts: the longest word, a tab, 16 digits. */
const MAX_LINE_BYTES = PART_MAX_WORD_BYTES + 17;
/** readPart decodes complete lines this many bytes at a time (one string, one batch each). */
const DECODE_BYTES = 64 * 1024;

/**
 * Reads a sorted part as rows, checking it as it goes: the header, every line (a non-empty
 * word of valid UTF-8, a tab, a count from 1 to 2^53 - 1 in decimal without leading zeros, a
 * newline) and the order (counts never increase; within a count, words strictly increase by
 * code point). The pieces may be cut anywhere, even inside a line or a UTF-8 sequence.
 * Holds at most one piece, its decoded text 64 KiB at a time, and one line.
 *
 * Rows one at a time cost an await each (~0.2-0.5 µs): given to {@link mergeParts} or to the
 * count renderer untouched, these rows are taken in batches instead (see {@link batchesOf}).
 * @param source the part's bytes, in pieces of any size
 * @param name what the part is called in errors
 * @throws Error `${name}: line N: …` on the first thing wrong (the header is line 1), after
 *   yielding the rows before it
 */
export function readPart(source: AsyncIterable<Uint8Array>, name: string): AsyncGenerator<PartRow, void, undefined> {
  return rowsOf(readPartBatches(source, name));
}

/**
 * {@link readPart} in batches: arrays of consecutive rows (those of up to 64 KiB of one piece),
 * none empty.
 */
export async function* readPartBatches(source: AsyncIterable<Uint8Array>, name: string): AsyncGenerator<PartRow[], void, undefined> {
  let line = 0;
  let prevWord = '';
  let prevCount = Infinity;
  let prevComparable = true;
  let error: string | undefined;
  /** Checks a row against the one before it: what is wrong, or undefined. */
  const outOfOrder = (word: string, count: number, comparable: boolean): string | undefined => {
    if (count < prevCount) {
      prevCount = count;
      prevWord = word;
      prevComparable = comparable;
      return undefined;
    }
    if (count > prevCount) return `count ${count} after ${prevCount} (counts must not increase)`;
    const c = compareWords(prevWord, word, comparable && prevComparable);
    if (c >= 0) return c === 0 ? `${JSON.stringify(word)} repeated` : `${JSON.stringify(word)} after ${JSON.stringify(prevWord)} (words of one count must increase)`;
    prevWord = word;
    prevComparable = comparable;
    return undefined;
  };
  let batch: PartRow[] = [];
  let batchComparable = true;
  /** The batch so far, with what is known of it; a new one starts. */
  const take = (): PartRow[] => {
    const full = batch;
    BATCH_FLAGS.set(full, batchComparable ? CHECKED | COMPARABLE : CHECKED);
    batch = [];
    batchComparable = true;
    return full;
  };
  /** A row of a line read on its own (not with its piece's other lines). */
  const single = (row: PartRow | null | string): void => {
    if (typeof row === 'string') error = row;
    else if (row !== null) {
      const comparable = !HIGH_UNIT.test(row[0]);
      error = outOfOrder(row[0], row[1], comparable);
      if (error !== undefined) return;
      batch.push(row);
      batchComparable &&= comparable;
    }
  };
  // The line being read when a piece ended inside it (or the header, before anything came).
  let carry = new Uint8Array(256);
  let carried = 0;
  let pending = true;
  for await (const chunk of source) {
    const piece = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    const n = piece.length;
    let pos = 0;
    if (pending) {
      const nl = piece.indexOf(0x0a);
      const end = nl < 0 ? n : nl;
      if (carried + end > MAX_LINE_BYTES) {
        line++;
        throw new Error(`${name}: line ${line}: longer than ${MAX_LINE_BYTES} bytes`);
      }
      if (carried + end > carry.length) {
        const bigger = new Uint8Array(Math.min(MAX_LINE_BYTES, Math.max(carry.length * 2, carried + end)));
        bigger.set(carry.subarray(0, carried));
        carry = bigger;
      }
      carry.set(piece.subarray(0, end), carried);
      carried += end;
      if (nl < 0) continue;
      line++;
      single(parseLine(carry.subarray(0, carried), line === 1));
      carried = 0;
      pending = false;
      pos = nl + 1;
    }
    const last = piece.lastIndexOf(0x0a);
    while (pos <= last && error === undefined) {
      // Complete lines [pos, end], decoded DECODE_BYTES at a time.
      let end = pos + DECODE_BYTES >= last ? last : piece.lastIndexOf(0x0a, pos + DECODE_BYTES);
      if (end < pos) {
        // One line longer than DECODE_BYTES.
        end = piece.indexOf(0x0a, pos + DECODE_BYTES);
        if (end - pos > MAX_LINE_BYTES) {
          line++;
          error = `longer than ${MAX_LINE_BYTES} bytes`;
          break;
        }
      }
      if (!isUtf8(piece.subarray(pos, end + 1))) {
        // Somewhere in here: line by line, to name the line.
        for (let p = pos; p <= end && error === undefined; ) {
          const nl = piece.indexOf(0x0a, p);
          line++;
          single(parseLine(piece.subarray(p, nl), false));
          p = nl + 1;
        }
      } else {
        const text = piece.toString('utf8', pos, end + 1);
        const comparable = !HIGH_UNIT.test(text);
        batchComparable &&= comparable;
        for (let p = 0; p < text.length; ) {
          line++;
          const tab = text.indexOf('\t', p);
          const nl = text.indexOf('\n', p);
          if (tab < 0 || tab > nl) {
            error = NO_TAB;
            break;
          }
          if (tab === p) {
            error = EMPTY_WORD;
            break;
          }
          const digits = nl - tab - 1;
          let count = 0;
          for (let k = tab + 1; k < nl; k++) {
            const d = text.charCodeAt(k) - 0x30;
            if (d < 0 || d > 9) {
              count = -1;
              break;
            }
            count = count * 10 + d;
          }
          if (count < 1 || digits > 16 || text.charCodeAt(tab + 1) === 0x30 || count > Number.MAX_SAFE_INTEGER) {
            error = `bad count ${JSON.stringify(text.slice(tab + 1, Math.min(nl, tab + 41)))}`;
            break;
          }
          const word = text.slice(p, tab);
          if ((error = outOfOrder(word, count, comparable)) !== undefined) break;
          batch.push([word, count]);
          p = nl + 1;
        }
      }
      pos = end + 1;
      if (batch.length > 0) yield take();
    }
    if (error === undefined && last + 1 < n) {
      // A line goes on in the next piece.
      const rest = n - last - 1;
      if (rest > MAX_LINE_BYTES) {
        line++;
        error = `longer than ${MAX_LINE_BYTES} bytes`;
      } else {
        if (rest > carry.length) carry = new Uint8Array(Math.min(MAX_LINE_BYTES, Math.max(carry.length * 2, rest)));
        carry.set(piece.subarray(last + 1), 0);
        carried = rest;
        pending = true;
      }
    }
    if (batch.length > 0) yield take();
    if (error !== undefined) throw new Error(`${name}: line ${line}: ${error}`);
  }
  if (pending) {
    line++;
    throw new Error(`${name}: line ${line}: ${line === 1 && carried === 0 ? 'empty (no header)' : 'no newline at the end'}`);
  }
}

const NO_TAB = 'no tab (a line is word<TAB>count)';
const EMPTY_WORD = 'empty word';

/**
 * One line of a part, without its newline: the row, null for a good header, or what is wrong.
 */
function parseLine(bytes: Uint8Array, header: boolean): PartRow | null | string {
  const text = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (header) {
    if (text.length === PART_HEADER.length && text.toString('latin1') === PART_HEADER) return null;
    return `not a sorted part (the first line must be ${JSON.stringify(PART_HEADER)})`;
  }
  const tab = text.indexOf(0x09);
  if (tab < 0) return NO_TAB;
  if (tab === 0) return EMPTY_WORD;
  if (!isUtf8(text.subarray(0, tab))) return 'the word is not valid UTF-8';
  const digits = text.length - tab - 1;
  let count = 0;
  for (let k = tab + 1; k < text.length; k++) {
    const d = text[k] - 0x30;
    if (d < 0 || d > 9) {
      count = -1;
      break;
    }
    count = count * 10 + d;
  }
  if (count < 1 || digits > 16 || text[tab + 1] === 0x30 || count > Number.MAX_SAFE_INTEGER) {
    return `bad count ${JSON.stringify(text.toString('latin1', tab + 1, tab + 1 + Math.min(digits, 40)))}`;
  }
  return [text.toString('utf8', 0, tab), count];
}

/** Any rows as batches: those behind readPart's and mergeParts' rows, else one row each. */
function asBatches(rows: AsyncIterable<PartRow>): AsyncIterable<PartRow[]> {
  return (
    batchesOf(rows) ??
    (async function* () {
      for await (const row of rows) yield [row];
    })()
  );
}

/**
 * Merges sorted parts into one sorted stream of rows (count descending, then code point
 * order), with a binary heap of one row per part. Each part must be sorted (readPart checks
 * that); a part out of order makes the merge throw. Parts are meant to be disjoint: a word
 * found in two parts anyway is yielded twice (rows of equal count and word: the one of the
 * earlier part first), not summed, so that a partitioning mistake shows instead of hiding.
 *
 * Reads lazily: it pulls the first row of every part, then pulls from a part only when the
 * consumer wants a row and that part's next row is needed for it; when the consumer stops,
 * every part not finished is closed (its `return()`). Parts from {@link readPart} are read in
 * batches (so "a row" above is then "a batch"), and so are the merged rows when given to the
 * count renderer or to {@link batchesOf}.
 */
export function mergeParts(parts: Array<AsyncIterable<PartRow>>): AsyncGenerator<PartRow, void, undefined> {
  return rowsOf(mergePartBatches(parts.map(asBatches)));
}

/**
 * {@link mergeParts} in batches, from parts in batches (as {@link readPartBatches} makes them).
 * A batch is yielded before any await on a part, so nothing is read that the consumer has not
 * asked for; batches hold at most `batchRows` rows, none is empty. The parts play a
 * tournament (a loser tree): log2(parts) comparisons per row.
 */
export async function* mergePartBatches(parts: Array<AsyncIterable<PartRow[]>>, batchRows = 4096): AsyncGenerator<PartRow[], void, undefined> {
  const k = parts.length;
  const iterators = parts.map((part) => part[Symbol.asyncIterator]());
  const open = iterators.map(() => true);
  // Each part's current batch, the place of its next row there, and that row's word and count
  // (count -1: the part is done, and loses to every part that is not).
  const batches: PartRow[][] = iterators.map(() => []);
  const at: number[] = iterators.map(() => 0);
  const words: string[] = iterators.map(() => '');
  const counts: number[] = iterators.map(() => -1);
  // BATCH_FLAGS of each part's current batch.
  const flags: number[] = iterators.map(() => 0);
  /** The part's next non-empty batch; false when the part is done. */
  const pull = async (part: number): Promise<boolean> => {
    for (;;) {
      const result = await iterators[part].next();
      if (result.done) {
        open[part] = false;
        counts[part] = -1;
        return false;
      }
      if (result.value.length === 0) continue;
      batches[part] = result.value;
      at[part] = 0;
      flags[part] = BATCH_FLAGS.get(result.value) ?? 0;
      return true;
    }
  };
  /** Part p's next row is before part q's (ties, which only duplicates make: by part). */
  const before = (p: number, q: number): boolean => {
    const x = counts[p];
    const y = counts[q];
    if (x !== y) return x > y;
    if (x < 0) return p < q;
    const c = compareWords(words[p], words[q], (flags[p] & flags[q] & COMPARABLE) !== 0);
    return c !== 0 ? c < 0 : p < q;
  };
  // The tournament: internal nodes 1..k-1 hold the loser of their match, leaves k..2k-1 are
  // the parts; winner is the overall winner.
  const losers = new Int32Array(Math.max(k, 1));
  const play = (node: number): number => {
    if (node >= k) return node - k;
    const a = play(2 * node);
    const b = play(2 * node + 1);
    if (before(a, b)) {
      losers[node] = b;
      return a;
    }
    losers[node] = a;
    return b;
  };
  try {
    await Promise.all(
      iterators.map(async (_, part) => {
        if (!(await pull(part))) return;
        const row = batches[part][0];
        words[part] = row[0];
        counts[part] = row[1];
      }),
    );
    if (k === 0) return;
    let winner = k === 1 ? 0 : play(1);
    let out: PartRow[] = [];
    // The flags that every row of `out` has.
    let outFlags = CHECKED | COMPARABLE;
    /** The batch so far, with what is known of it; a new one starts. */
    const take = (): PartRow[] => {
      const full = out;
      BATCH_FLAGS.set(full, outFlags);
      out = [];
      outFlags = CHECKED | COMPARABLE;
      return full;
    };
    while (counts[winner] >= 0) {
      const part = winner;
      const batch = batches[part];
      const row = batch[at[part]++];
      out.push(row);
      // The merged rows are in order; they are comparable if every row taken was.
      outFlags &= flags[part] | CHECKED;
      let next: PartRow | undefined;
      if (at[part] < batch.length) next = batch[at[part]];
      else {
        // This part's batch is used up: hand over what is ready before reading on.
        yield take();
        if (await pull(part)) next = batches[part][0];
      }
      if (next !== undefined) {
        const [word, count] = next;
        if ((flags[part] & CHECKED) === 0 && (count > row[1] || (count === row[1] && compareCodePoints(row[0], word) >= 0))) {
          throw new Error(`mergeParts: part ${part} is not sorted: ${JSON.stringify(next)} after ${JSON.stringify(row)}`);
        }
        words[part] = word;
        counts[part] = count;
      }
      // Replay the part's matches up to the root.
      for (let node = (part + k) >> 1; node >= 1; node >>= 1) {
        const other = losers[node];
        if (before(other, winner)) {
          losers[node] = winner;
          winner = other;
        }
      }
      if (out.length >= batchRows) yield take();
    }
    if (out.length > 0) yield take();
  } finally {
    await Promise.allSettled(iterators.map((iterator, part) => (open[part] ? iterator.return?.() : undefined)));
  }
}
