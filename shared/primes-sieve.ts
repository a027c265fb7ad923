/**
 * Counting primes in a range with a segmented sieve of Eratosthenes on a mod-30 wheel.
 *
 * Only numbers coprime to 30 can be primes above 5, and there are 8 of them in every 30
 * integers (residues 1, 7, 11, 13, 17, 19, 23, 29), so one byte stands for 30 integers, one bit
 * per residue: a bit set means "no prime factor found yet". Compared with a byte per odd
 * number this is 15 times less memory to touch per integer (a 512 KiB segment, in L2, covers
 * 15.7 M integers) and 8/15 as many multiples to cross off per sieving prime, since multiples
 * of 2, 3 and 5 are never visited at all. Counting is a popcount over 32-bit words.
 *
 * How a prime p crosses off its multiples: write p = 30a + r and a multiple p·q with
 * q = 30k + R[w] coprime to 30. Then p·q lies in byte k·p + a·R[w] + ⌊r·R[w]/30⌋, at the bit of
 * residue (r·R[w]) mod 30. So within one turn of the wheel (8 consecutive values of q) the 8
 * bytes sit at fixed offsets from k·p, with fixed bits that depend only on r: the inner loop
 * clears 8 bits at constant offsets and advances by p bytes, with no division anywhere.
 */
import { sieveChoice, WasmSieve, type SieveChoice } from './primes-wasm.js';

/** Residues modulo 30 coprime to 30, in bit order (bit w of a byte is 30·byte + RESIDUES[w]). */
const RESIDUES = [1, 7, 11, 13, 17, 19, 23, 29] as const;

/** Wheel index (bit) of each residue modulo 30, -1 for residues sharing a factor with 30. */
const WHEEL_INDEX = new Int8Array(30).fill(-1);
for (const [w, r] of RESIDUES.entries()) WHEEL_INDEX[r] = w;

/** How far q must move up to reach a value coprime to 30, by q mod 30. */
const ROUND_UP = new Uint8Array(30);
for (let r = 0; r < 30; r++) {
  let d = 0;
  while (WHEEL_INDEX[(r + d) % 30] < 0) d++;
  ROUND_UP[r] = d;
}

/** Residue of wheel index w, with w = 8 standing for the next turn's 1 (31). */
const residue = (w: number): number => (w === 8 ? 31 : RESIDUES[w]);

/**
 * Tables indexed by 8·(wheel index of p mod 30) + w, for the multiple p·q with q ≡ RESIDUES[w]:
 * the bit to clear (as an AND mask), ⌊r·R[w]/30⌋ (the byte offset of that multiple within a
 * turn, beyond a·R[w]), and the byte step to the next multiple, minus a·(R[w+1] - R[w]).
 */
const CLEAR_MASK = new Uint8Array(64);
const CARRY = new Int32Array(64);
const STEP_CARRY = new Int32Array(64);
/** R[w+1] - R[w] (with R[8] = 31): the a-part of a step is a·RESIDUE_STEP[w]. */
const RESIDUE_STEP = new Int32Array(8);
for (let wp = 0; wp < 8; wp++) {
  const r = RESIDUES[wp];
  for (let w = 0; w < 8; w++) {
    CLEAR_MASK[8 * wp + w] = ~(1 << WHEEL_INDEX[(r * RESIDUES[w]) % 30]) & 0xff;
    CARRY[8 * wp + w] = Math.floor((r * residue(w)) / 30);
    STEP_CARRY[8 * wp + w] = Math.floor((r * residue(w + 1)) / 30) - Math.floor((r * residue(w)) / 30);
  }
}
for (let w = 0; w < 8; w++) RESIDUE_STEP[w] = residue(w + 1) - residue(w);

