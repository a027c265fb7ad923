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
  writtenAsStored,
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
import { decimalDigits, FNV_OFFSET as FNV_OFFSET_BINDING, FNV_PRIME as FNV_PRIME_BINDING, IDENTITY, LOWER_ASCII, type WordTable, writeDecimal } from './word-table.js';
import { WASM_TABLE_BYTE_LIMIT, type WasmScanner } from './wasm-scanner.js';
import { HeldWordTable } from './held-table.js';
import { SHARE_HEADER, partitionOf, partitionOfHash } from './word-lines.js';
import { TopK, type ListedTop } from './forming-top.js';

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

/**
 * Where a scanner puts the tokens it counts, in text order: each kept word (with the hash,
 * last bytes and ASCII flag computed while scanning it, as {@link WordTable.add} takes them),
 * and each counted word too long to keep. A word count's sink is its table ({@link ChunkWords});
 * an n-gram count's sink makes n-grams of the tokens (shared/text/ngram-sink.ts).
 */
export interface TokenSink {
  add(src: Uint8Array, start: number, len: number, hash: number, tail: number, ascii: boolean, n: number): void;
  /** A word counted as overlong (longer than maxWordBytes): not kept, but it is a token. */
  overlong(): void;
}

/** Totals of one chunk; its tokens went to a sink. */
export interface TokenCount {
  totalWords: number;
  overlongWords: number;
}

/** The counts of one chunk. */
export interface ChunkCount {
  totalWords: number;
  overlongWords: number;
  /** Distinct kept words of the chunk. */
  words: ChunkWords;
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


/** Copies arena[s, end) to out at p; returns the position after. A long word (CJK text's are) in one call, a short one byte by byte (cheaper than a view). */
function copyBytes(out: Uint8Array, p: number, arena: Uint8Array, s: number, end: number): number {
  if (end - s > 32) {
    out.set(arena.subarray(s, end), p);
    return p + end - s;
  }
  for (let k = s; k < end; k++) out[p++] = arena[k]!;
  return p;
}

/**
 * Distinct words of one chunk. With case folding, ASCII letters are folded while hashing and
 * comparing; other bytes are compared raw, and words that differ only there are merged when
 * written out (toLowerCase of a whole word does not change when ASCII letters inside it change
 * case, so either spelling folds to the same string).
 */
export class ChunkWords extends HeldWordTable implements TokenSink {
  private readonly caseSensitive: boolean;
  private readonly capacity: number;
  /**
   * Set once the WebAssembly scanner has written this table's lines or shares: its words never
   * came home, so the table cannot be read again.
   */
  private writtenOut = false;

  /**
   * @param caseSensitive false folds case
   * @param bodyBytes size of the chunk, to size the table (English: ~1 distinct word per 120 bytes of a 1 MiB chunk)
   */
  constructor(caseSensitive: boolean, bodyBytes: number) {
    // Up to one distinct word per ~24 bytes before growing; 2^15 slots (512 KiB) fit in L2.
    let capacity = 1024;
    while (capacity < 1 << 15 && capacity * 24 < bodyBytes) capacity *= 2;
    super(caseSensitive ? IDENTITY : LOWER_ASCII, capacity);
    this.caseSensitive = caseSensitive;
    this.capacity = capacity;
  }

  /**
   * Scans a chunk (either tokenizer) with the WebAssembly scanner when this table is, or can
   * still be, held there; null when the JavaScript scanner must run instead.
   */
  scanWasm(body: Uint8Array, from: number, settings: CountSettings, edges: ChunkEdges): TokenCount | null {
    const wasm = this.holder(this.capacity, this.caseSensitive);
    if (!wasm) return null;
    if (wasm.scanned + body.length > WASM_TABLE_BYTE_LIMIT) {
      this.settle();
      return null;
    }
    const counted = wasm.scan(body, from, edges, settings.maxWordBytes, settings.tokenizer);
    this.size = wasm.size;
    return counted;
  }

  /** Brings the words home from the WebAssembly scanner before they are read. */
  protected override settle(): void {
    if (this.writtenOut) throw new Error('ChunkWords: its words were written out by the WebAssembly scanner and cannot be read again');
    super.settle();
  }

  /** A word count keeps no overlong word: its totals say how many there were. */
  overlong(): void {}

  private folded(i: number): string {
    const text = this.text(i);
    return this.caseSensitive ? text : text.toLowerCase();
  }

