/**
 * A reducer's table: one partition's words, folded from the map tasks' shares. While it is
 * small (every partition of a text with a usual vocabulary) its shares are checked and counted
 * in WebAssembly, whose code is compiled before the first share comes, where the JavaScript
 * fold runs cold in a reduce task of a few shares (docs/BENCHMARKS.md, issue 17's seventh pass);
 * past WASM_SHARE_WORDS words, or a total of counts that the scanner's int32 counts could not
 * hold, the words come home and every later share is folded in JavaScript, as every share was
 * before: a table of millions of words grows and is read in one place, and its memory is not
 * held twice.
 */
import { WASM_SHARE_WORDS, WASM_TABLE_BYTE_LIMIT, releaseIdleScanners } from './wasm-scanner.js';
import { IDENTITY } from './word-table.js';
import { HeldWordTable } from './held-table.js';
import { PART_HEADER_LINE, sortPart, writtenPart, type SortPartOptions, type SortedPart } from './sorted-part.js';

export { WASM_SHARE_WORDS };

export class PartitionTable extends HeldWordTable {
  /** The sum of the counts folded in WebAssembly. */
  private folded = 0;

  constructor() {
    // Words are final when they reach a reducer: compared as they are.
    super(IDENTITY, 1 << 16);
  }

  /** True while the words are held (and shares folded) in WebAssembly. */
  get heldInWasm(): boolean {
    return this.wasm !== undefined;
  }

  /**
   * Folds the lines of a share, data[from..], when the words are held in WebAssembly (or can
   * still be): false when they cannot, and foldLines folds them in JavaScript. Throws (via
   * `malformed`) what the JavaScript fold would, before the table is touched.
   */
  override foldHeldLines(data: Uint8Array, from: number, expected: number, malformed: (why: string) => Error): boolean {
    const wasm = this.holder(1 << 16, true);
    if (!wasm) return false;
    const checked = wasm.checkLines(data, from);
    if (typeof checked === 'string') throw malformed(checked);
    if (checked.lines !== expected) throw malformed('line count');
    if (this.folded + checked.total >= WASM_TABLE_BYTE_LIMIT || wasm.size + checked.lines > WASM_SHARE_WORDS) {
      this.settle();
      return false;
    }
    wasm.addLines(from, data.length);
    this.folded += checked.total;
    this.size = wasm.size;
    return true;
  }

  /**
   * Brings the words home, and lets go of the idle scanner instances: the one that held this
   * table grew to hold it (~40 MiB at the limit), and a reducer past the limit is about to need
   * its memory for millions of words.
   */
  protected override settle(): void {
    const held = this.wasm !== undefined;
    super.settle();
    if (held) releaseIdleScanners();
  }

  /**
   * The words as a sorted part ({@link sortPart}'s): sorted and written in WebAssembly while
   * they are held there, where a JavaScript sort runs cold in a reduce task.
   */
  sortedPart(options: SortPartOptions = {}): SortedPart {
    if (!this.wasm) return sortPart(this, options);
    const top = options.top ?? 0;
    if (!Number.isSafeInteger(top) || top < 0) throw new RangeError(`sortPart: top must be a non-negative integer, got ${top}`);
    return writtenPart(this.wasm.partLines(PART_HEADER_LINE, top), options);
  }
}
