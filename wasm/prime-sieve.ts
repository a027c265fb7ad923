// The crossing loops of tally's prime sieve in WebAssembly (AssemblyScript, compiled by
// `npm run build` into dist/wasm/prime-sieve.wasm; shared/primes-wasm.ts loads it). The same
// loops as crossSmallPrimes, Buckets and popcount in shared/primes-sieve.ts, which keeps the
// rest (the pre-sieve pattern, the sieving primes, where each small one starts) and writes into
// this module's memory: a byte store here needs no bounds check and the 8 offsets of a wheel
// turn stay in registers, where V8's typed-array stores check each index (counts near 10^10 run
// ~1.4x faster, near 10^15 ~2.2x). Where each large prime starts is computed here too: near
// 10^15 a task files 1.9 M of them, ~5% of its time from JavaScript, a call each.
//
// Memory: fixed regions below, and the large primes and their buckets past them (bucketsInit
// grows the memory for those before a count, never during one: JavaScript takes its views
// after it).

/** 2^19 bytes of 30 integers each: SEGMENT_BYTES in shared/primes-sieve.ts (checked at load). */
const SEGMENT_SHIFT: i32 = 19;
const SEGMENT_BYTES: i32 = 1 << SEGMENT_SHIFT;
/** Room for the small sieving primes (those below SEGMENT_BYTES: 43,390 of them). */
const SMALL_CAPACITY: i32 = 1 << 16;

const SEGMENT = memory.data(SEGMENT_BYTES, 64);
const PRIMES = memory.data(SMALL_CAPACITY * 4, 16);
const NEXT = memory.data(SMALL_CAPACITY * 4, 16);
const WHEEL = memory.data(SMALL_CAPACITY, 16);

/** Residues modulo 30 coprime to 30, in bit order; the 9th stands for the next turn's 1. */
const RESIDUES = memory.data<u8>([1, 7, 11, 13, 17, 19, 23, 29, 31]);
/** Wheel index of each residue modulo 30, -1 for those sharing a factor with 30. */
const WHEEL_INDEX = memory.data(30);
/** By 8·(wheel index of p mod 30) + w: the bit to clear, and ⌊r·R[w]/30⌋ (see primes-sieve.ts). */
const CLEAR_MASK = memory.data(64);
const CARRY = memory.data(64 * 4, 4);
/** By 8·(wheel index of p mod 30) + w: the byte step to the next multiple, minus a·RESIDUE_STEP[w]. */
const STEP_CARRY = memory.data(64 * 4, 4);
/** R[w+1] - R[w]: the a-part of a step is a·RESIDUE_STEP[w]. */
const RESIDUE_STEP = memory.data(8 * 4, 4);
/** How far q must move up to reach a value coprime to 30, by q mod 30. */
const ROUND_UP = memory.data(30);

for (let r = 0; r < 30; r++) store<i8>(WHEEL_INDEX + r, -1);
for (let w = 0; w < 8; w++) store<i8>(WHEEL_INDEX + load<u8>(RESIDUES + w), <i8>w);
for (let wp = 0; wp < 8; wp++) {
  const r = <i32>load<u8>(RESIDUES + wp);
  for (let w = 0; w < 8; w++) {
    const product = r * <i32>load<u8>(RESIDUES + w);
    store<u8>(CLEAR_MASK + 8 * wp + w, ~(1 << load<i8>(WHEEL_INDEX + product % 30)) & 0xff);
    store<i32>(CARRY + ((8 * wp + w) << 2), product / 30);
    store<i32>(STEP_CARRY + ((8 * wp + w) << 2), (r * <i32>load<u8>(RESIDUES + w + 1)) / 30 - product / 30);
  }
}
for (let w = 0; w < 8; w++) store<i32>(RESIDUE_STEP + (w << 2), <i32>load<u8>(RESIDUES + w + 1) - <i32>load<u8>(RESIDUES + w));
for (let r = 0; r < 30; r++) {
  let d = 0;
  while (load<i8>(WHEEL_INDEX + (r + d) % 30) < 0) d++;
  store<u8>(ROUND_UP + r, <u8>d);
}