/**
 * Segment size: 2^19 bytes = 512 KiB, ~15.7 M integers, half of a typical L2 (1–2 MiB per core
 * on current x86). Measured: an L1-sized segment (32 KiB) is 1.6x slower near 10^10, because
 * every prime up to √TO then restarts its wheel turn in many more segments and that set-up
 * outweighs the cheaper cache hits (sieving the small primes in L1-sized blocks of the segment
 * was no faster either); 512 KiB beats 256 KiB by ~4% near 10^10 and ~10% near 10^15 (fewer
 * bucket hand-offs), 1 MiB is no better.
 */
const SEGMENT_SHIFT = 19;
const SEGMENT_BYTES = 1 << SEGMENT_SHIFT;

/**
 * Sieving primes above one segment length (in bytes, i.e. hitting a segment fewer than ~8
 * times) wait in buckets rather than being visited by every segment (measured: 4 segment
 * lengths is 10% slower near 10^12 and 10^15, half a segment length no faster).
 */
const BUCKET_MIN_PRIME = SEGMENT_BYTES;

/**
 * The primes 7..23 are not sieved one by one: their multiples repeat with a period of
 * 7·11·13·17·19·23 bytes (30 times as many integers), so each segment starts as a copy of a
 * precomputed pattern (a memcpy). They are the primes that would cross off the most bits.
 * Why stop at 23: one more prime would multiply the pattern's 7.4 MB by 29; ANDing further
 * patterns (29·31·37, …) into each segment, word by word, was measured no faster than sieving
 * those primes (with 7..19 alone, 23 in the pattern saves ~4%).
 */
const PRESIEVE_PRIMES = [7, 11, 13, 17, 19, 23] as const;
const PRESIEVE_PERIOD = 7 * 11 * 13 * 17 * 19 * 23;

/** First prime sieved explicitly (the wheel handles 2, 3, 5; the pattern 7..23). */
const FIRST_SIEVED_PRIME = 29;

let presievePattern: Uint8Array | undefined;

/**
 * The pre-sieve pattern: a period plus a segment, so that any segment is one contiguous copy.
 * Built prime by prime: the pattern of the primes so far, repeated p times, is the pattern of
 * one more prime p once p's own multiples are cleared, so only the last prime clears bits all
 * over the 7.4 MB (a few ms, not the ~0.1 s of clearing every prime's multiples everywhere).
 */
function getPresievePattern(): Uint8Array {
  if (!presievePattern) {
    const pattern = new Uint8Array(PRESIEVE_PERIOD + SEGMENT_BYTES);
    pattern[0] = 0xff;
    let period = 1;
    for (const p of PRESIEVE_PRIMES) {
      for (let k = 1; k < p; k++) pattern.copyWithin(k * period, 0, period);
      period *= p;
      clearMultiples(pattern, p, period);
    }
    for (let at = period; at < pattern.length; at += period) pattern.copyWithin(at, 0, Math.min(period, pattern.length - at));
    presievePattern = pattern;
  }
  return presievePattern;
}

/**
 * Fills a segment starting at byte `startByte` from the pattern, then restores the
 * pre-sieved primes themselves (the pattern clears them as multiples of themselves) and
 * clears 1, which is not a prime. All of them are in byte 0.
 */
function presieve(segment: Uint8Array, startByte: number, length: number): void {
  const phase = startByte % PRESIEVE_PERIOD;
  segment.set(getPresievePattern().subarray(phase, phase + length));
  // Byte 0 holds 1, 7, 11, 13, 17, 19, 23, 29: all primes but 1.
  if (startByte === 0) segment[0] = 0xfe;
}

/** Clears in bytes[0..end) every multiple of p coprime to 30 (p·q, q coprime to 30, from q = 1). Set-up only. */
function clearMultiples(bytes: Uint8Array, p: number, end: number): void {
  const base = 8 * WHEEL_INDEX[p % 30];
  const a = (p - (p % 30)) / 30;
  // Turn k (q = 30k + R[w]) puts p·q in byte k·p + a·R[w] + ⌊r·R[w]/30⌋, increasing with q.
  let turn = 0;
  for (let w = 0; ; w = (w + 1) & 7) {
    const at = turn + a * RESIDUES[w] + CARRY[base + w];
    if (at >= end) break;
    bytes[at] &= CLEAR_MASK[base + w];
    if (w === 7) turn += p;
  }
}

