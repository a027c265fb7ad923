/**
 * How a word is counted: the two tokenizers and the per-chunk counter that workers run.
 *
 * unicode (default): a word is a run of letters, marks and numbers (\p{L}\p{M}\p{N}); one
 *   apostrophe (' or ’) between two such runs joins them ("don't", "l’homme", "rock'n'roll").
 *   Everything else separates, including U+FFFD from invalid UTF-8.
 * whitespace: a token is a maximal run of bytes other than space \t \n \v \f \r. It counts only
 *   if it contains at least one printable ASCII byte (0x21–0x7E). That odd-looking rule is what
 *   `LC_ALL=C wc -w` was measured to do (GNU coreutils 9.1): in the C locale no byte ≥ 0x80 is
 *   a printable character, and wc only counts a run that holds a printable one, so
 *   `printf '日本 語' | LC_ALL=C wc -w` prints 0, `printf 'a\x01b'` 1, `printf '\x01'` 0,
 *   `printf '\xc2\xa0'` 0 and `printf 'x\xc2\xa0y'` 1. Totals must equal wc's on every input.
 *
 * Words are folded with String.prototype.toLowerCase over the whole decoded word (so Greek
 * final sigma comes out right) unless caseSensitive. A word whose UTF-8 bytes in the input
 * exceed maxWordBytes is counted in totalWords and overlongWords but not kept in the table.
 *
 * A file starting with a UTF-8 byte order mark is decoded without it, as `new TextDecoder()`
 * does: the BOM is not part of the first token (it only matters for whitespace tokens).
 *
 * Speed: the scanner works on bytes, hashes each token while scanning it and counts it in a
 * hash table keyed by its bytes in the chunk, so no string is made per occurrence; strings
 * are made once per distinct word when the table is written out.
 */
import {
  ASCII_CLASS as ASCII_TABLE,
  APOS as APOS_CLASS,
  CLASS_TABLE as CP_TABLE,
  WORD as WORD_CLASS,
  WHITESPACE_BYTE as WS_TABLE,
  decodeAt,
  fillClass,
  sequenceLength,
  classOf,
  isPrintableAscii,
  SEP,
} from './char-classes.js';
import type { Tokenizer } from './chunker.js';

export type { Tokenizer };

/** How words are delimited and compared. */
export interface CountSettings {
  tokenizer: Tokenizer;
  caseSensitive: boolean;
  maxWordBytes: number;
}

/** What a worker knows about the edges of its chunk (see chunker.ts). */
export interface ChunkEdges {
  /** The chunk is the start of its file (a leading BOM is not text). */
  fileStart: boolean;
  /** The first token is the tail of an overlong word begun in an earlier chunk. */
  continuesWord: boolean;
  /** The last token is the head of an overlong word that continues in the next chunk. */
  endsInsideWord: boolean;
  /** With continuesWord: that word has already been counted by an earlier chunk. */
  wordCounted: boolean;
}

/** The counts of one chunk. */
export interface ChunkCount {
  totalWords: number;
  overlongWords: number;
  /** Distinct kept words of the chunk. */
  words: WordTable;
}

const FNV_OFFSET = 0x811c9dc5 | 0;
const FNV_PRIME = 0x01000193;

const IDENTITY = new Uint8Array(256);
const LOWER_ASCII = new Uint8Array(256);
for (let b = 0; b < 256; b++) {
  IDENTITY[b] = b;
  LOWER_ASCII[b] = b >= 0x41 && b <= 0x5a ? b + 0x20 : b;
}

/** For each byte: its folded value if it is an ASCII word byte ([0-9A-Za-z]), else 0. */
const ASCII_WORD = new Uint8Array(256);
const ASCII_WORD_LOWER = new Uint8Array(256);
for (let b = 0; b < 128; b++) {
  if (ASCII_TABLE[b] !== WORD_CLASS) continue;
  ASCII_WORD[b] = b;
  ASCII_WORD_LOWER[b] = LOWER_ASCII[b];
}

/**
 * For the whitespace tokenizer, one lookup per byte: 0 for the six whitespace bytes, else a
 * bit saying what the byte tells about its token (OR-ed over the token while scanning).
 */
const PRINTABLE = 1;
const CONTROL = 2;
const NON_ASCII = 4;
const BYTE_KIND = new Uint8Array(256);
for (let b = 0; b < 256; b++) {
  BYTE_KIND[b] = WS_TABLE[b] === 1 ? 0 : b >= 0x80 ? NON_ASCII : isPrintableAscii(b) ? PRINTABLE : CONTROL;
}


