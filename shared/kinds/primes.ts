/**
 * `primes`: how many primes lie in FROM..TO. Each task counts one contiguous sub-range with a
 * segmented sieve of Eratosthenes on a mod-30 wheel (shared/primes-sieve.ts), so a task's
 * memory is one segment plus one offset per base prime, whatever the size of its range.
 */
import { OptionError, TaskRejectedError } from '../errors.js';
import type { JobKind, JobSummary, MapContext, Plan, SplitContext, Task } from './kind.js';
import { cooperativePause } from './cooperative.js';
import { decodeDecimal, encodeDecimal, parseRangeSpec, rangeBounds, requestedTasks, splitRange, type RangeOptions } from './integer-range.js';
import type { Json } from '../json.js';
import { countPrimes } from '../primes-sieve.js';
import type { SieveChoice } from '../primes-wasm.js';

/**
 * Largest TO a primes job accepts: 10^15.
 *
 * Why: every quantity the sieve handles (TO, p², the next multiple of a base prime past TO)
 * must stay an exact double, i.e. below 2^53 ≈ 9.007×10^15, which leaves a wide margin here;
 * base primes up to √10^15 ≈ 3.2×10^7 (1.95 M of them, 8 MB with their offsets) are cheap to
 * build and hold. Verified: published π(10^k) for k ≤ 10, primesieve on random ranges of every
 * magnitude up to the limit, and windows just below 10^12 and 10^15 against an independent
 * Miller–Rabin count (tests/primes.test.ts).
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
 * Most integers per task for the default task count: 2^30. The wheel sieve runs at roughly
 * 0.2 ns per integer on one core near 10^10 and 1 ns near 10^15 (measured), so a task is
 * ~0.2–1 s of work. Near 10^15 each task first places all 1.9 M sieving primes (tens of ms),
 * so smaller tasks would spend a large share of their time on that set-up; bigger ones would
 * make a lost task expensive to redo and progress coarse.
 */
export const PRIMES_DEFAULT_TASK_SIZE = 2 ** 30;

/**
 * Fewest tasks the default splits a range into, as long as each keeps at least
 * {@link PRIMES_MIN_TASK_SIZE} integers: enough that a job of a few 10^8 integers still
 * spreads over several workers instead of being one task.
 */
export const PRIMES_MIN_TASKS = 8;

/** Integers below which splitting further only adds per-task overhead (~2 ms of sieving). */
export const PRIMES_MIN_TASK_SIZE = 2 ** 23;

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

/**
 * Counts the primes in lo..hi (safe integers, hi ≤ PRIMES_MAX_TO). `pause` is called between
 * segments; when it returns a promise the sieve awaits it (to yield the event loop). `sieve`:
 * the crossing loop, TALLY_SIEVE's by default (shared/primes-wasm.ts).
 *
 * Exported for benchmarks and tests; jobs go through {@link primesKind}.
 */
export async function countPrimesInRange(lo: number, hi: number, pause?: () => Promise<void> | undefined, sieve?: SieveChoice): Promise<number> {
  // Beyond the limit the base primes would silently fall short of √hi: refuse instead.
  if (!Number.isSafeInteger(lo) || !Number.isSafeInteger(hi) || hi > Number(PRIMES_MAX_TO)) {
    throw new RangeError(`countPrimesInRange: ${lo}..${hi} is outside the supported range (integers up to ${PRIMES_MAX_TO})`);
  }
  return countPrimes(lo, hi, Number(PRIMES_MAX_TO), pause, sieve);
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
 * Default number of tasks for a range: at most {@link PRIMES_DEFAULT_TASK_SIZE} integers each,
 * and at least {@link PRIMES_MIN_TASKS} tasks when each still gets PRIMES_MIN_TASK_SIZE
 * integers; at least one and at most PRIMES_MAX_TASKS. Beyond PRIMES_MIN_TASKS the count is
 * rounded up to a multiple of 4, so that 2 or 4 workers get equal shares: with 10 tasks of
 * equal cost, 4 workers would wait for 2 of them to run the last 2 (measured with 2 workers on
 * a busy machine, 1..10^10 in 12 tasks beats 10 tasks by ~10%).
 */
export function defaultPrimesTasks(from: bigint, to: bigint): number {
  const low = from > 2n ? from : 2n;
  if (to < low) return 1;
  const size = to - low + 1n;
  const ceilDiv = (n: bigint, d: number): bigint => (n + BigInt(d) - 1n) / BigInt(d);
  const bySize = ceilDiv(size, PRIMES_DEFAULT_TASK_SIZE);
  const spread = ceilDiv(size, PRIMES_MIN_TASK_SIZE);
  const floor = spread < BigInt(PRIMES_MIN_TASKS) ? spread : BigInt(PRIMES_MIN_TASKS);
  const tasks = bySize > floor ? ((bySize + 3n) / 4n) * 4n : floor;
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
