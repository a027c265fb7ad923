/**
 * A WebAssembly module built from wasm/ by `npm run build`, beside the JavaScript it stands in
 * for: loaded once, and chosen by its setting (`auto`: WebAssembly when built, else JavaScript)
 * unless a test or benchmark forced a choice. The word scanner (text/wasm-scanner.ts) and the
 * prime sieve's loops (primes-wasm.ts) are two.
 */
import { readFileSync } from 'node:fs';
import { UsageError } from './errors.js';
import { setting } from './settings.js';

export type WasmChoice = 'wasm' | 'js';

export class BuiltWasm {
  private compiled: WebAssembly.Module | null | undefined;
  private forced: WasmChoice | undefined;

  /**
   * @param path the compiled module (under dist/wasm/)
   * @param settingName the setting that chooses it
   * @param what what it is, for the error when it is asked for and not built
   */
  constructor(
    private readonly path: URL,
    private readonly settingName: 'TALLY_SCANNER' | 'TALLY_SIEVE',
    private readonly what: string,
  ) {}

  /** The compiled module, or null when it is not built (a file that is there but no module is an error). */
  module(): WebAssembly.Module | null {
    if (this.compiled === undefined) {
      let bytes: Buffer | null = null;
      try {
        bytes = readFileSync(this.path);
      } catch {
        // not built
      }
      this.compiled = bytes && new WebAssembly.Module(bytes);
    }
    return this.compiled;
  }

  /** The setting's choice, unless {@link force} chose; `wasm` asked for but not built is a UsageError saying how to build it. */
  choice(): WasmChoice {
    const wanted = this.forced ?? setting(this.settingName);
    if (wanted === 'js') return 'js';
    if (this.module()) return 'wasm';
    if (wanted === 'wasm') throw new UsageError(`${this.settingName}=wasm: ${this.what} is not built (${this.path.pathname}); run npm run build`);
    return 'js';
  }

  /** Chooses for this process (tests, benchmarks); undefined goes back to the setting. */
  force(choice: WasmChoice | undefined): void {
    this.forced = choice;
  }
}
