/**
 * The WebAssembly word scanner (wasm/word-scanner.ts, compiled by `npm run build` into
 * dist/wasm/word-scanner.wasm): loading it, feeding it chunks, and handing its table back to
 * JavaScript.
 *
 * It runs either tokenizer's scan and the word table's inserts, the two halves of a count's map,
 * in WebAssembly, with SIMD over ASCII text (docs/BENCHMARKS.md has the A/B), and writes the
 * task's lines (JavaScript folds the few words whose written form is not their stored bytes, and
 * gives them back: {@link WasmScanner.foldUnstored}). Its table can also be handed over in
 * WordTable's layout. A map writes the same lines whichever scanner ran, perhaps in another
 * order; tests/wasm-scanner.test.ts checks it, and the tokenizer's tests run on both.
 *
 * A reducer's table is held in an instance too while it is small (shared/text/partition-table.ts):
 * {@link WasmScanner.checkLines}, {@link WasmScanner.addLines}, {@link WasmScanner.partLines}.
 *
 * Which one runs is TALLY_SCANNER (`auto`: WebAssembly when built, else JavaScript), or
 * {@link useScanner} in tests and benchmarks.
 */
import { ASCII_CLASS, CLASS_TABLE, caseOf, fillClass } from './char-classes.js';
import { BuiltWasm, type WasmChoice } from '../built-wasm.js';
import { ASCII_FLAG } from './word-table.js';
import type { Tokenizer } from './chunker.js';

const WASM_PATH = new URL('../../wasm/word-scanner.wasm', import.meta.url);
/** scan's answer when the chunk is done; any other answer is where to start again. */
const DONE = -1;
/** checkLines' answers for a malformed line, with foldLines' reasons (shared/text/word-lines.ts). */
const LINE_ERRORS = new Map([
  [-2, 'bad line'],
  [-3, 'bad count'],
]);
/**
 * A table leaves WebAssembly before it has scanned 2^30 bytes: its int32 counts then stay below
 * 2^30, where the JavaScript table would move them to wide counts (which the port leaves out).
 */
export const WASM_TABLE_BYTE_LIMIT = 2 ** 30;

/**
 * Distinct words a reducer's table holds in WebAssembly at most (~8 MiB of slots there): see
 * PartitionTable (partition-table.ts), and the embedded coordinator's stand-in, which reduces a
 * partition only while it fits.
 */
export const WASM_SHARE_WORDS = 1 << 18;

const NO_HEADER = new Uint8Array(0);

interface ScannerExports {
  memory: WebAssembly.Memory;
  tablesAt(): number;
  bodyBuffer(n: number): number;
  reset(capacity: number, caseSensitive: number): void;
  chunk(continuesWord: number, wordCounted: number, endsInsideWord: number, maxWordBytes: number): void;
  scan(from: number, n: number, whitespace: number): number;
  totalWords(): number;
  overlongWords(): number;
  needed(): number;
  finish(): number;
  capacity(): number;
  caseTableAt(): number;
  takeUnstored(caseSensitive: number): number;
  unstoredList(): number;
  unstoredWords(): number;
  wordBuffer(n: number): number;
  addCounted(len: number, n: number): void;
  encodeWords(partitions: number, listed: number): number;
  sharesAt(): number;
  words(): number;
  arena(): number;
  arenaBytes(): number;
  checkLines(from: number, n: number): number;
  checkedTotal(): number;
  addLines(from: number, n: number): void;
  sortWords(): number;
  writePart(): number;
  partBytes(): number;
}

/** A scanner's table, copied out of WebAssembly memory into the layout WordTable uses. */
export interface ScannedTable {
  slots: Int32Array;
  arena: Uint8Array;
  arenaUsed: number;
  size: number;
}

/**
 * The words of a table as share lines, written by the scanner: per partition its lines and
 * bytes, and the `listed` most frequent words (see {@link WasmScanner.encodeWords}).
 */
export interface WrittenShares {
  lines: number[];
  /** Each partition's header (see {@link WasmScanner.encodeWords}), then its lines. */
  bytes: Uint8Array[];
  top: [string, number][];
  /** The largest count of a word not in `top`. */
  unlisted: number;
}

/** The edge flags of one chunk (see countChunk in words.ts). */
export interface ScanEdges {
  continuesWord: boolean;
  wordCounted: boolean;
  endsInsideWord: boolean;
}

export type ScannerChoice = WasmChoice;

const built = new BuiltWasm(WASM_PATH, 'TALLY_SCANNER', 'the WebAssembly scanner');
const idle: WasmScanner[] = [];

/**
 * The scanner counts use: TALLY_SCANNER, unless {@link useScanner} chose. `wasm` when asked for
 * but not built is a UsageError saying how to build it.
 */
export function scannerChoice(): ScannerChoice {
  return built.choice();
}