/**
 * Distinct words of one chunk, keyed by their bytes in the chunk. With case folding, ASCII
 * letters are folded while hashing and comparing; other bytes are compared raw, and words that
 * differ only there are merged when written out (toLowerCase of a whole word does not change
 * when ASCII letters inside it change case, so either spelling folds to the same string).
 */
export class WordTable {
  private readonly body: Uint8Array;
  private readonly fold: Uint8Array;
  private readonly caseSensitive: boolean;
  private mask: number;
  /**
   * Open addressing, one slot = 4 int32s side by side so a probe touches one cache line:
   * [start + 1 (0 = empty), length | ASCII_FLAG, last 4 folded bytes, count]. The last bytes
   * settle words of up to 4 bytes without reading the stored occurrence, and reject most
   * mismatches of longer ones.
   */
  private slots: Int32Array;
  /** Number of occupied slots. */
  size = 0;

  constructor(body: Uint8Array, caseSensitive: boolean) {
    this.body = body;
    this.caseSensitive = caseSensitive;
    this.fold = caseSensitive ? IDENTITY : LOWER_ASCII;
    // Up to one distinct word per ~24 bytes before growing; 2^15 slots (512 KiB) fit in L2.
    let capacity = 1024;
    while (capacity < 1 << 15 && capacity * 24 < body.length) capacity *= 2;
    this.mask = capacity - 1;
    this.slots = new Int32Array(capacity * 4);
  }

  /**
   * Counts one occurrence of body[start, start+len). `hash` is the FNV-1a hash of its folded
   * bytes and `tail` its last (up to) 4 folded bytes, big-endian; both come from the scanner.
   */
  add(start: number, len: number, hash: number, tail: number, ascii: boolean): void {
    const { slots, body } = this;
    const tag = ascii ? len | 0x40000000 : len; // ASCII_FLAG, spelled out on the hot path
    const wrap = (this.mask << 2) | 3;
    let i = (mix(hash) & this.mask) << 2;
    for (;;) {
      const s1 = slots[i];
      if (s1 === 0) break;
      if (slots[i + 2] === tail && slots[i + 1] === tag) {
        if (len <= 4) {
          slots[i + 3]++;
          return;
        }
        // The last 4 bytes are equal; compare the rest.
        const s = s1 - 1;
        const m = len - 4;
        let k = 0;
        while (k < m && body[s + k] === body[start + k]) k++;
        if (k < m && !this.caseSensitive) {
          // Same word in another case ("The" vs "the"): compare folded.
          const fold = this.fold;
          while (k < m && fold[body[s + k]] === fold[body[start + k]]) k++;
        }
        if (k === m) {
          slots[i + 3]++;
          return;
        }
      }
      i = (i + 4) & wrap;
    }
    slots[i] = start + 1;
    slots[i + 1] = tag;
    slots[i + 2] = tail;
    slots[i + 3] = 1;
    if (++this.size * 4 > this.mask * 3) this.grow();
  }

  /** Doubles the table; the hash is recomputed from the stored occurrence (rare, cheap). */
  private grow(): void {
    const { body, fold } = this;
    const old = this.slots;
    const capacity = (this.mask + 1) * 2;
    this.mask = capacity - 1;
    const slots = new Int32Array(capacity * 4);
    const wrap = (this.mask << 2) | 3;
    for (let j = 0; j < old.length; j += 4) {
      if (old[j] === 0) continue;
      const s = old[j] - 1;
      const end = s + (old[j + 1] & ~ASCII_FLAG);
      let h = FNV_OFFSET;
      for (let k = s; k < end; k++) h = Math.imul(h ^ fold[body[k]], FNV_PRIME);
      let i = (mix(h) & this.mask) << 2;
      while (slots[i] !== 0) i = (i + 4) & wrap;
      slots[i] = old[j];
      slots[i + 1] = old[j + 1];
      slots[i + 2] = old[j + 2];
      slots[i + 3] = old[j + 3];
    }
    this.slots = slots;
  }

  private word(i: number): string {
    const s = this.slots[i] - 1;
    // Buffer's UTF-8 decoder replaces ill-formed sequences like TextDecoder (the property tests
    // hold it to that) and costs far less per call on short words.
    const text = this.bodyBuffer.toString('utf8', s, s + (this.slots[i + 1] & ~ASCII_FLAG));
    return this.caseSensitive ? text : text.toLowerCase();
  }

  private get bodyBuffer(): Buffer {
    return (this.bodyAsBuffer ??= Buffer.from(this.body.buffer, this.body.byteOffset, this.body.byteLength));
  }