  /** Calls `fn` for each distinct word with its count (a word may be reported more than once). */
  forEach(fn: (word: string, count: number) => void): void {
    this.settle();
    this.eachSlot((slot) => fn(this.folded(slot), this.countOf(slot)));
  }

  /**
   * The lines a table writes: each distinct word once, with its count. A word whose stored
   * bytes are what it writes (all ASCII, whose letters were folded while scanning; or UTF-8
   * with case kept, or with no code point that toLowerCase changes: most words of most
   * scripts) is written from the arena as it is. The rest are decoded (and folded), merged with
   * each other, and with a stored word they come out as (KELVIN SIGN "Kelvin" and "kelvin"):
   * those are `others`.
   */
  private lineWords(): { handles: Int32Array; asStored: Uint8Array; counts: Float64Array; others: Map<string, number> } {
    const handles = this.slotHandles();
    const asStored = new Uint8Array(handles.length);
    const counts = new Float64Array(handles.length);
    const others = new Map<string, number>();
    const arena = this.arena;
    for (let h = 0; h < handles.length; h++) {
      const i = handles[h]!;
      counts[h] = this.countOf(i);
      const s = this.startOf(i);
      if (this.isAscii(i) || writtenAsStored(arena, s, s + this.byteLength(i), this.caseSensitive)) {
        asStored[h] = 1;
      } else {
        const w = this.folded(i);
        others.set(w, (others.get(w) ?? 0) + counts[h]!);
      }
    }
    for (const [w, n] of others) {
      const slot = this.find(Buffer.from(w, 'utf8'));
      if (slot < 0) continue;
      // Handles are in slot order.
      const h = lowerBound(handles, slot);
      if (asStored[h] !== 1) continue;
      counts[h] += n;
      others.delete(w);
    }
    return { handles, asStored, counts, others };
  }

  /**
   * The WebAssembly scanner holding this table, which then writes its lines itself (after
   * folding, in JavaScript, the words whose written form is not their stored bytes); undefined
   * when the table is here. The table is spent then: its words never come home (for millions of
   * distinct words, copying them into WordTable's layout cost a third of the map).
   */
  private writingScanner(): WasmScanner | undefined {
    const scanner = this.wasm;
    if (!scanner) return undefined;
    this.wasm = undefined;
    this.settled = true;
    this.writtenOut = true;
    scanner.foldUnstored(this.caseSensitive);
    return scanner;
  }

  /**
   * The table as UTF-8 lines `word\tcount\n` (words never contain \t or \n), each word once
   * (see {@link lineWords}).
   */
  encodeLines(): { bytes: Uint8Array; lines: number } {
    const scanner = this.writingScanner();
    if (scanner) {
      const written = scanner.encodeWords(1, 0);
      scanner.discard();
      return { bytes: written.bytes[0]!, lines: written.lines[0]! };
    }
    this.settle();
    const { handles, asStored, counts, others } = this.lineWords();
    let size = 0;
    let lines = 0;
    for (let h = 0; h < handles.length; h++) {
      if (asStored[h] !== 1) continue;
      size += this.byteLength(handles[h]!) + 2 + decimalDigits(counts[h]!);
      lines++;
    }
    // The other lines are encoded in one call rather than one per word.
    let tailText = '';
    for (const [w, n] of others) {
      tailText += `${w}\t${n}\n`;
      lines++;
    }
    const tail = Buffer.from(tailText, 'utf8');
    size += tail.length;
    const out = new Uint8Array(size);
    const arena = this.arena;
    let p = 0;
    for (let h = 0; h < handles.length; h++) {
      if (asStored[h] !== 1) continue;
      const i = handles[h]!;
      const s = this.startOf(i);
      const end = s + this.byteLength(i);
      p = copyBytes(out, p, arena, s, end);
      out[p++] = 0x09;
      p = writeDecimal(out, p, counts[h]!);
      out[p++] = 0x0a;
    }
    out.set(tail, p);
    return { bytes: out, lines };
  }

  /**
   * The table as `partitions` shares of lines (see {@link encodeLines}), each word in the share
   * its final UTF-8 bytes hash to ({@link partitionOf}): what a partitioned job's map sends to
   * its reducers, without encoding the lines once and splitting them again. Each share starts
   * with `tally-share 1 <lines>\n`.
   */
  encodeShares(partitions: number): Uint8Array[] {
    return this.encodeSharesListing(partitions, 0).shares;
  }