/** Chooses the scanner for this process (tests, benchmarks); undefined goes back to TALLY_SCANNER. */
export function useScanner(choice: ScannerChoice | undefined): void {
  built.force(choice);
}

/**
 * Lets go of the idle instances, whose memory (grown to the biggest table each held, and never
 * shrunk) is then the garbage collector's: for a process that mapped only for a while (the
 * embedded coordinator's stand-in worker).
 */
export function releaseIdleScanners(): void {
  idle.length = 0;
}

/**
 * One WebAssembly instance holding one table at a time. Instances are reused: {@link release}
 * puts one back once its table has been copied out.
 */
export class WasmScanner {
  private readonly exports: ScannerExports;
  /** Bytes scanned into the current table (see {@link WASM_TABLE_BYTE_LIMIT}). */
  scanned = 0;

  private constructor(module: WebAssembly.Module) {
    this.exports = new WebAssembly.Instance(module, {}).exports as unknown as ScannerExports;
    const at = this.exports.tablesAt();
    const memory = new Uint8Array(this.exports.memory.buffer);
    memory.set(CLASS_TABLE, at);
    memory.set(ASCII_CLASS, at + CLASS_TABLE.length + 256);
  }

  /** An idle instance with an empty table of `capacity` slots, or undefined when not built. */
  static acquire(capacity: number, caseSensitive: boolean): WasmScanner | undefined {
    const module = built.module();
    if (!module) return undefined;
    const scanner = idle.pop() ?? new WasmScanner(module);
    scanner.exports.reset(capacity, caseSensitive ? 1 : 0);
    scanner.scanned = 0;
    return scanner;
  }

  /** Scans body[from, end) into the table under the tokenizer's rules; returns the chunk's totals. */
  scan(body: Uint8Array, from: number, edges: ScanEdges, maxWordBytes: number, tokenizer: Tokenizer): { totalWords: number; overlongWords: number } {
    const x = this.exports;
    const n = body.length;
    x.chunk(edges.continuesWord ? 1 : 0, edges.wordCounted ? 1 : 0, edges.endsInsideWord ? 1 : 0, maxWordBytes);
    const at = x.bodyBuffer(n);
    new Uint8Array(x.memory.buffer, at, n).set(body);
    const whitespace = tokenizer === 'whitespace' ? 1 : 0;
    let next = x.scan(from, n, whitespace);
    while (next !== DONE) {
      // A code point met for the first time in this instance: its class, from the shared cache.
      const cp = x.needed();
      const cls = CLASS_TABLE[cp] || fillClass(cp);
      new Uint8Array(x.memory.buffer)[x.tablesAt() + cp] = cls;
      next = x.scan(next, n, whitespace);
    }
    this.scanned += n;
    return { totalWords: x.totalWords(), overlongWords: x.overlongWords() };
  }

  /** Distinct words so far. */
  get size(): number {
    return this.exports.words();
  }

  /**
   * Moves out of the table the words whose line is not their stored bytes (a code point
   * toLowerCase changes, with case folded; ill-formed UTF-8, which a whitespace token may be),
   * folds them as WordTable's writer does (decoded as UTF-8, U+FFFD for what is ill-formed, then
   * toLowerCase), and counts them again under that form, where a word already written so (its
   * lower-case spelling) merges with them. Afterwards every word's stored bytes are its line's:
   * call before {@link encodeWords}.
   */
  foldUnstored(caseSensitive: boolean): void {
    const x = this.exports;
    for (let r = x.takeUnstored(caseSensitive ? 1 : 0); r !== DONE; r = x.takeUnstored(caseSensitive ? 1 : 0)) {
      // A code point this instance has not met in a word yet: whether toLowerCase changes it.
      const cp = x.needed();
      new Uint8Array(x.memory.buffer)[x.caseTableAt() + cp] = caseOf(cp);
    }
    const n = x.unstoredWords();
    if (n === 0) return;
    const list = new Int32Array(x.memory.buffer, x.unstoredList(), n * 3).slice();
    const arena = Buffer.from(x.memory.buffer, x.arena(), x.arenaBytes());
    const folded: Buffer[] = [];
    for (let k = 0; k < n; k++) {
      const text = arena.toString('utf8', list[k * 3]!, list[k * 3]! + list[k * 3 + 1]!);
      folded.push(Buffer.from(caseSensitive ? text : text.toLowerCase(), 'utf8'));
    }
    for (let k = 0; k < n; k++) {
      const word = folded[k]!;
      // The buffer first: making room for a longer word may grow the memory, and a view taken
      // before that would be of the old, detached buffer.
      const at = x.wordBuffer(word.length);
      new Uint8Array(x.memory.buffer, at, word.length).set(word);
      x.addCounted(word.length, list[k * 3 + 2]!);
    }
  }