export function segmentBytes(): i32 {
  return SEGMENT_BYTES;
}

export function smallCapacity(): i32 {
  return SMALL_CAPACITY;
}

/** Where the segment is (SEGMENT_BYTES bytes). */
export function segmentAt(): usize {
  return SEGMENT;
}

/** Where the small sieving primes are (u32, sorted). */
export function primesAt(): usize {
  return PRIMES;
}

/** Where each small prime's next wheel turn starts, relative to the segment (i32). */
export function nextAt(): usize {
  return NEXT;
}

/** Where each small prime's next wheel index is (u8). */
export function wheelAt(): usize {
  return WHEEL;
}

// @ts-ignore: decorator
@inline
function clear(at: usize, mask: u8): void {
  store<u8>(at, load<u8>(at) & mask);
}

/**
 * Crosses off the multiples of the first `count` small primes in segment[0..length), from where
 * each one's state says, and leaves the state pointing into the next segment: crossSmallPrimes
 * in shared/primes-sieve.ts, which explains the loop.
 */
export function crossSmallPrimes(length: i32, count: i32): void {
  const segment = SEGMENT;
  for (let k = 0; k < count; k++) {
    const p = load<i32>(PRIMES + (<usize>k << 2));
    const rp = p % 30;
    const a = (p - rp) / 30;
    const base = <usize>(8 * load<i8>(WHEEL_INDEX + rp));
    const carry = CARRY + (base << 2);
    const o1 = 6 * a + load<i32>(carry, 4);
    const o2 = 10 * a + load<i32>(carry, 8);
    const o3 = 12 * a + load<i32>(carry, 12);
    const o4 = 16 * a + load<i32>(carry, 16);
    const o5 = 18 * a + load<i32>(carry, 20);
    const o6 = 22 * a + load<i32>(carry, 24);
    const o7 = 28 * a + load<i32>(carry, 28);
    const masks = CLEAR_MASK + base;
    const m0 = load<u8>(masks);
    const m1 = load<u8>(masks, 1);
    const m2 = load<u8>(masks, 2);
    const m3 = load<u8>(masks, 3);
    const m4 = load<u8>(masks, 4);
    const m5 = load<u8>(masks, 5);
    const m6 = load<u8>(masks, 6);
    const m7 = load<u8>(masks, 7);
    const limit = length - o7;
    let i = load<i32>(NEXT + (<usize>k << 2));
    let w = <i32>load<u8>(WHEEL + k);
    while (true) {
      // The rest of the current turn, from wheel index w; stops at the segment's end.
      if (w <= 0) {
        if (i >= length) break;
        clear(segment + <usize>i, m0);
      }
      if (w <= 1) {
        if (i + o1 >= length) { w = 1; break; }
        clear(segment + <usize>(i + o1), m1);
      }
      if (w <= 2) {
        if (i + o2 >= length) { w = 2; break; }
        clear(segment + <usize>(i + o2), m2);
      }
      if (w <= 3) {
        if (i + o3 >= length) { w = 3; break; }
        clear(segment + <usize>(i + o3), m3);
      }
      if (w <= 4) {
        if (i + o4 >= length) { w = 4; break; }
        clear(segment + <usize>(i + o4), m4);
      }
      if (w <= 5) {
        if (i + o5 >= length) { w = 5; break; }
        clear(segment + <usize>(i + o5), m5);
      }
      if (w <= 6) {
        if (i + o6 >= length) { w = 6; break; }
        clear(segment + <usize>(i + o6), m6);
      }
      if (i + o7 >= length) { w = 7; break; }
      clear(segment + <usize>(i + o7), m7);
      i += p;
      w = 0;
      // Whole turns, unguarded, two per iteration, then the odd one.
      for (const limit2 = limit - p; i < limit2; i += 2 * p) {
        const at = segment + <usize>i;
        clear(at, m0);
        clear(at + <usize>o1, m1);
        clear(at + <usize>o2, m2);
        clear(at + <usize>o3, m3);
        clear(at + <usize>o4, m4);
        clear(at + <usize>o5, m5);
        clear(at + <usize>o6, m6);
        clear(at + <usize>o7, m7);
        const at2 = at + <usize>p;
        clear(at2, m0);
        clear(at2 + <usize>o1, m1);
        clear(at2 + <usize>o2, m2);
        clear(at2 + <usize>o3, m3);
        clear(at2 + <usize>o4, m4);
        clear(at2 + <usize>o5, m5);
        clear(at2 + <usize>o6, m6);
        clear(at2 + <usize>o7, m7);
      }
      for (; i < limit; i += p) {
        const at = segment + <usize>i;
        clear(at, m0);
        clear(at + <usize>o1, m1);
        clear(at + <usize>o2, m2);
        clear(at + <usize>o3, m3);
        clear(at + <usize>o4, m4);
        clear(at + <usize>o5, m5);
        clear(at + <usize>o6, m6);
        clear(at + <usize>o7, m7);
      }
    }
    store<i32>(NEXT + (<usize>k << 2), i - length);
    store<u8>(WHEEL + k, <u8>w);
  }
}