  private bodyAsBuffer: Buffer | undefined;

  /** Calls `fn` for each distinct word with its count (a word may be reported more than once). */
  forEach(fn: (word: string, count: number) => void): void {
    const slots = this.slots;
    for (let i = 0; i < slots.length; i += 4) if (slots[i] !== 0) fn(this.word(i), slots[i + 3]);
  }

  /**
   * The table as UTF-8 lines `word\tcount\n` (words never contain \t or \n). All-ASCII words
   * are written straight from the chunk bytes; others are decoded, folded and merged first.
   * A word can still appear on two lines (e.g. "k" and a folded KELVIN SIGN): readers sum.
   */
  encodeLines(): { bytes: Uint8Array; lines: number } {
    const { slots, body, fold } = this;
    const others = new Map<string, number>();
    let size = 0;
    let lines = 0;
    for (let i = 0; i < slots.length; i += 4) {
      if (slots[i] === 0) continue;
      const tag = slots[i + 1];
      if ((tag & ASCII_FLAG) !== 0) {
        size += (tag & ~ASCII_FLAG) + 2 + digits(slots[i + 3]);
        lines++;
      } else {
        const w = this.word(i);
        others.set(w, (others.get(w) ?? 0) + slots[i + 3]);
      }
    }
    // Non-ASCII lines are encoded in one call rather than one per word.
    let tailText = '';
    for (const [w, n] of others) {
      tailText += `${w}\t${n}\n`;
      lines++;
    }
    const tail = Buffer.from(tailText, 'utf8');
    size += tail.length;
    const out = new Uint8Array(size);
    let p = 0;
    for (let i = 0; i < slots.length; i += 4) {
      const tag = slots[i + 1];
      if (slots[i] === 0 || (tag & ASCII_FLAG) === 0) continue;
      const s = slots[i] - 1;
      const end = s + (tag & ~ASCII_FLAG);
      for (let k = s; k < end; k++) out[p++] = fold[body[k]];
      out[p++] = 0x09;
      p = writeDecimal(out, p, slots[i + 3]);
      out[p++] = 0x0a;
    }
    out.set(tail, p);
    return { bytes: out, lines };
  }
}

/** Marks an all-ASCII word in a slot's length field (lengths stay far below 2^30). */
const ASCII_FLAG = 0x40000000;

/** Spreads FNV-1a's weak low bits before they index the table. */
function mix(hash: number): number {
  const h = Math.imul(hash ^ (hash >>> 16), 0x45d9f3b);
  return h ^ (h >>> 16);
}

function digits(n: number): number {
  let d = 1;
  while (n >= 10) {
    n = Math.floor(n / 10);
    d++;
  }
  return d;
}

function writeDecimal(out: Uint8Array, p: number, n: number): number {
  const d = digits(n);
  for (let k = p + d - 1; k >= p; k--) {
    out[k] = 0x30 + (n % 10);
    n = Math.floor(n / 10);
  }
  return p + d;
}

/** Where the text of a chunk starts: after a BOM when the chunk starts its file. */
function textStart(body: Uint8Array, edges: ChunkEdges): number {
  return edges.fileStart && body.length >= 3 && body[0] === 0xef && body[1] === 0xbb && body[2] === 0xbf ? 3 : 0;
}

/**
 * Counts the words of one chunk.
 *
 * Edge rules (the chunker only sets the flags on a cut that a token spans, and only inside a
 * word already known to be longer than maxWordBytes, so such a word is never kept):
 *  - continuesWord: the chunk's first token is the rest of that word. It is counted (once, as
 *    overlong) only if the word has not been counted yet (`wordCounted` false) and this piece
 *    qualifies (whitespace: holds a printable ASCII byte; unicode: always, but the chunker
 *    never leaves a unicode word uncounted).
 *  - endsInsideWord: the chunk's last token, unless it is that same first token, is the start
 *    of an overlong word: counted once in totalWords and overlongWords if it qualifies.
 * The first/last token may be separated from the cut by one apostrophe ("…abc'|def…" or
 * "…abc|'def…"): the tokenizer never attaches an apostrophe to the edge of a token, so the
 * token next to the cut is still the first/last one, and the rules hold unchanged.
 *
 * @param body the chunk's bytes (kept by reference in the result's table)
 * @param settings tokenizer, case folding and the overlong limit
 * @param edges the chunk's flags
 */