  /**
   * {@link encodeShares}, and the table's `listed` most frequent words with the largest count of
   * the rest (what a task reports of itself while its job forms: shared/text/forming-top.ts),
   * found in the same pass.
   */
  encodeSharesListing(partitions: number, listed: number): { shares: Uint8Array[]; top: ListedTop } {
    const scanner = this.writingScanner();
    if (scanner) {
      const written = scanner.encodeWords(partitions, listed, (lines) => Buffer.from(`${SHARE_HEADER} ${lines}\n`, 'latin1'));
      scanner.discard();
      // In TopK's order (the scanner's is its heap's).
      const top = new TopK<string>(listed);
      for (const [word, count] of written.top) top.offer(count, word);
      return { shares: written.bytes, top: { rows: top.kept().map(([word, count]): [string, number] => [word, count]), unlisted: Math.max(top.unlisted, written.unlisted), beyond: 0 } };
    }
    this.settle();
    const { handles, asStored, counts, others } = this.lineWords();
    const top = new TopK<number | string>(listed);
    const arena = this.arena;
    const sizes = new Array<number>(partitions).fill(0);
    const lines = new Array<number>(partitions).fill(0);
    const partitionOfHandle = new Uint8Array(handles.length);
    for (let h = 0; h < handles.length; h++) {
      if (asStored[h] !== 1) continue;
      const i = handles[h]!;
      const s = this.startOf(i);
      const p = partitionOf(arena, s, s + this.byteLength(i), partitions);
      partitionOfHandle[h] = p;
      sizes[p] += this.byteLength(i) + 2 + decimalDigits(counts[h]!);
      lines[p]++;
      if (listed > 0) top.offer(counts[h]!, i);
    }
    // The other lines are encoded in one call per share rather than one per word.
    const tailTexts = new Array<string>(partitions).fill('');
    for (const [w, n] of others) {
      const p = partitionOfText(w, partitions);
      tailTexts[p] += `${w}\t${n}\n`;
      lines[p]++;
      if (listed > 0) top.offer(n, w);
    }
    const shares: Uint8Array[] = [];
    const at: number[] = [];
    const tails: Buffer[] = [];
    for (let p = 0; p < partitions; p++) {
      const header = Buffer.from(`${SHARE_HEADER} ${lines[p]!}\n`, 'latin1');
      const tail = Buffer.from(tailTexts[p]!, 'utf8');
      const share = new Uint8Array(header.length + sizes[p]! + tail.length);
      share.set(header);
      shares.push(share);
      at.push(header.length);
      tails.push(tail);
    }
    for (let h = 0; h < handles.length; h++) {
      if (asStored[h] !== 1) continue;
      const i = handles[h]!;
      const out = shares[partitionOfHandle[h]!]!;
      let p = at[partitionOfHandle[h]!]!;
      const s = this.startOf(i);
      const end = s + this.byteLength(i);
      p = copyBytes(out, p, arena, s, end);
      out[p++] = 0x09;
      p = writeDecimal(out, p, counts[h]!);
      out[p++] = 0x0a;
      at[partitionOfHandle[h]!] = p;
    }
    for (let p = 0; p < partitions; p++) shares[p]!.set(tails[p]!, at[p]!);
    const rows = top.kept().map(([item, count]): [string, number] => [typeof item === 'number' ? this.text(item) : item, count]);
    return { shares, top: { rows, unlisted: top.unlisted, beyond: 0 } };
  }
}

/** The index of the first element of a sorted array that is at least `value`. */
function lowerBound(sorted: Int32Array, value: number): number {
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (sorted[mid]! < value) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}


/** The partition of a word given as a string: {@link partitionOf} of its UTF-8 bytes, without encoding it. */
export function partitionOfText(word: string, partitions: number): number {
  let h = FNV_OFFSET_BINDING;
  for (let k = 0; k < word.length; k++) {
    let cp = word.charCodeAt(k);
    if (cp >= 0xd800 && cp <= 0xdbff && k + 1 < word.length) {
      const low = word.charCodeAt(k + 1);
      if (low >= 0xdc00 && low <= 0xdfff) {
        cp = 0x10000 + ((cp - 0xd800) << 10) + (low - 0xdc00);
        k++;
      }
    } else if (cp >= 0xd800 && cp <= 0xdfff) {
      cp = 0xfffd; // a lone surrogate encodes as U+FFFD, as Buffer.from does
    }
    if (cp < 0x80) h = Math.imul(h ^ cp, FNV_PRIME_BINDING);
    else if (cp < 0x800) {
      h = Math.imul(h ^ (0xc0 | (cp >> 6)), FNV_PRIME_BINDING);
      h = Math.imul(h ^ (0x80 | (cp & 0x3f)), FNV_PRIME_BINDING);
    } else if (cp < 0x10000) {
      h = Math.imul(h ^ (0xe0 | (cp >> 12)), FNV_PRIME_BINDING);
      h = Math.imul(h ^ (0x80 | ((cp >> 6) & 0x3f)), FNV_PRIME_BINDING);
      h = Math.imul(h ^ (0x80 | (cp & 0x3f)), FNV_PRIME_BINDING);
    } else {
      h = Math.imul(h ^ (0xf0 | (cp >> 18)), FNV_PRIME_BINDING);
      h = Math.imul(h ^ (0x80 | ((cp >> 12) & 0x3f)), FNV_PRIME_BINDING);
      h = Math.imul(h ^ (0x80 | ((cp >> 6) & 0x3f)), FNV_PRIME_BINDING);
      h = Math.imul(h ^ (0x80 | (cp & 0x3f)), FNV_PRIME_BINDING);
    }
  }
  return partitionOfHash(h, partitions);
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
 * @param body the chunk's bytes
 * @param settings tokenizer, case folding and the overlong limit
 * @param edges the chunk's flags
 * @param into a table to add the chunk's words to (several chunks of one task share one);
 *   default a new one. Words are copied into the table: `body` may be reused afterwards.
 */
export function countChunk(body: Uint8Array, settings: CountSettings, edges: ChunkEdges, into?: ChunkWords): ChunkCount {
  const words = into ?? new ChunkWords(settings.caseSensitive, body.length);
  const { totalWords, overlongWords } = tokenizeChunk(body, settings, edges, words);
  return { totalWords, overlongWords, words };
}

/**
 * Tokenizes one chunk into `sink` under the same rules as {@link countChunk} (which is this
 * with a word table for a sink): every counted token reaches the sink once, in text order.
 */
export function tokenizeChunk(body: Uint8Array, settings: CountSettings, edges: ChunkEdges, sink: TokenSink): TokenCount {
  const from = textStart(body, edges);
  const scanned = sink instanceof ChunkWords && sink.scanWasm(body, from, settings, edges);
  if (scanned) return scanned;
  return settings.tokenizer === 'whitespace' ? scanWhitespace(body, from, settings, edges, sink) : scanUnicode(body, from, settings, edges, sink);
}

function scanUnicode(body: Uint8Array, from: number, settings: CountSettings, edges: ChunkEdges, words: TokenSink): TokenCount {
  // Locals, not imported bindings: an imported binding costs a cell load and a TDZ check on
  // every read in the hot loop.
  const ASCII_CLASS = ASCII_TABLE;
  const CLASS_TABLE = CP_TABLE;
  const WORD = WORD_CLASS;
  const APOS = APOS_CLASS;
  const FNV_OFFSET = FNV_OFFSET_BINDING;
  const FNV_PRIME = FNV_PRIME_BINDING;
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
        // Ended by an ASCII separator (anything ASCII but a word byte or '): the common case.
        if (i < n && b < 0x80 && b !== 0x27) {
          end = i;
          i++;
          break;
        }
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
        words.overlong();
      }
    } else if (reachesEnd && edges.endsInsideWord) {
      total++;
      overlong++;
      words.overlong();
    } else {
      total++;
      if (end - start > maxWordBytes) {
        overlong++;
        words.overlong();
      } else words.add(body, start, end - start, h, tail, ascii, 1);
    }
  }
  return { totalWords: total, overlongWords: overlong };
}

function scanWhitespace(body: Uint8Array, from: number, settings: CountSettings, edges: ChunkEdges, words: TokenSink): TokenCount {
  const KIND = BYTE_KIND;
  const FNV_OFFSET = FNV_OFFSET_BINDING;
  const FNV_PRIME = FNV_PRIME_BINDING;
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
        words.overlong();
      }
    } else if (!printable) {
      // wc never starts a word here, so neither do we (see the module comment).
    } else if (end === n && edges.endsInsideWord) {
      total++;
      overlong++;
      words.overlong();
    } else {
      total++;
      if (end - start > maxWordBytes) {
        overlong++;
        words.overlong();
      } else words.add(body, start, end - start, h, tail, ascii, 1);
    }
  }
  return { totalWords: total, overlongWords: overlong };
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