/** Bits set in the segment's first `words` 32-bit words. */
export function popcount(words: i32): i32 {
  let total: i64 = 0;
  let i = 0;
  for (; i + 2 <= words; i += 2) total += popcnt<u64>(load<u64>(SEGMENT + (<usize>i << 2)));
  for (; i < words; i++) total += <i64>popcnt<u32>(load<u32>(SEGMENT + (<usize>i << 2)));
  return <i32>total;
}

// The large sieving primes' buckets (Buckets in shared/primes-sieve.ts): each bucket a chain of
// blocks of BLOCK_ENTRIES entries (two i32: 8a + wheel index of p mod 30, and 8·byte + w, byte
// relative to the bucket's segment), from a pool of blocks. Past the static data bucketsInit
// lays out the large primes themselves (u32, sorted, which JavaScript copies in) and then the
// pool, and grows the memory to fit them (JavaScript then takes new views).

const BLOCK_ENTRIES: i32 = 1024;
/** A block: the next block of its chain (0: none), its entry count, then its entries. */
const BLOCK_BYTES: usize = 8 + <usize>BLOCK_ENTRIES * 8;
const MAX_BUCKETS: i32 = 1 << 12;
/** Each bucket's newest block (0: empty); a chain is read newest first. */
const HEADS = memory.data(MAX_BUCKETS * 4, 16);
let bucketMask: i32 = 0;
let freeBlocks: usize = 0;
/** How many large primes the count has (bucketsInit's `largePrimes`). */
let largePrimeCount: i32 = 0;
/** Where the large primes are (u32, sorted): first past the static data. */
const LARGE_PRIMES: usize = (__heap_base + 63) & ~(<usize>63);

/** Where JavaScript copies the large primes (bucketsInit makes room for them). */
export function largePrimesAt(): usize {
  return LARGE_PRIMES;
}

/**
 * Sets up `count` buckets (a power of two up to MAX_BUCKETS) and a pool of blocks for
 * `largePrimes` entries at once, plus a partly filled block per bucket and one being read.
 * Returns 0, or -1 when the memory cannot grow that far (the JavaScript buckets run).
 */
export function bucketsInit(count: i32, largePrimes: i32): i32 {
  if (count > MAX_BUCKETS || (count & (count - 1)) != 0) return -1;
  const blocks = (largePrimes + BLOCK_ENTRIES - 1) / BLOCK_ENTRIES + count + 2;
  const pool = (LARGE_PRIMES + <usize>largePrimes * 4 + 63) & ~(<usize>63);
  const end = pool + <usize>blocks * BLOCK_BYTES;
  const pages = <i32>((end + 0xffff) >> 16);
  if (pages > memory.size() && memory.grow(pages - memory.size()) < 0) return -1;
  bucketMask = count - 1;
  largePrimeCount = largePrimes;
  memory.fill(HEADS, 0, <usize>MAX_BUCKETS * 4);
  freeBlocks = 0;
  for (let b = blocks - 1; b >= 0; b--) {
    const block = pool + <usize>b * BLOCK_BYTES;
    store<u32>(block, <u32>freeBlocks);
    freeBlocks = block;
  }
  return 0;
}