/**
 * Primes ≥ FIRST_SIEVED_PRIME up to `basePrimesLimit`, computed once per process and grown on
 * demand: a worker keeps serving tasks of the same job, and √TO barely changes between them.
 */
let basePrimes: Uint32Array = new Uint32Array(0);
let basePrimesLimit = 0;

/** Floor of the square root, exact for any safe integer (Math.sqrt may be off by one). */
function isqrt(n: number): number {
  let r = Math.floor(Math.sqrt(n));
  while (r * r > n) r--;
  while ((r + 1) * (r + 1) <= n) r++;
  return r;
}

/**
 * The sieving primes (from FIRST_SIEVED_PRIME) up to at least `limit`, sorted. Grows
 * geometrically, never beyond `cap`, so that a run of tasks with creeping TO recomputes
 * O(log) times; starts at 2^16 so small jobs build it once.
 */
function sievingPrimes(limit: number, cap: number): Uint32Array {
  if (limit <= basePrimesLimit) return basePrimes;
  const target = Math.min(Math.max(limit, 2 * basePrimesLimit, 1 << 16), Math.max(cap, limit));
  basePrimes = oddPrimesUpTo(target, FIRST_SIEVED_PRIME);
  basePrimesLimit = target;
  return basePrimes;
}

/** Odd numbers per block of {@link oddPrimesUpTo}: 128 KiB of bytes, well inside L2. */
const BASE_BLOCK = 1 << 17;

/**
 * The primes from `from` (odd, ≥ 3) up to n, by an odd-only sieve in blocks of BASE_BLOCK odd
 * numbers, a byte each. In blocks because a flat sieve up to √10^15 ≈ 3.2×10^7 would cross off
 * at random all over 16 MB, several times slower; this runs once per worker process.
 */
function oddPrimesUpTo(n: number, from: number): Uint32Array {
  const root = isqrt(n);
  // The odd primes up to √n, by a flat sieve of √n bytes (5.6 KB for the largest n).
  const flat = new Uint8Array(root + 1);
  const small: number[] = [];
  for (let p = 3; p <= root; p += 2) {
    if (flat[p]) continue;
    small.push(p);
    for (let j = p * p; j <= root; j += 2 * p) flat[j] = 1;
  }
  // π(n) < 1.26 n / ln n for n > 1 (Rosser–Schoenfeld): room for every prime found.
  const out = new Uint32Array(Math.ceil((1.26 * n) / Math.log(Math.max(n, 3))) + 16);
  let count = 0;
  const composite = new Uint8Array(BASE_BLOCK);
  for (let lo = from; lo <= n; lo += 2 * BASE_BLOCK) {
    const size = Math.min(BASE_BLOCK, Math.floor((n - lo) / 2) + 1);
    composite.fill(0);
    const hi = lo + 2 * (size - 1);
    for (const p of small) {
      if (p * p > hi) break;
      // First odd multiple of p at or above max(p², lo).
      let m = Math.max(p * p, Math.ceil(lo / p) * p);
      if (m % 2 === 0) m += p;
      for (let j = (m - lo) / 2; j < size; j += p) composite[j] = 1;
    }
    for (let i = 0; i < size; i++) if (!composite[i]) out[count++] = lo + 2 * i;
  }
  return out.slice(0, count);
}