  /**
   * The table's words as `partitions` shares of lines `word\tcount\n` (each in the share
   * partitionOf gives it), and its `listed` most frequent words: what
   * ChunkWords.encodeSharesListing writes, written here without a JavaScript step per word.
   * Call after {@link foldUnstored}.
   * @param header what each partition's bytes start with, given its number of lines (a share's
   *   first line), copied out with them in one allocation
   */
  encodeWords(partitions: number, listed: number, header: (lines: number) => Uint8Array = () => NO_HEADER): WrittenShares {
    const x = this.exports;
    const head = x.encodeWords(partitions, listed);
    const buffer = x.memory.buffer;
    const ints = new Int32Array(buffer, head, partitions * 2 + 2 + listed * 3);
    const lines = Array.from(ints.subarray(0, partitions));
    const sizes = Array.from(ints.subarray(partitions, partitions * 2));
    const kept = ints[partitions * 2]!;
    const unlisted = ints[partitions * 2 + 1]!;
    const arena = Buffer.from(buffer, x.arena(), x.arenaBytes());
    const top: [string, number][] = [];
    for (let k = 0; k < kept; k++) {
      const at = partitions * 2 + 2 + k * 3;
      top.push([arena.toString('utf8', ints[at + 1]!, ints[at + 1]! + ints[at + 2]!), ints[at]!]);
    }
    const bytes: Uint8Array[] = [];
    let offset = x.sharesAt();
    for (let p = 0; p < partitions; p++) {
      const head = header(lines[p]!);
      const out = new Uint8Array(head.length + sizes[p]!);
      out.set(head);
      out.set(new Uint8Array(buffer, offset, sizes[p]!), head.length);
      bytes.push(out);
      offset += sizes[p]!;
    }
    return { lines, bytes, top, unlisted };
  }

  /**
   * Checks data[from..] as lines `word\tcount\n` (what foldLines accepts; the words' UTF-8 is
   * the caller's to check) and keeps them for {@link addLines}. Returns how many lines there
   * are and the sum of their counts, or why they are malformed ('bad line', 'bad count').
   */
  checkLines(data: Uint8Array, from: number): { lines: number; total: number } | string {
    const x = this.exports;
    const n = data.length;
    const at = x.bodyBuffer(n);
    new Uint8Array(x.memory.buffer, at, n).set(data);
    const lines = x.checkLines(from, n);
    if (lines < 0) return LINE_ERRORS.get(lines) ?? 'bad line';
    return { lines, total: x.checkedTotal() };
  }

  /**
   * Counts the lines {@link checkLines} last accepted into the table, each word as it is (the
   * table must keep case). Its counts are int32s: the caller keeps the table's total below
   * {@link WASM_TABLE_BYTE_LIMIT}.
   */
  addLines(from: number, n: number): void {
    this.exports.addLines(from, n);
  }

  /**
   * The table's words as a sorted part's lines (count descending, then bytes ascending:
   * shared/text/sorted-part.ts), copied out behind `header`, and the first `top` of them decoded.
   * The table stays as it was.
   */
  partLines(header: Uint8Array, top: number): { words: number; bytes: Uint8Array; top: [string, number][] } {
    const x = this.exports;
    const words = x.words();
    const order = x.sortWords();
    const at = x.writePart();
    const length = x.partBytes();
    const buffer = x.memory.buffer;
    const bytes = new Uint8Array(header.length + length);
    bytes.set(header);
    bytes.set(new Uint8Array(buffer, at, length), header.length);
    const slots = new Uint32Array(buffer, order, Math.min(top, words));
    const ints = new Int32Array(buffer);
    const arena = Buffer.from(buffer, x.arena(), x.arenaBytes());
    const rows: [string, number][] = [];
    for (const slot of slots) {
      const start = ints[slot >>> 2]! - 1;
      rows.push([arena.toString('utf8', start, start + (ints[(slot >>> 2) + 1]! & ~ASCII_FLAG)), ints[(slot >>> 2) + 3]!]);
    }
    return { words, bytes, top: rows };
  }

  /** Copies the table out and puts the instance back for the next table. */
  release(): ScannedTable {
    const x = this.exports;
    const at = x.finish();
    const buffer = x.memory.buffer;
    const slots = new Int32Array(buffer, at, x.capacity() * 4).slice();
    const arenaUsed = x.arenaBytes();
    // Room to grow as the JavaScript table would have it (it appends if more words come).
    const arena = new Uint8Array(Math.max(arenaUsed, x.capacity() * 4));
    arena.set(new Uint8Array(buffer, x.arena(), arenaUsed));
    const table = { slots, arena, arenaUsed, size: x.words() };
    idle.push(this);
    return table;
  }

  /** Puts the instance back without copying its table out (its words are written elsewhere). */
  discard(): void {
    idle.push(this);
  }
}