// @ts-ignore: decorator
@inline
function push(bucket: i32, prime: i32, entry: i32): void {
  const headAt = HEADS + (<usize>bucket << 2);
  let block = <usize>load<u32>(headAt);
  let n = block != 0 ? load<i32>(block, 4) : BLOCK_ENTRIES;
  if (n == BLOCK_ENTRIES) {
    // A new block from the pool at the head of the chain (the pool is sized never to run out).
    const fresh = freeBlocks;
    freeBlocks = <usize>load<u32>(fresh);
    store<u32>(fresh, <u32>block);
    block = fresh;
    store<u32>(headAt, <u32>block);
    n = 0;
  }
  const at = block + 8 + (<usize>n << 3);
  store<i32>(at, prime);
  store<i32>(at, entry, 4);
  store<i32>(block, n + 1, 4);
}

/**
 * Files, for each large prime from index `from` on whose square is at most `endInteger`, its
 * first multiple (≥ p², coprime to 30) in or after segment s, which starts at byte
 * `startByte`; returns the index of the first prime left (squared, past `endInteger`), or
 * their count. firstMultiple and the activation loop in shared/primes-sieve.ts: the same f64
 * arithmetic, exact for integers below 2^53 (a correctly rounded quotient floors to the
 * integer quotient).
 */
export function bucketsActivate(s: i32, startByte: f64, endInteger: f64, from: i32): i32 {
  const segmentStart = 30 * startByte;
  let k = from;
  for (; k < largePrimeCount; k++) {
    const p = load<u32>(LARGE_PRIMES + (<usize>k << 2));
    const pf = <f64>p;
    const square = pf * pf;
    if (square > endInteger) break;
    // q = ⌈start / p⌉, moved up to the next value coprime to 30.
    let q = Math.floor((Math.max(square, segmentStart) + pf - 1) / pf);
    const r = <i32>(q - 30 * Math.floor(q / 30));
    const up = <i32>load<u8>(ROUND_UP + r);
    q += up;
    const byte = <i32>(Math.floor((pf * q) / 30) - startByte);
    const w = <i32>load<i8>(WHEEL_INDEX + (r + up) % 30);
    const rp = <i32>(p % 30);
    const prime = ((<i32>p - rp) / 30) * 8 + <i32>load<i8>(WHEEL_INDEX + rp);
    push((s + (byte >> SEGMENT_SHIFT)) & bucketMask, prime, ((byte & (SEGMENT_BYTES - 1)) << 3) | w);
  }
  return k;
}

/**
 * Crosses off, in the segment (number s, `length` bytes), every multiple waiting for it, and
 * files each prime's next multiple, unless this is the last segment: Buckets.cross.
 */
export function bucketsCross(s: i32, length: i32, last: i32): void {
  const headAt = HEADS + (<usize>(s & bucketMask) << 2);
  let block = <usize>load<u32>(headAt);
  store<u32>(headAt, 0);
  while (block != 0) {
    const n = load<i32>(block, 4);
    for (let e = 0; e < n; e++) {
      const at = block + 8 + (<usize>e << 3);
      const prime = load<i32>(at);
      const entry = load<i32>(at, 4);
      const a = prime >>> 3;
      const base = <usize>((prime & 7) << 3);
      let i = entry >>> 3;
      let w = entry & 7;
      // A prime below 15 segment lengths can hit a segment more than once.
      while (i < length) {
        const at2 = SEGMENT + <usize>i;
        store<u8>(at2, load<u8>(at2) & load<u8>(CLEAR_MASK + base + <usize>w));
        i += a * load<i32>(RESIDUE_STEP + (<usize>w << 2)) + load<i32>(STEP_CARRY + ((base + <usize>w) << 2));
        w = (w + 1) & 7;
      }
      if (last) continue;
      // i ≥ length = SEGMENT_BYTES here, so never this bucket.
      push((s + (i >> SEGMENT_SHIFT)) & bucketMask, prime, ((i & (SEGMENT_BYTES - 1)) << 3) | w);
    }
    const next = <usize>load<u32>(block);
    store<u32>(block, <u32>freeBlocks);
    freeBlocks = block;
    block = next;
  }
}