/** Number of entries of the sorted `primes` that are ≤ limit. */
function countAtMost(primes: Uint32Array, limit: number): number {
  let lo = 0;
  let hi = primes.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (primes[mid] <= limit) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/**
 * Bits set in the first `count` 32-bit words (SWAR popcount: the sieve's bytes are read four at
 * a time, 120 integers per word).
 */
function popcount(words: Int32Array, count: number): number {
  let total = 0;
  for (let i = 0; i < count; i++) {
    let v = words[i];
    v = v - ((v >>> 1) & 0x55555555);
    v = (v & 0x33333333) + ((v >>> 2) & 0x33333333);
    total += Math.imul((v + (v >>> 4)) & 0x0f0f0f0f, 0x01010101) >>> 24;
  }
  return total;
}

/** Byte offset, from the multiple with q ≡ 1 of a wheel turn, of the multiple with q ≡ R[w]. */
function turnOffset(a: number, base: number, w: number): number {
  return a * (RESIDUES[w] - 1) + CARRY[base + w];
}

/**
 * Crosses off the multiples of the small sieving primes primes[0..count) in segment[0..length).
 * For prime k, next[k] is the byte (relative to this segment, possibly negative) where its
 * current wheel turn starts, i.e. of its multiple p·q with q ≡ 1 (mod 30), and wheel[k] the
 * index of the next multiple to cross within that turn; both are left pointing into the
 * following segment.
 *
 * Each of the 8 multiples of a turn sits at a fixed offset with a fixed bit, so the loop keeps
 * the 8 offsets and masks in locals and never looks up a table or steps one multiple at a time:
 * a turn cut by a segment edge is finished (or started) by the guarded chain that resumes at
 * the wheel index where the previous segment stopped.
 */
function crossSmallPrimes(segment: Uint8Array, length: number, primes: Uint32Array, count: number, next: Int32Array, wheel: Uint8Array): void {
  for (let k = 0; k < count; k++) {
    const p = primes[k];
    const rp = p % 30;
    const a = (p - rp) / 30;
    const base = 8 * WHEEL_INDEX[rp];
    const o1 = 6 * a + CARRY[base + 1];
    const o2 = 10 * a + CARRY[base + 2];
    const o3 = 12 * a + CARRY[base + 3];
    const o4 = 16 * a + CARRY[base + 4];
    const o5 = 18 * a + CARRY[base + 5];
    const o6 = 22 * a + CARRY[base + 6];
    const o7 = 28 * a + CARRY[base + 7];
    const m0 = CLEAR_MASK[base];
    const m1 = CLEAR_MASK[base + 1];
    const m2 = CLEAR_MASK[base + 2];
    const m3 = CLEAR_MASK[base + 3];
    const m4 = CLEAR_MASK[base + 4];
    const m5 = CLEAR_MASK[base + 5];
    const m6 = CLEAR_MASK[base + 6];
    const m7 = CLEAR_MASK[base + 7];
    const limit = length - o7;
    let i = next[k];
    let w = wheel[k];
    for (;;) {
      // The rest of the current turn, from wheel index w; stops at the segment's end.
      if (w <= 0) {
        if (i >= length) break;
        segment[i] &= m0;
      }
      if (w <= 1) {
        if (i + o1 >= length) { w = 1; break; }
        segment[i + o1] &= m1;
      }
      if (w <= 2) {
        if (i + o2 >= length) { w = 2; break; }
        segment[i + o2] &= m2;
      }
      if (w <= 3) {
        if (i + o3 >= length) { w = 3; break; }
        segment[i + o3] &= m3;
      }
      if (w <= 4) {
        if (i + o4 >= length) { w = 4; break; }
        segment[i + o4] &= m4;
      }
      if (w <= 5) {
        if (i + o5 >= length) { w = 5; break; }
        segment[i + o5] &= m5;
      }
      if (w <= 6) {
        if (i + o6 >= length) { w = 6; break; }
        segment[i + o6] &= m6;
      }
      if (i + o7 >= length) { w = 7; break; }
      segment[i + o7] &= m7;
      i += p;
      w = 0;
      // Whole turns, unguarded, two per iteration (measured ~5% faster than one: half the
      // loop tests; four per iteration is no better), then the odd one.
      for (const limit2 = limit - p; i < limit2; i += 2 * p) {
        segment[i] &= m0;
        segment[i + o1] &= m1;
        segment[i + o2] &= m2;
        segment[i + o3] &= m3;
        segment[i + o4] &= m4;
        segment[i + o5] &= m5;
        segment[i + o6] &= m6;
        segment[i + o7] &= m7;
        segment[i + p] &= m0;
        segment[i + p + o1] &= m1;
        segment[i + p + o2] &= m2;
        segment[i + p + o3] &= m3;
        segment[i + p + o4] &= m4;
        segment[i + p + o5] &= m5;
        segment[i + p + o6] &= m6;
        segment[i + p + o7] &= m7;
      }
      for (; i < limit; i += p) {
        segment[i] &= m0;
        segment[i + o1] &= m1;
        segment[i + o2] &= m2;
        segment[i + o3] &= m3;
        segment[i + o4] &= m4;
        segment[i + o5] &= m5;
        segment[i + o6] &= m6;
        segment[i + o7] &= m7;
      }
    }
    next[k] = i - length;
    wheel[k] = w;
  }
}

/** Where the large sieving primes wait: Buckets, or those of the WebAssembly instance. */
interface LargePrimeBuckets {
  /**
   * Files, for each large prime from index `from` on whose square is at most `endInteger`, its
   * first multiple in or after segment s (starting at byte `startByte`); returns the index of
   * the first prime left, or the count of large primes.
   */
  activate(s: number, startByte: number, endInteger: number, from: number): number;
  cross(s: number, segment: Uint8Array, length: number, last: boolean): void;
}

/**
 * How many buckets a count needs when a large prime's next multiple is at most `span` segments
 * ahead: a power of two above it (a bucket is picked by masking the segment number).
 */
function bucketCount(span: number): number {
  return 2 ** Math.ceil(Math.log2(span + 1));
}

/**
 * Large sieving primes, each waiting in the bucket of the segment its next multiple falls in:
 * a circular array of buckets, each a growable list of (8a + wheel index of p mod 30,
 * 8·byte + w) pairs, byte being relative to that segment. A prime this large hits a segment a
 * few times at most, and most segments not at all (near 10^15 there are 1.9 M sieving primes),
 * so visiting each per segment would dominate: here work is per multiple, not per prime.
 */
class Buckets implements LargePrimeBuckets {
  private readonly lists: Int32Array[] = [];
  private readonly sizes: Int32Array;
  private readonly mask: number;

  /** `count`: how many (see bucketCount); `primes`: the large primes, sorted. */
  constructor(count: number, private readonly primes: Uint32Array) {
    this.mask = count - 1;
    this.sizes = new Int32Array(count);
    for (let b = 0; b < count; b++) this.lists.push(new Int32Array(1024));
  }

  activate(s: number, startByte: number, endInteger: number, from: number): number {
    const { primes } = this;
    let k = from;
    for (; k < primes.length; k++) {
      const p = primes[k];
      if (p * p > endInteger) break;
      const { byte, w } = firstMultiple(p, 30 * startByte);
      this.push(s, byte - startByte, w, ((p - (p % 30)) / 30) * 8 + WHEEL_INDEX[p % 30]);
    }
    return k;
  }

  /** Files a multiple `byte` bytes after the start of segment `segment`, wheel index w. */
  private push(segment: number, byte: number, w: number, prime: number): void {
    const bucket = (segment + Math.floor(byte / SEGMENT_BYTES)) & this.mask;
    const n = this.sizes[bucket];
    const list = n + 2 > this.lists[bucket].length ? this.grow(bucket) : this.lists[bucket];
    list[n] = prime;
    list[n + 1] = ((byte & (SEGMENT_BYTES - 1)) << 3) | w;
    this.sizes[bucket] = n + 2;
  }

  /** Doubles a bucket's storage, keeping its entries. */
  private grow(bucket: number): Int32Array {
    const grown = new Int32Array(this.lists[bucket].length * 2);
    grown.set(this.lists[bucket]);
    this.lists[bucket] = grown;
    return grown;
  }

  /**
   * Crosses off, in `segment` (number s, `length` bytes), every multiple waiting for it, and
   * files each prime's next multiple; on the last segment nothing is filed again.
   */
  cross(s: number, segment: Uint8Array, length: number, last: boolean): void {
    const { lists, sizes, mask } = this;
    const list = lists[s & mask];
    const n = sizes[s & mask];
    sizes[s & mask] = 0;
    for (let e = 0; e < n; e += 2) {
      const prime = list[e];
      const a = prime >>> 3;
      const base = (prime & 7) << 3;
      let i = list[e + 1] >>> 3;
      let w = list[e + 1] & 7;
      // A prime below 15 segment lengths can hit this segment more than once. (Only the
      // last, shorter segment can hold an entry past its end: past TO, nothing to clear.)
      while (i < length) {
        segment[i] &= CLEAR_MASK[base + w];
        i += a * RESIDUE_STEP[w] + STEP_CARRY[base + w];
        w = (w + 1) & 7;
      }
      if (last) continue;
      // i ≥ length = SEGMENT_BYTES here, so never this bucket: inline push.
      const bucket = (s + (i >>> SEGMENT_SHIFT)) & mask;
      const m = sizes[bucket];
      const out = m + 2 > lists[bucket].length ? this.grow(bucket) : lists[bucket];
      out[m] = prime;
      out[m + 1] = ((i & (SEGMENT_BYTES - 1)) << 3) | w;
      sizes[bucket] = m + 2;
    }
  }
}

/**
 * ⌊n / d⌋ for safe integers n ≥ 0, d > 0. Exact: the rounding error of n / d is below 1/d, the
 * least distance from n / d to another integer when d does not divide n; and it avoids `%` on
 * numbers above 2^31, which V8 computes with a slow fmod call.
 */
function floorDiv(n: number, d: number): number {
  return Math.floor(n / d);
}

/**
 * The multiple of p (≥ p², coprime to 30) where sieving starts for a segment starting at
 * integer `from`: its byte and wheel index.
 */
function firstMultiple(p: number, from: number): { byte: number; w: number } {
  const start = Math.max(p * p, from);
  // q = ⌈start / p⌉, moved up to the next value coprime to 30.
  let q = floorDiv(start + p - 1, p);
  const r = q - 30 * floorDiv(q, 30);
  q += ROUND_UP[r];
  return { byte: floorDiv(p * q, 30), w: WHEEL_INDEX[(r + ROUND_UP[r]) % 30] };
}

/** AND mask keeping the bits of a byte whose numbers 30·byte + R[w] are ≥ lo (`above`) or ≤ hi. */
function edgeMask(byte: number, bound: number, above: boolean): number {
  let mask = 0;
  for (let w = 0; w < 8; w++) {
    const n = 30 * byte + RESIDUES[w];
    if (above ? n >= bound : n <= bound) mask |= 1 << w;
  }
  return mask;
}

/**
 * Counts the primes in lo..hi: safe integers, hi ≤ maxHi, where maxHi (≤ 9×10^15, so that
 * every product and byte index below stays an exact double) caps how far the per-process
 * cache of sieving primes grows. `pause` is called between segments; when it returns a
 * promise the sieve awaits it (to yield the event loop). `sieve`: which loops cross off the
 * multiples and count (shared/primes-wasm.ts); the WebAssembly ones sieve in their instance's
 * memory.
 */
export async function countPrimes(lo: number, hi: number, maxHi: number, pause?: () => Promise<void> | undefined, sieve: SieveChoice = sieveChoice()): Promise<number> {
  let count = 0;
  for (const p of [2, 3, 5]) if (lo <= p && p <= hi) count++;
  const from = Math.max(lo, 1);
  if (from > hi) return count;

  const root = isqrt(hi);
  const primes = sievingPrimes(root, isqrt(maxHi));
  const primeCount = countAtMost(primes, root);
  const smallCount = countAtMost(primes.subarray(0, primeCount), BUCKET_MIN_PRIME);
  const wasm = sieve === 'wasm' ? WasmSieve.acquire(SEGMENT_BYTES, smallCount) : null;
  try {
    return count + (await sieveSegments(from, hi, primes, primeCount, smallCount, wasm, pause));
  } finally {
    wasm?.release();
  }
}

/** `count` buckets for the `largePrimes`: the instance's when there is one that can hold them. */
function largePrimeBuckets(count: number, largePrimes: Uint32Array, wasm: WasmSieve | null): LargePrimeBuckets {
  if (!wasm?.prepareBuckets(count, largePrimes)) return new Buckets(count, largePrimes);
  return {
    activate: (s, startByte, endInteger, from) => wasm.bucketsActivate(s, startByte, endInteger, from),
    cross: (s, _segment, length, last) => wasm.bucketsCross(s, length, last),
  };
}

/**
 * countPrimes' segments: the primes from `from` (≥ 1) to hi but 2, 3 and 5, with the first
 * primeCount sieving primes, of which the first smallCount cross every segment.
 */
async function sieveSegments(from: number, hi: number, primes: Uint32Array, primeCount: number, smallCount: number, wasm: WasmSieve | null, pause: (() => Promise<void> | undefined) | undefined): Promise<number> {
  const root = isqrt(hi);
  const firstByte = Math.floor(from / 30);
  const lastByte = Math.floor(hi / 30);
  const totalBytes = lastByte - firstByte + 1;
  const segments = Math.ceil(totalBytes / SEGMENT_BYTES);
  // A step is at most 6a + 6 bytes, plus a byte offset within the segment.
  const buckets = primeCount > smallCount ? largePrimeBuckets(bucketCount(Math.ceil((root / 5 + 6) / SEGMENT_BYTES) + 2), primes.subarray(smallCount, primeCount), wasm) : undefined;
  // (After the buckets, which may grow the instance's memory.)
  wasm?.usePrimes(primes, smallCount);
  const next = wasm ? wasm.next : new Int32Array(smallCount);
  const wheel = wasm ? wasm.wheel : new Uint8Array(smallCount);
  let active = 0;
  let activeLarge = 0;
  let count = 0;

  // A small range needs no full segment (and tiny tasks should not allocate 512 KiB each).
  const segmentBytes = Math.min(SEGMENT_BYTES, 4 * Math.ceil(totalBytes / 4));
  const segment = wasm ? wasm.segment.subarray(0, segmentBytes) : new Uint8Array(segmentBytes);
  // JavaScript's popcount reads the segment four bytes at a time.
  const words = wasm ? null : new Int32Array(segment.buffer);

  for (let s = 0; s < segments; s++) {
    const startByte = firstByte + s * SEGMENT_BYTES;
    const length = Math.min(SEGMENT_BYTES, totalBytes - s * SEGMENT_BYTES);
    const last = s === segments - 1;

    presieve(segment, startByte, length);

    // Activate the primes whose square falls within this segment or before its end.
    const endInteger = 30 * (startByte + length) - 1;
    for (; active < smallCount; active++) {
      const p = primes[active];
      if (p * p > endInteger) break;
      const { byte, w } = firstMultiple(p, 30 * startByte);
      next[active] = byte - startByte - turnOffset((p - (p % 30)) / 30, 8 * WHEEL_INDEX[p % 30], w);
      wheel[active] = w;
    }
    if (buckets && active === smallCount) activeLarge = buckets.activate(s, startByte, endInteger, activeLarge);

    if (wasm) wasm.crossSmallPrimes(length, active);
    else crossSmallPrimes(segment, length, primes, active, next, wheel);
    if (buckets) buckets.cross(s, segment, length, last);

    if (s === 0) segment[0] &= edgeMask(firstByte, from, true);
    if (last) segment[length - 1] &= edgeMask(lastByte, hi, false);
    // Bytes past the end of a short last segment are stale: zero them up to a whole word.
    const wordCount = (length + 3) >>> 2;
    segment.fill(0, length, wordCount << 2);
    count += wasm ? wasm.popcount(wordCount) : popcount(words!, wordCount);

    if (pause) {
      const wait = pause();
      if (wait) await wait;
    }
  }
  return count;
}
