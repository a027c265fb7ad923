/**
 * `primes`: how many primes lie in FROM..TO. Each task counts one contiguous sub-range with a
 * segmented, odd-only sieve of Eratosthenes, so a task's memory is one segment plus one offset
 * per base prime, whatever the size of its range.
 */
import { OptionError, TaskRejectedError } from '../errors.js';
import type { JobKind, JobSummary, MapContext, Plan, SplitContext, Task } from './kind.js';
import { cooperativePause } from './cooperative.js';
import { decodeDecimal, encodeDecimal, parseRangeSpec, rangeBounds, requestedTasks, splitRange, type RangeOptions } from './integer-range.js';
import type { Json } from '../json.js';

/**
 * Largest TO a primes job accepts: 10^15.
 *
 * Why: every quantity the sieve handles (TO, p², the next multiple of a base prime past TO)
 * must stay an exact double, i.e. below 2^53 ≈ 9.007×10^15, which leaves a wide margin here;
 * base primes up to √10^15 ≈ 3.2×10^7 (1.95 M of them, 8 MB with their offsets) are cheap to
 * build and hold. Verified: published π(10^k) for k ≤ 10, and windows just below 10^12 and
 * 10^15 against an independent Miller–Rabin count (tests/primes.test.ts).
 */
export const PRIMES_MAX_TO = 10n ** 15n;

/** Most tasks a primes job may be split into; more would only be queue overhead. */
export const PRIMES_MAX_TASKS = 100_000;

/**
 * Most integers one task may sieve: PRIMES_MAX_TO / PRIMES_MAX_TASKS, what the largest job
 * needs. A worker refuses a bigger task (from a broken or hostile coordinator) instead of
 * sieving for hours; the coordinator refuses a --tasks that would make one.
 */
export const PRIMES_MAX_TASK_SPAN = PRIMES_MAX_TO / BigInt(PRIMES_MAX_TASKS);

/**
 * Integers per task for the default task count. Near 10^9 the sieve runs at roughly 0.5 ns
 * per integer (measured; docs/BENCHMARKS.md times `tally primes 1 1e9` end to end), so 2^27
 * integers is ~0.1–0.5 s of work: long enough that task
 * overhead is negligible, short enough that a lost task is cheap to redo and progress moves.
 */
export const PRIMES_DEFAULT_TASK_SIZE = 2 ** 27;

/**
 * Job options, as stored in the job record: `tasks` null picks {@link defaultPrimesTasks}; more
 * tasks than integers are clamped to the range size.
 */
export type PrimesOptions = RangeOptions;

/** The printed result. `count` is below π(10^15) ≈ 2.9×10^13, so a JSON number is exact. */
export type PrimesResult = {
  job: string;
  kind: 'primes';
  from: string;
  to: string;
  tasks: number;
  count: number;
};

/** Coordinator-side accumulator: the running count. */
interface PrimesAcc {
  count: number;
}


// ---------------------------------------------------------------------------------------------
// The sieve. Index i of a segment stands for the odd number segmentStart + 2i; a byte per odd
// number (1 = composite) keeps the inner loop a single store, which is what V8 runs fastest.

/** Odd numbers per segment: 128 KiB of bytes, half of a typical L2, covering 256 Ki integers. */
const SEGMENT_SHIFT = 17;
const SEGMENT_BYTES = 1 << SEGMENT_SHIFT;

/**
 * The smallest odd primes are not sieved one by one: a precomputed pattern of their multiples
 * (period 3·5·7·11·13·17 odd numbers) is copied into each segment instead. They account for
 * ~40% of all the marking work.
 */
const PRESIEVE_PRIMES = [3, 5, 7, 11, 13, 17] as const;
const PRESIEVE_PERIOD = 3 * 5 * 7 * 11 * 13 * 17;
/** First base prime sieved explicitly. */
const FIRST_SIEVED_PRIME = 19;

let presievePattern: Uint8Array | undefined;

/** The pre-sieve pattern, long enough that any segment is one contiguous copy out of it. */
function getPresievePattern(): Uint8Array {
  if (!presievePattern) {
    const pattern = new Uint8Array(PRESIEVE_PERIOD + SEGMENT_BYTES);
    // Odd number 2i+1 is a multiple of q exactly when i ≡ (q-1)/2 (mod q).
    for (const q of PRESIEVE_PRIMES) for (let i = (q - 1) / 2; i < pattern.length; i += q) pattern[i] = 1;
    presievePattern = pattern;
  }
  return presievePattern;
}

