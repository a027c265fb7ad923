/**
 * A hash table of words keyed by their UTF-8 bytes: the worker's per-chunk table and the
 * coordinator's job-wide table are the same structure, so neither side makes a string per
 * occurrence of a word, and the coordinator makes none per line of a partial.
 *
 * Each distinct word's bytes are copied once, when first seen, into a compact arena. Lookups
 * and the final write-out read the arena, not the word's first occurrence in the input: the
 * arena of a 1 MiB chunk is ~100 KiB and stays in cache, while first occurrences are scattered
 * over the whole chunk (reading them back cost ~100 ns a word in cache misses, measured).
 */

import { TopK } from './forming-top.js';

/** FNV-1a offset basis; the scanners and the reducer hash with it so their hashes agree. */
export const FNV_OFFSET = 0x811c9dc5 | 0;
/** FNV-1a prime. */
export const FNV_PRIME = 0x01000193;

/** Marks an all-ASCII word in its tag (lengths stay far below 2^30). */
export const ASCII_FLAG = 0x40000000;
const LENGTH_MASK = ASCII_FLAG - 1;
/** A slot's int32 count moves to the wide counts before it could overflow. */
const NARROW_LIMIT = 0x40000000;

/** Byte map that changes nothing. */
export const IDENTITY = new Uint8Array(256);
/** Byte map that folds ASCII A–Z to a–z and leaves every other byte alone. */
export const LOWER_ASCII = new Uint8Array(256);
for (let b = 0; b < 256; b++) {
  IDENTITY[b] = b;
  LOWER_ASCII[b] = b >= 0x41 && b <= 0x5a ? b + 0x20 : b;
}

/** A table's distinct words as columns: see {@link WordTable.columns}. */
export interface WordColumns {
  /** The words' bytes, back to back (and maybe spare room after them). */
  arena: Uint8Array;
  /** Arena offset of each word. */
  starts: Int32Array;
  /** Byte length of each word. */
  lengths: Int32Array;
  /** Count of each word. */
  counts: Float64Array;
}

/** Spreads FNV-1a's weak low bits before they index the table. */
function mix(hash: number): number {
  const h = Math.imul(hash ^ (hash >>> 16), 0x45d9f3b);
  return h ^ (h >>> 16);
}

/**
 * Distinct words and their counts. Words are compared on their bytes mapped through `fold`
 * (LOWER_ASCII folds ASCII letters while hashing and comparing; the caller folds anything else
 * itself), and stored folded.
 */
export class WordTable {
  private readonly fold: Uint8Array;
  private mask: number;
  /**
   * Open addressing, one slot = 4 int32s side by side so a probe touches one cache line:
   * [arena offset + 1 (0 = empty), length | ASCII_FLAG, last 4 folded bytes, count]. The last
   * bytes settle words of up to 4 bytes without reading the arena, and reject most mismatches
   * of longer ones. A count that reaches 2^30 (only a job-wide table gets there) moves to
   * `wide` and the slot's count becomes -1 - its index there.
   */
  private slots: Int32Array;
  private wide: number[] = [];
  /** Folded bytes of every distinct word, back to back. */
  protected arena: Uint8Array;
  private arenaUsed = 0;
  /** Number of distinct words. */
  size = 0;

  /**
   * @param fold byte map applied before hashing and comparing (IDENTITY or LOWER_ASCII)
   * @param capacity initial number of slots, a power of two (grows at 3/4 full)
   */
  constructor(fold: Uint8Array, capacity = 1024) {
    this.fold = fold;
    this.mask = capacity - 1;
    this.slots = new Int32Array(capacity * 4);
    this.arena = new Uint8Array(capacity * 4);
  }

  /**
   * Adds `n` (≥ 1) to the count of the word src[start, start+len). `hash` is the FNV-1a hash of
   * its folded bytes and `tail` its last (up to) 4 folded bytes, big-endian; `ascii` says
   * whether every byte is below 0x80. The caller computes all three while scanning the word.
   */
  add(src: Uint8Array, start: number, len: number, hash: number, tail: number, ascii: boolean, n: number): void {
    const slots = this.slots;
    const tag = ascii ? len | 0x40000000 : len; // ASCII_FLAG, spelled out on the hot path
    const wrap = (this.mask << 2) | 3;
    let i = (mix(hash) & this.mask) << 2;
    for (;;) {
      const s1 = slots[i];
      if (s1 === 0) break;
      if (slots[i + 2] === tail && slots[i + 1] === tag && (len <= 4 || this.sameBytes(src, start, len - 4, s1 - 1))) {
        const c = slots[i + 3] + n;
        if (c < NARROW_LIMIT && c > n) slots[i + 3] = c;
        else this.addWide(i, n);
        return;
      }
      i = (i + 4) & wrap;
    }
    slots[i] = this.insert(src, start, len) + 1;
    slots[i + 1] = tag;
    slots[i + 2] = tail;
    slots[i + 3] = 0;
    if (n < NARROW_LIMIT) slots[i + 3] = n;
    else this.addWide(i, n);
    if (++this.size * 4 > this.mask * 3) this.grow();
  }