export function countChunk(body: Uint8Array, settings: CountSettings, edges: ChunkEdges): ChunkCount {
  const words = new WordTable(body, settings.caseSensitive);
  const from = textStart(body, edges);
  return settings.tokenizer === 'whitespace'
    ? scanWhitespace(body, from, settings, edges, words)
    : scanUnicode(body, from, settings, edges, words);
}

function scanUnicode(body: Uint8Array, from: number, settings: CountSettings, edges: ChunkEdges, words: WordTable): ChunkCount {
  // Locals, not imported bindings: an imported binding costs a cell load and a TDZ check on
  // every read in the hot loop.
  const ASCII_CLASS = ASCII_TABLE;
  const CLASS_TABLE = CP_TABLE;
  const WORD = WORD_CLASS;
  const APOS = APOS_CLASS;
  const n = body.length;
  // Folded byte for an ASCII word byte, 0 for anything else: one lookup per byte in a run.
  const wordFold = settings.caseSensitive ? ASCII_WORD : ASCII_WORD_LOWER;
  const maxWordBytes = settings.maxWordBytes;
  let skipFirst = edges.continuesWord;
  const countFirst = edges.continuesWord && !edges.wordCounted;
  let total = 0;
  let overlong = 0;
  let i = from;
  while (i < n) {
    let b = body[i];
    let len = 1;
    let cls: number;
    if (b < 0x80) {
      if (wordFold[b] === 0) {
        i++;
        continue;
      }
      cls = WORD;
    } else {
      const d = decodeAt(body, i, n);
      len = d & 7;
      const cp = d >>> 3;
      cls = CLASS_TABLE[cp];
      if (cls === 0) cls = fillClass(cp);
    }
    if (cls !== WORD) {
      i += len;
      continue;
    }
    // A token starts at i: W+ (A W+)*. Invariant at the loop top: body[i] starts a W of `len` bytes.
    const start = i;
    let h = FNV_OFFSET;
    // The last 4 folded bytes, a separate dependency chain from h (nearly free).
    let tail = 0;
    let ascii = true;
    let reachesEnd = false;
    let end: number;
    for (;;) {
      if (len === 1) {
        // Run of ASCII word bytes: the common case, kept to one tight loop.
        let f = wordFold[b];
        do {
          h = Math.imul(h ^ f, FNV_PRIME);
          tail = (tail << 8) | f;
          if (++i >= n) break;
          b = body[i];
          f = wordFold[b];
        } while (f !== 0);
      } else {
        ascii = false;
        for (let k = i; k < i + len; k++) {
          h = Math.imul(h ^ body[k], FNV_PRIME);
          tail = (tail << 8) | body[k];
        }
        i += len;
      }
      if (i >= n) {
        end = n;
        reachesEnd = true;
        break;
      }
      b = body[i];
      if (b < 0x80) {
        cls = ASCII_CLASS[b];
        len = 1;
      } else {
        const d = decodeAt(body, i, n);
        len = d & 7;
        const cp = d >>> 3;
        cls = CLASS_TABLE[cp];
        if (cls === 0) cls = fillClass(cp);
      }
      if (cls === WORD) continue;
      end = i;
      if (cls === APOS) {
        const j = i + len;
        if (j >= n) {
          // "…abc'" at the end of the chunk: the token still touches the cut.
          reachesEnd = true;
          i = j;
          break;
        }
        const b2 = body[j];
        let len2 = 1;
        let cls2: number;
        if (b2 < 0x80) {
          cls2 = ASCII_CLASS[b2];
        } else {
          const d = decodeAt(body, j, n);
          len2 = d & 7;
          const cp = d >>> 3;
          cls2 = CLASS_TABLE[cp];
          if (cls2 === 0) cls2 = fillClass(cp);
        }
        if (cls2 === WORD) {
          if (len === 1) {
            h = Math.imul(h ^ b, FNV_PRIME);
            tail = (tail << 8) | b;
          } else {
            ascii = false;
            for (let k = i; k < j; k++) {
              h = Math.imul(h ^ body[k], FNV_PRIME);
              tail = (tail << 8) | body[k];
            }
          }
          i = j;
          b = b2;
          len = len2;
          continue;
        }
        // The apostrophe and the non-word after it both separate; resume after them.
        i = j + len2;
        break;
      }
      i += len;
      break;
    }
    if (skipFirst) {
      skipFirst = false;
      if (countFirst) {
        total++;
        overlong++;
      }
    } else if (reachesEnd && edges.endsInsideWord) {
      total++;
      overlong++;
    } else {
      total++;
      if (end - start > maxWordBytes) overlong++;
      else words.add(start, end - start, h, tail, ascii);
    }
  }
  return { totalWords: total, overlongWords: overlong, words };
}

