/**
 * The WebAssembly crossing loops of the prime sieve (wasm/prime-sieve.ts, compiled by
 * `npm run build` into dist/wasm/prime-sieve.wasm): lending its instances to
 * shared/primes-sieve.ts, which sieves into an instance's memory and has it cross off the small
 * primes' multiples, keep the large primes' buckets and cross from them, and count the bits.
 * Same counts either way; tests/primes.test.ts runs its checks against primesieve on both.
 *
 * Which one runs is TALLY_SIEVE (`auto`: WebAssembly when built, else JavaScript), or the
 * `sieve` a caller of countPrimes names (the tests run both).
 */
import { BuiltWasm, type WasmChoice } from './built-wasm.js';

const WASM_PATH = new URL('../wasm/prime-sieve.wasm', import.meta.url);

export type SieveChoice = WasmChoice;

interface SieveExports {
  memory: WebAssembly.Memory;
  segmentBytes(): number;
  smallCapacity(): number;
  segmentAt(): number;
  primesAt(): number;
  nextAt(): number;
  wheelAt(): number;
  crossSmallPrimes(length: number, count: number): void;
  popcount(words: number): number;
  largePrimesAt(): number;
  bucketsInit(count: number, largePrimes: number): number;
  bucketsActivate(s: number, startByte: number, endInteger: number, from: number): number;
  bucketsCross(s: number, length: number, last: number): void;
}

const built = new BuiltWasm(WASM_PATH, 'TALLY_SIEVE', 'the WebAssembly sieve');
const idle: WasmSieve[] = [];

/** The sieve counts use: TALLY_SIEVE. `wasm` when asked for but not built is a UsageError saying how to build it. */
export function sieveChoice(): SieveChoice {
  return built.choice();
}

/**
 * One instance, lent to one count at a time (a count awaits between segments, and another may
 * run meanwhile): its segment, the small primes' state, the primes themselves and the large
 * primes' buckets live in its memory; its views are taken again when {@link prepareBuckets}
 * grew it, before a count uses them.
 */
export class WasmSieve {
  /** The whole segment region; a count uses its first bytes. */
  segment!: Uint8Array;
  /** Each small prime's next wheel turn, relative to the segment (crossSmallPrimes' `next`). */
  next!: Int32Array;
  /** Each small prime's next wheel index (crossSmallPrimes' `wheel`). */
  wheel!: Uint8Array;
  private primes!: Uint32Array;
  private readonly exports: SieveExports;
  /** The sieving primes copied in (the array, and how many of it), to copy them once per set. */
  private copiedFrom: Uint32Array | null = null;
  private copiedCount = 0;

  private constructor(module: WebAssembly.Module) {
    this.exports = new WebAssembly.Instance(module, {}).exports as unknown as SieveExports;
    this.takeViews();
  }

  /** Views of the instance's regions, taken again after its memory grew (the old ones are detached). */
  private takeViews(): void {
    const { buffer } = this.exports.memory;
    const capacity = this.exports.smallCapacity();
    this.segment = new Uint8Array(buffer, this.exports.segmentAt(), this.exports.segmentBytes());
    this.primes = new Uint32Array(buffer, this.exports.primesAt(), capacity);
    this.next = new Int32Array(buffer, this.exports.nextAt(), capacity);
    this.wheel = new Uint8Array(buffer, this.exports.wheelAt(), capacity);
  }

  /**
   * An instance for a count with `smallCount` small primes over segments of `segmentBytes`, or
   * null when the module is not built or was built for other sizes (the JavaScript loop runs).
   * Give it back with {@link release}.
   */
  static acquire(segmentBytes: number, smallCount: number): WasmSieve | null {
    const module = built.module();
    if (!module) return null;
    const sieve = idle.pop() ?? new WasmSieve(module);
    if (sieve.segment.length !== segmentBytes || smallCount > sieve.primes.length) {
      idle.push(sieve);
      return null;
    }
    return sieve;
  }

  /** Makes the first `count` of `primes` (sorted, each below the segment's bytes) the instance's. */
  usePrimes(primes: Uint32Array, count: number): void {
    if (this.copiedFrom === primes && this.copiedCount >= count) return;
    this.primes.set(primes.subarray(0, count));
    this.copiedFrom = primes;
    this.copiedCount = count;
  }

  /** crossSmallPrimes(segment, length, primes, count, next, wheel) of primes-sieve.ts. */
  crossSmallPrimes(length: number, count: number): void {
    this.exports.crossSmallPrimes(length, count);
  }

  /** Bits set in the segment's first `words` 32-bit words. */
  popcount(words: number): number {
    return this.exports.popcount(words);
  }

  /**
   * Empty buckets for a count's large primes, `buckets` of them (a power of two, as Buckets in
   * primes-sieve.ts makes), room for every one of `largePrimes` (sorted) at once, which are
   * copied in. Take the views (segment, next, wheel) after this: the memory may have grown.
   * False when the instance cannot hold them (the JavaScript buckets then cross into this
   * instance's segment).
   */
  prepareBuckets(buckets: number, largePrimes: Uint32Array): boolean {
    const before = this.exports.memory.buffer;
    const ok = this.exports.bucketsInit(buckets, largePrimes.length) === 0;
    if (this.exports.memory.buffer !== before) this.takeViews();
    if (ok) new Uint32Array(this.exports.memory.buffer, this.exports.largePrimesAt(), largePrimes.length).set(largePrimes);
    return ok;
  }

  /** Buckets.activate, over the large primes given to {@link prepareBuckets}. */
  bucketsActivate(s: number, startByte: number, endInteger: number, from: number): number {
    return this.exports.bucketsActivate(s, startByte, endInteger, from);
  }

  /** Buckets.cross, on this instance's segment. */
  bucketsCross(s: number, length: number, last: boolean): void {
    this.exports.bucketsCross(s, length, last ? 1 : 0);
  }

  release(): void {
    idle.push(this);
  }
}
