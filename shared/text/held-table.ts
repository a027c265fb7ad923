/**
 * A word table whose words may be held in a WebAssembly scanner instance until they are read (a
 * map's chunk table: shared/text/words.ts; a reducer's partition table:
 * shared/text/partition-table.ts). Read, they come home into WordTable's layout and stay here:
 * words added later are added in JavaScript.
 */
import { WasmScanner, scannerChoice } from './wasm-scanner.js';
import { WordTable, type WordColumns } from './word-table.js';

export abstract class HeldWordTable extends WordTable {
  /** The instance holding the words; undefined while they are here. */
  protected wasm: WasmScanner | undefined;
  /** Set once the words live here: they never go to WebAssembly again. */
  protected settled = false;

  /**
   * The instance holding the words, acquired (empty, `capacity` slots) when they can still go
   * there: none is held yet, the table is empty and the WebAssembly scanner is the one chosen.
   * Undefined when the words are to be added here.
   */
  protected holder(capacity: number, caseSensitive: boolean): WasmScanner | undefined {
    if (this.wasm) return this.wasm;
    if (this.settled || this.size !== 0 || scannerChoice() !== 'wasm') return undefined;
    this.wasm = WasmScanner.acquire(capacity, caseSensitive);
    return this.wasm;
  }

  /** Brings the words home from WebAssembly before they are read. */
  protected settle(): void {
    this.settled = true;
    if (!this.wasm) return;
    this.adopt(this.wasm.release());
    this.wasm = undefined;
  }

  override columns(): WordColumns {
    this.settle();
    return super.columns();
  }

  override topEntries(n: number): [string, number][] {
    this.settle();
    return super.topEntries(n);
  }

  override entries(): [string, number][] {
    this.settle();
    return super.entries();
  }
}
