/**
 * Word n-grams of a task's text: a {@link TokenSink} that the tokenizer of words.ts feeds, so an
 * n-gram is made of exactly the words `tally count` counts. An n-gram is N consecutive words of
 * one file, written as the folded words joined by one space (no word holds a space under either
 * tokenizer); one that holds an overlong word is counted as overlong and not kept.
 *
 * A task sees only its own entries (byte ranges or chunks). The n-grams that lie wholly inside an
 * entry are counted here; for the ones that straddle entries, each entry reports its first and
 * last N-1 words ({@link NgramEdge}), and the coordinator joins neighbouring entries of a file
 * in order (shared/kinds/ngrams.ts): every n-gram is counted once, wherever the cuts fall.
 */
import type { EntryObserver } from './file-input.js';
import { ChunkWords, type TokenSink } from './words.js';
import { FNV_OFFSET, FNV_PRIME, IDENTITY, LOWER_ASCII } from './word-table.js';

/** A word at an entry's edge: its folded text, or null for an overlong word. */
export type EdgeWord = string | null;

/**
 * What an entry tells the coordinator about its edges:
 * [input index, offset of the entry in its file, words in the entry, first words, last words]
 * (at most N-1 of each; all of them when the entry has fewer).
 */
export type NgramEdge = [file: number, offset: number, words: number, head: EdgeWord[], tail: EdgeWord[]];

const SPACE = 0x20;

/** Counts the n-grams of the tokens it is given, entry by entry. */
export class NgramSink implements TokenSink, EntryObserver {
  /** The n-grams wholly inside an entry, kept (not overlong). */
  readonly grams: ChunkWords;
  /** N-grams wholly inside an entry, overlong ones included. */
  totalGrams = 0;
  overlongGrams = 0;
  /** One per entry, in the order the entries were read. */
  readonly edges: NgramEdge[] = [];

  private readonly n: number;
  private readonly caseSensitive: boolean;
  private readonly fold: Uint8Array;
  /** The entry's last n words (null: overlong), ring-indexed by word number mod n. */
  private readonly ring: Array<Uint8Array | null>;
  private readonly ringAscii: boolean[];
  private head: Array<Uint8Array | null> = [];
  private words = 0;
  private file = -1;
  private offset = 0;
  private scratch = new Uint8Array(1024);

  /**
   * @param n words per n-gram (1 or more)
   * @param caseSensitive false folds case, as a word count does
   * @param bodyBytes bytes the task will read, to size the table
   */
  constructor(n: number, caseSensitive: boolean, bodyBytes: number) {
    this.n = n;
    this.caseSensitive = caseSensitive;
    this.fold = caseSensitive ? IDENTITY : LOWER_ASCII;
    this.grams = new ChunkWords(caseSensitive, bodyBytes);
    this.ring = new Array<Uint8Array | null>(n).fill(null);
    this.ringAscii = new Array<boolean>(n).fill(true);
  }

  start(file: number, offset: number): void {
    this.file = file;
    this.offset = offset;
    this.words = 0;
    this.head = [];
  }

  end(): void {
    const edge = this.n - 1;
    const tail: EdgeWord[] = [];
    for (let k = Math.max(0, this.words - edge); k < this.words; k++) tail.push(this.text(this.ring[k % this.n]!));
    this.edges.push([this.file, this.offset, this.words, this.head.map((word) => this.text(word)), tail]);
  }

  add(src: Uint8Array, start: number, len: number, _hash: number, _tail: number, ascii: boolean): void {
    this.push(src.slice(start, start + len), ascii);
  }

  overlong(): void {
    this.push(null, true);
  }

  private text(word: Uint8Array | null): EdgeWord {
    if (word === null) return null;
    // As a word table decodes its words: ill-formed bytes become U+FFFD, a BOM stays.
    const text = Buffer.from(word.buffer, word.byteOffset, word.length).toString('utf8');
    return this.caseSensitive ? text : text.toLowerCase();
  }

  private push(word: Uint8Array | null, ascii: boolean): void {
    const n = this.n;
    // The ring keeps n words; overlong ones are kept as null, an empty Uint8Array never occurs.
    this.ring[this.words % n] = word;
    this.ringAscii[this.words % n] = ascii;
    if (this.head.length < n - 1) this.head.push(word);
    this.words++;
    if (this.words >= n) this.count();
  }

  /** Counts the n-gram that ends at the word just pushed. */
  private count(): void {
    const n = this.n;
    this.totalGrams++;
    let len = n - 1;
    let ascii = true;
    for (let k = this.words - n; k < this.words; k++) {
      const word = this.ring[k % n];
      if (word === null) {
        this.overlongGrams++;
        return;
      }
      len += word.length;
      ascii &&= this.ringAscii[k % n]!;
    }
    if (this.scratch.length < len) this.scratch = new Uint8Array(Math.max(len, this.scratch.length * 2));
    const out = this.scratch;
    const fold = this.fold;
    let h = FNV_OFFSET;
    let tail = 0;
    let p = 0;
    for (let k = this.words - n; k < this.words; k++) {
      if (p > 0) {
        out[p++] = SPACE;
        h = Math.imul(h ^ SPACE, FNV_PRIME);
        tail = (tail << 8) | SPACE;
      }
      const word = this.ring[k % n]!;
      for (let i = 0; i < word.length; i++) {
        const b = word[i]!;
        const f = fold[b]!;
        out[p++] = b;
        h = Math.imul(h ^ f, FNV_PRIME);
        tail = (tail << 8) | f;
      }
    }
    this.grams.add(out, 0, len, h, tail, ascii, 1);
  }
}