/**
 * Odd primes ≥ FIRST_SIEVED_PRIME up to `basePrimesLimit`, computed once per process and
 * grown on demand: a worker keeps serving tasks of the same job, and √TO barely changes.
 */
let basePrimes = new Uint32Array(0);
let basePrimesLimit = 0;

/** Floor of the square root, exact for any safe integer (Math.sqrt may be off by one). */
function isqrt(n: number): number {
  let r = Math.floor(Math.sqrt(n));
  while (r * r > n) r--;
  while ((r + 1) * (r + 1) <= n) r++;
  return r;
}

/** Makes sure `basePrimes` holds every sieving prime up to `limit`. */
function ensureBasePrimes(limit: number): void {
  if (limit <= basePrimesLimit) return;
  // Grow geometrically (capped by what the hard limit can ever need) so a run of tasks with
  // creeping TO recomputes O(log) times, and start at 2^16 so small jobs build it once.
  const cap = isqrt(Number(PRIMES_MAX_TO));
  const target = Math.min(Math.max(limit, 2 * basePrimesLimit, 1 << 16), cap);
  // Plain odd-only sieve: index i is 2i+1. At most √10^15/2 ≈ 16 MB, transient.
  const size = Math.floor((target - 1) / 2) + 1;
  const composite = new Uint8Array(size);
  for (let i = 1; ; i++) {
    const p = 2 * i + 1;
    if (p * p > target) break;
    if (composite[i]) continue;
    for (let j = (p * p - 1) / 2; j < size; j += p) composite[j] = 1;
  }
  const primes: number[] = [];
  for (let i = (FIRST_SIEVED_PRIME - 1) / 2; i < size; i++) if (!composite[i]) primes.push(2 * i + 1);
  basePrimes = Uint32Array.from(primes);
  basePrimesLimit = target;
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

/** Counts unmarked bytes among the first `length` of a segment. */
function countZeros(segment: Uint8Array, words: Uint32Array, length: number): number {
  let marked = 0;
  const wordCount = length >>> 2;
  // Bytes are 0 or 1, so adding whole words adds four byte lanes at once; flush the lanes
  // before any of them can exceed 255.
  for (let w = 0; w < wordCount; ) {
    const stop = Math.min(wordCount, w + 255);
    let lanes = 0;
    for (; w < stop; w++) lanes += words[w];
    marked += (lanes & 0xff) + ((lanes >>> 8) & 0xff) + ((lanes >>> 16) & 0xff) + (lanes >>> 24);
  }
  for (let i = wordCount << 2; i < length; i++) marked += segment[i];
  return length - marked;
}

/**
 * Counts the primes in lo..hi (safe integers, hi ≤ PRIMES_MAX_TO). `pause` is called between
 * segments; when it returns a promise the sieve awaits it (to yield the event loop).
 *
 * Exported for benchmarks; jobs go through {@link primesKind}.
 */
export async function countPrimesInRange(lo: number, hi: number, pause?: () => Promise<void> | undefined): Promise<number> {
  // Beyond the limit the base primes would silently fall short of √hi: refuse instead.
  if (!Number.isSafeInteger(lo) || !Number.isSafeInteger(hi) || hi > Number(PRIMES_MAX_TO)) {
    throw new RangeError(`countPrimesInRange: ${lo}..${hi} is outside the supported range (integers up to ${PRIMES_MAX_TO})`);
  }
  let count = lo <= 2 && 2 <= hi ? 1 : 0;
  let first = Math.max(lo, 3);
  if (first % 2 === 0) first++;
  const last = hi % 2 === 0 ? hi - 1 : hi;
  if (first > last) return count;

  const root = isqrt(last);
  ensureBasePrimes(root);
  const primes = basePrimes;
  const primeCount = countAtMost(primes, root);
  // Primes below the segment length hit each segment many times: a plain loop per segment,
  // with `next` holding the offset of each one's next odd multiple in the current segment.
  // Primes activate when the sieve first reaches p², so offsets stay below the segment length.
  const smallCount = countAtMost(primes.subarray(0, primeCount), SEGMENT_BYTES - 1);
  const next = new Int32Array(smallCount);
  // Larger primes hit a segment at most once and most segments not at all (near 10^15 there
  // are 1.9 M of them): scanning them all per segment would dominate. Instead each waits in
  // the bucket of the segment its next multiple falls in, as a (prime, offset) pair; a circular
  // array of buckets, each read and appended sequentially, so work is per hit and cache-friendly.
  const bucketCount = 2 ** Math.ceil(Math.log2(Math.ceil(root / SEGMENT_BYTES) + 2));
  const bucketMask = bucketCount - 1;
  const buckets: Uint32Array[] = [];
  const bucketSize = new Int32Array(primeCount > smallCount ? bucketCount : 0);
  for (let b = 0; b < bucketSize.length; b++) buckets.push(new Uint32Array(64));
  /** Appends a pair to a bucket, doubling its storage when full. */
  const push = (bucket: number, prime: number, at: number): void => {
    let pairs = buckets[bucket];
    const n = bucketSize[bucket];
    if (2 * n + 2 > pairs.length) {
      const grown = new Uint32Array(pairs.length * 2);
      grown.set(pairs);
      buckets[bucket] = pairs = grown;
    }
    pairs[2 * n] = prime;
    pairs[2 * n + 1] = at;
    bucketSize[bucket] = n + 1;
  };
  let active = 0;

  const pattern = getPresievePattern();
  const segment = new Uint8Array(SEGMENT_BYTES);
  const words = new Uint32Array(segment.buffer);
  const oddTotal = (last - first) / 2 + 1;

  for (let s = 0, done = 0; done < oddTotal; s++, done += SEGMENT_BYTES) {
    const length = Math.min(SEGMENT_BYTES, oddTotal - done);
    const start = first + 2 * done; // the odd number at index 0
    const end = start + 2 * (length - 1);

    // Global index of `start` among odd numbers, modulo the pattern's period (exact: < 2^53).
    const phase = ((start - 1) / 2) % PRESIEVE_PERIOD;
    segment.set(pattern.subarray(phase, phase + length));
    // The pattern marks 3..17 themselves; they are primes.
    if (start <= 17) for (const q of PRESIEVE_PRIMES) if (q >= start && q <= end) segment[(q - start) / 2] = 0;

    // Activate primes whose square falls at or before the end of this segment.
    while (active < primeCount) {
      const p = primes[active];
      const square = p * p;
      if (square > end) break;
      // First odd multiple of p at or after max(p², start); `%` is exact on safe integers.
      let m = square >= start ? square : start + ((p - (start % p)) % p);
      if (m % 2 === 0) m += p;
      const j = (m - start) / 2; // < p + SEGMENT_BYTES
      if (active < smallCount) {
        next[active] = j;
      } else {
        push((s + (j >>> SEGMENT_SHIFT)) & bucketMask, p, j & (SEGMENT_BYTES - 1));
      }
      active++;
    }

    const smallActive = Math.min(active, smallCount);
    for (let k = 0; k < smallActive; k++) {
      const p = primes[k];
      let j = next[k];
      for (; j < length; j += p) segment[j] = 1;
      next[k] = j - length;
    }

    if (active > smallCount) {
      const bucket = s & bucketMask;
      const pairs = buckets[bucket];
      const n = bucketSize[bucket];
      // p ≥ SEGMENT_BYTES, so the next multiple always lands in a later bucket, never this one.
      for (let e = 0; e < 2 * n; e += 2) {
        const j = pairs[e + 1];
        // Only the last, shorter segment can see an offset past its end: past TO, drop it.
        if (j >= length) continue;
        segment[j] = 1;
        const p = pairs[e];
        const target = j + p;
        push((s + (target >>> SEGMENT_SHIFT)) & bucketMask, p, target & (SEGMENT_BYTES - 1));
      }
      bucketSize[bucket] = 0;
    }

    count += countZeros(segment, words, length);
    if (pause) {
      const wait = pause();
      if (wait) await wait;
    }
  }
  return count;
}

// ---------------------------------------------------------------------------------------------
// Options, splitting and the kind.

/** The validated bounds of a job: FROM..TO and the part of it that can hold primes. */
interface PrimesRange {
  from: bigint;
  to: bigint;
  /** First integer actually split: max(FROM, 2), or TO itself when TO < 2 (nothing to sieve). */
  low: bigint;
  /** Integers split into tasks: TO - low + 1. */
  size: bigint;
}

function checkRange(options: PrimesOptions): PrimesRange {
  const { from, to } = rangeBounds(options);
  if (to > PRIMES_MAX_TO) throw new OptionError('to', `${to} is above the limit for primes jobs (${PRIMES_MAX_TO}, i.e. 10^15)`);
  // Integers below 2 hold no primes: splitting -10^30..100 must not make 10^30 tasks.
  const low = to < 2n ? to : from > 2n ? from : 2n;
  return { from, to, low, size: to - low + 1n };
}

/**
 * Default number of tasks for a range: about {@link PRIMES_DEFAULT_TASK_SIZE} integers each,
 * so every task is roughly 0.1–1 s of sieving, at least one and at most PRIMES_MAX_TASKS.
 */
export function defaultPrimesTasks(from: bigint, to: bigint): number {
  const low = from > 2n ? from : 2n;
  if (to < low) return 1;
  const size = to - low + 1n;
  const tasks = (size + BigInt(PRIMES_DEFAULT_TASK_SIZE) - 1n) / BigInt(PRIMES_DEFAULT_TASK_SIZE);
  return Number(tasks > BigInt(PRIMES_MAX_TASKS) ? BigInt(PRIMES_MAX_TASKS) : tasks);
}

function taskCount(options: PrimesOptions, range: PrimesRange): number {
  const tasks = requestedTasks(options, PRIMES_MAX_TASKS) ?? defaultPrimesTasks(range.from, range.to);
  // More tasks than integers would leave some empty.
  if (range.size < BigInt(tasks)) return Number(range.size);
  const needed = (range.size + PRIMES_MAX_TASK_SPAN - 1n) / PRIMES_MAX_TASK_SPAN;
  if (BigInt(tasks) < needed) {
    throw new OptionError('tasks', `${tasks} tasks would each sieve more than ${PRIMES_MAX_TASK_SPAN} integers, the per-task limit; use at least ${needed}`);
  }
  return tasks;
}

function parseSpec(spec: unknown): { lo: number; hi: number } {
  const { lo, hi } = parseRangeSpec(spec, 'primes');
  if (hi > PRIMES_MAX_TO) throw new TaskRejectedError(`primes task: to ${hi} is above the limit ${PRIMES_MAX_TO}`);
  const span = hi - (lo < 0n ? 0n : lo) + 1n;
  if (span > PRIMES_MAX_TASK_SPAN) throw new TaskRejectedError(`primes task: ${span} integers exceed the per-task limit of ${PRIMES_MAX_TASK_SPAN}`);
  // Below 2 there is nothing to sieve; clamp so the bounds become safe integers.
  return { lo: lo < 0n ? 0 : Number(lo), hi: hi < 0n ? -1 : Number(hi) };
}

/** A primes partial: a count below π(10^15). */
const PARTIAL = /^\d{1,16}$/;

/**
 * The primes job kind. Options `{from, to, tasks}`; task spec `{from, to}` (decimal strings of
 * a sub-range); partial: the sub-range's prime count as a decimal string in UTF-8.
 */
export const primesKind: JobKind<PrimesOptions, PrimesAcc, PrimesResult> = {
  name: 'primes',

  describe: (options: PrimesOptions) => `${options.from} ${options.to}`,

  plan(options: PrimesOptions): Plan {
    const range = checkRange(options);
    return { totalWeight: Number(range.size), totalTasks: taskCount(options, range), unit: '' };
  },

  async *split(options: PrimesOptions, _context: SplitContext): AsyncIterable<Task> {
    const range = checkRange(options);
    yield* splitRange(range.low, range.size, taskCount(options, range), (lo, hi) => Number(hi - lo + 1n));
  },

  async map(spec: unknown, _body: Uint8Array, context: MapContext): Promise<Uint8Array> {
    const { lo, hi } = parseSpec(spec);
    const pause = cooperativePause(context);
    const count = hi < 2 ? 0 : await countPrimesInRange(lo, hi, pause);
    return encodeDecimal(count);
  },

  init(): PrimesAcc {
    return { count: 0 };
  },

  reduce(acc: PrimesAcc, partial: Uint8Array, task: number): PrimesAcc {
    acc.count += Number(decodeDecimal(partial, PARTIAL, 'primes', task));
    return acc;
  },

  /** The primes of the sub-ranges folded so far. */
  preview(acc: PrimesAcc): Json {
    return { label: 'primes found so far', value: String(acc.count) };
  },

  finalize(acc: PrimesAcc, summary: JobSummary, options: PrimesOptions): PrimesResult {
    const range = checkRange(options);
    return {
      job: summary.job,
      kind: 'primes',
      from: range.from.toString(),
      to: range.to.toString(),
      tasks: summary.tasks,
      count: acc.count,
    };
  },
};