  /**
   * Folds the lines `word\tcount\n` of data[from..] (UTF-8 checked) where this table holds its
   * words outside JavaScript, throwing (via `malformed`) what foldLines would before anything
   * changes; false when the words are here, and foldLines adds the lines itself. A WordTable
   * holds its words here; a reducer's table may not (shared/text/partition-table.ts).
   */
  foldHeldLines(_data: Uint8Array, _from: number, _expected: number, _malformed: (why: string) => Error): boolean {
    return false;
  }

  /** Slots the table has (16 bytes each: most of its memory with many words). */
  get slotCount(): number {
    return this.slots.length / 4;
  }

  /**
   * Takes over a table filled elsewhere in this class's layout (the WebAssembly scanner's:
   * shared/text/wasm-scanner.ts), in place of this one's words; it must hold no wide counts.
   */
  protected adopt(table: { slots: Int32Array; arena: Uint8Array; arenaUsed: number; size: number }): void {
    this.slots = table.slots;
    this.mask = table.slots.length / 4 - 1;
    this.arena = table.arena;
    this.arenaUsed = table.arenaUsed;
    this.arenaBuffer = undefined;
    this.size = table.size;
    this.wide = [];
  }

  /** The slot handle of the word with these bytes (compared folded), or -1 when it has none. */
  protected find(bytes: Uint8Array): number {
    const { slots, fold } = this;
    const len = bytes.length;
    let hash = FNV_OFFSET;
    let tail = 0;
    let ascii = true;
    for (let k = 0; k < len; k++) {
      const b = fold[bytes[k]];
      hash = Math.imul(hash ^ b, FNV_PRIME);
      tail = (tail << 8) | b;
      if (b >= 0x80) ascii = false;
    }
    const tag = ascii ? len | ASCII_FLAG : len;
    const wrap = (this.mask << 2) | 3;
    for (let i = (mix(hash) & this.mask) << 2; ; i = (i + 4) & wrap) {
      const s1 = slots[i];
      if (s1 === 0) return -1;
      if (slots[i + 2] === tail && slots[i + 1] === tag && (len <= 4 || this.sameBytes(bytes, 0, len - 4, s1 - 1))) return i;
    }
  }

  /** Compares the first `m` folded bytes of src at `start` with the arena at `at`. */
  private sameBytes(src: Uint8Array, start: number, m: number, at: number): boolean {
    const { arena, fold } = this;
    for (let k = 0; k < m; k++) {
      const a = arena[at + k];
      const b = src[start + k];
      // Most occurrences already have the stored (folded) spelling: skip the fold lookup then.
      if (a !== b && a !== fold[b]) return false;
    }
    return true;
  }

  /** Slow path for counts of 2^30 and more (and for a slot already there: count < 0). */
  private addWide(i: number, n: number): void {
    const c = this.slots[i + 3];
    if (c < 0) {
      this.wide[-1 - c] += n;
    } else {
      this.wide.push(c + n);
      this.slots[i + 3] = -this.wide.length;
    }
  }

  /** Copies the folded word into the arena; returns its offset. */
  private insert(src: Uint8Array, start: number, len: number): number {
    let at = this.arenaUsed;
    if (at + len > this.arena.length) {
      const arena = new Uint8Array(Math.max(this.arena.length * 2, at + len));
      arena.set(this.arena.subarray(0, at));
      this.arena = arena;
      this.arenaBuffer = undefined;
    }
    const { arena, fold } = this;
    const offset = at;
    for (let k = start, end = start + len; k < end; k++) arena[at++] = fold[src[k]];
    this.arenaUsed = at;
    return offset;
  }

  /**
   * Grows the table; hashes are recomputed from the arena (compact, so cheap). A big table (a
   * reducer's, millions of distinct words) grows fourfold: each growth moves every word to
   * scattered new slots, and moving them half as often saves a tenth of a reduce.
   */
  private grow(): void {
    const arena = this.arena;
    const old = this.slots;
    const capacity = (this.mask + 1) * (this.mask >= 1 << 17 ? 4 : 2);
    this.mask = capacity - 1;
    const slots = new Int32Array(capacity * 4);
    const wrap = (this.mask << 2) | 3;
    for (let j = 0; j < old.length; j += 4) {
      if (old[j] === 0) continue;
      const s = old[j] - 1;
      const end = s + (old[j + 1] & LENGTH_MASK);
      let h = FNV_OFFSET;
      for (let k = s; k < end; k++) h = Math.imul(h ^ arena[k], FNV_PRIME);
      let i = (mix(h) & this.mask) << 2;
      while (slots[i] !== 0) i = (i + 4) & wrap;
      slots[i] = old[j];
      slots[i + 1] = old[j + 1];
      slots[i + 2] = old[j + 2];
      slots[i + 3] = old[j + 3];
    }
    this.slots = slots;
  }