function scanWhitespace(body: Uint8Array, from: number, settings: CountSettings, edges: ChunkEdges, words: WordTable): ChunkCount {
  const KIND = BYTE_KIND;
  const n = body.length;
  const fold = settings.caseSensitive ? IDENTITY : LOWER_ASCII;
  const maxWordBytes = settings.maxWordBytes;
  let skipFirst = edges.continuesWord;
  const countFirst = edges.continuesWord && !edges.wordCounted;
  let total = 0;
  let overlong = 0;
  let i = from;
  while (i < n) {
    let b = body[i];
    let kind = KIND[b];
    if (kind === 0) {
      i++;
      continue;
    }
    const start = i;
    let h = FNV_OFFSET;
    let tail = 0;
    let kinds = 0;
    do {
      const f = fold[b];
      h = Math.imul(h ^ f, FNV_PRIME);
      tail = (tail << 8) | f;
      kinds |= kind;
      if (++i >= n) break;
      b = body[i];
      kind = KIND[b];
    } while (kind !== 0);
    const end = i;
    const printable = (kinds & PRINTABLE) !== 0;
    const ascii = (kinds & NON_ASCII) === 0;
    if (skipFirst) {
      skipFirst = false;
      if (countFirst && printable) {
        total++;
        overlong++;
      }
    } else if (!printable) {
      // wc never starts a word here, so neither do we (see the module comment).
    } else if (end === n && edges.endsInsideWord) {
      total++;
      overlong++;
    } else {
      total++;
      if (end - start > maxWordBytes) overlong++;
      else words.add(start, end - start, h, tail, ascii);
    }
  }
  return { totalWords: total, overlongWords: overlong, words };
}

/**
 * Checks that the flags can describe this chunk: a flagged edge must be inside a token (a
 * word or apostrophe code point for unicode, a non-whitespace byte for whitespace). Returns
 * a reason when they cannot, else null. This catches a broken coordinator, not every lie.
 */
export function checkEdges(body: Uint8Array, tokenizer: Tokenizer, edges: ChunkEdges): string | null {
  if (edges.wordCounted && !edges.continuesWord) return 'wordCounted without continuesWord';
  if (edges.fileStart && edges.continuesWord) return 'continuesWord on the first chunk of a file';
  if (!edges.continuesWord && !edges.endsInsideWord) return null;
  const n = body.length;
  if (n === 0) return 'word flags on an empty chunk';
  if (tokenizer === 'whitespace') {
    if (edges.continuesWord && WS_TABLE[body[0]] === 1) return 'continuesWord but the chunk starts with whitespace';
    if (edges.endsInsideWord && WS_TABLE[body[n - 1]] === 1) return 'endsInsideWord but the chunk ends with whitespace';
    return null;
  }
  if (edges.continuesWord && classOf(decodeAt(body, 0, n) >>> 3) === SEP) return 'continuesWord but the chunk starts with a separator';
  if (edges.endsInsideWord && lastClass(body) === SEP) return 'endsInsideWord but the chunk ends with a separator';
  return null;
}

/** Class of the last code point of a chunk decoded on its own. */
function lastClass(body: Uint8Array): number {
  const n = body.length;
  const b = body[n - 1];
  if (b < 0x80) return ASCII_TABLE[b];
  if ((b & 0xc0) !== 0x80) return SEP;
  for (let j = n - 2; j >= n - 4 && j >= 0; j--) {
    const lead = body[j];
    if ((lead & 0xc0) === 0x80) continue;
    const len = sequenceLength(lead);
    if (len !== n - j) return SEP;
    const d = decodeAt(body, j, n);
    return (d & 7) === len ? classOf(d >>> 3) : SEP;
  }
  return SEP;
}

/**
 * Orders strings by Unicode code point, which JS `<` does not: it compares UTF-16 units, so an
 * astral character (a surrogate pair, D800–DFFF) would sort before U+E000–U+FFFF. Only the
 * first differing unit matters; remapping surrogates above E000–FFFF restores code point order.
 */
export function compareCodePoints(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    let x = a.charCodeAt(i);
    let y = b.charCodeAt(i);
    if (x === y) continue;
    if (x >= 0xd800) x += x < 0xe000 ? 0x2000 : -0x800;
    if (y >= 0xd800) y += y < 0xe000 ? 0x2000 : -0x800;
    return x - y;
  }
  return a.length - b.length;
}