  private arenaBuffer: Buffer | undefined;

  /**
   * Calls `fn` for every distinct word with its slot handle, in table order. The handle is
   * valid until the next `add`.
   */
  protected eachSlot(fn: (slot: number) => void): void {
    const slots = this.slots;
    for (let i = 0; i < slots.length; i += 4) if (slots[i] !== 0) fn(i);
  }

  /** Slot handles of every distinct word, in table order (valid until the next `add`). */
  protected slotHandles(): Int32Array {
    const out = new Int32Array(this.size);
    const slots = this.slots;
    let n = 0;
    for (let i = 0; i < slots.length; i += 4) if (slots[i] !== 0) out[n++] = i;
    return out;
  }

  /** The word in a slot, decoded from UTF-8 (ill-formed bytes become U+FFFD, as TextDecoder does). */
  protected text(slot: number): string {
    const buffer = (this.arenaBuffer ??= Buffer.from(this.arena.buffer, this.arena.byteOffset, this.arena.byteLength));
    const start = this.slots[slot] - 1;
    return buffer.toString('utf8', start, start + (this.slots[slot + 1] & LENGTH_MASK));
  }

  /** True when the word in a slot is all ASCII. */
  protected isAscii(slot: number): boolean {
    return (this.slots[slot + 1] & ASCII_FLAG) !== 0;
  }

  /** Byte length of the word in a slot. */
  protected byteLength(slot: number): number {
    return this.slots[slot + 1] & LENGTH_MASK;
  }

  /** Arena offset of the word in a slot. */
  protected startOf(slot: number): number {
    return this.slots[slot] - 1;
  }

  /** Count of the word in a slot. */
  protected countOf(slot: number): number {
    const c = this.slots[slot + 3];
    return c >= 0 ? c : this.wide[-1 - c];
  }

  /**
   * Every distinct word as columns, in table order, for sorting and writing out without a
   * string per word: word i is arena[starts[i], starts[i] + lengths[i]) (its folded bytes)
   * and has count counts[i]. The columns are a copy: they stay valid after later adds (the
   * arena is only ever appended to, or replaced by a bigger copy), but do not see them.
   */
  columns(): WordColumns {
    const n = this.size;
    const starts = new Int32Array(n);
    const lengths = new Int32Array(n);
    const counts = new Float64Array(n);
    const { slots, wide } = this;
    let k = 0;
    for (let i = 0; i < slots.length; i += 4) {
      if (slots[i] === 0) continue;
      starts[k] = slots[i] - 1;
      lengths[k] = slots[i + 1] & LENGTH_MASK;
      const c = slots[i + 3];
      counts[k++] = c >= 0 ? c : wide[-1 - c];
    }
    return { arena: this.arena, starts, lengths, counts };
  }

  /** The `n` most frequent words with their counts, most frequent first (one pass, `n` strings). */
  topEntries(n: number): [string, number][] {
    const top = new TopK<number>(n);
    this.eachSlot((slot) => top.offer(this.countOf(slot), slot));
    return top.kept().map(([slot, count]) => [this.text(slot), count]);
  }

  /** Every word with its count, as strings (one string per distinct word). */
  entries(): [string, number][] {
    const out: [string, number][] = [];
    this.eachSlot((slot) => out.push([this.text(slot), this.countOf(slot)]));
    return out;
  }
}

/** Decimal digits of a non-negative safe integer. */
export function decimalDigits(n: number): number {
  if (n < 1e9) return n < 10 ? 1 : n < 100 ? 2 : n < 1000 ? 3 : n < 10000 ? 4 : n < 100000 ? 5 : n < 1000000 ? 6 : n < 10000000 ? 7 : n < 100000000 ? 8 : 9;
  let d = 9;
  for (let m = 1e9; m <= n; m *= 10) d++;
  return d;
}

/** Writes n (a non-negative safe integer) in decimal at out[p]; returns the position after it. */
export function writeDecimal(out: Uint8Array, p: number, n: number): number {
  const d = decimalDigits(n);
  if (n < 0x80000000) {
    for (let k = p + d - 1; k >= p; k--) {
      const q = (n / 10) | 0;
      out[k] = 0x30 + (n - q * 10);
      n = q;
    }
  } else {
    for (let k = p + d - 1; k >= p; k--) {
      out[k] = 0x30 + (n % 10);
      n = Math.floor(n / 10);
    }
  }
  return p + d;
}
