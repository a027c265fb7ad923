/**
 * `sum`: the exact sum of the integers FROM..TO inclusive, any magnitude. Each task sums one
 * contiguous sub-range in closed form with BigInt, so a task costs the same for 10 integers or
 * 10^30 of them; splitting exists to exercise (and demonstrate) the distributed pipeline.
 */
import { MAX_INTEGER_DIGITS } from '../integers.js';
import type { JobKind, JobSummary, Plan, SplitContext, Task } from './kind.js';
import { decodeDecimal, encodeDecimal, parseRangeSpec, rangeBounds, requestedTasks, splitRange, type RangeOptions } from './integer-range.js';
import type { Json } from '../json.js';

/** Most tasks a sum job may be split into. */
export const SUM_MAX_TASKS = 100_000;

/** Tasks per worker the command should ask for when the user gives no --tasks. */
export const SUM_TASKS_PER_WORKER = 8;

/** Tasks used when options say null and the command did not choose (no worker count known). */
export const SUM_DEFAULT_TASKS = 16;

/** Job options, as stored in the job record; `tasks` null means {@link SUM_DEFAULT_TASKS}. */
export type SumOptions = RangeOptions;

/** The printed result; big numbers are decimal strings. */
export type SumResult = {
  job: string;
  kind: 'sum';
  from: string;
  to: string;
  tasks: number;
  sum: string;
};

/** Coordinator-side accumulator: the running sum. */
interface SumAcc {
  sum: bigint;
}

/**
 * The default task count for a job run on `workers` workers: {@link SUM_TASKS_PER_WORKER}
 * per worker (at least one worker assumed), capped at {@link SUM_MAX_TASKS}.
 */
export function defaultSumTasks(workers: number): number {
  return Math.min(SUM_MAX_TASKS, SUM_TASKS_PER_WORKER * Math.max(1, Math.floor(workers)));
}

/**
 * Sum of lo..hi (lo ≤ hi) in closed form: (lo + hi)·(hi − lo + 1)/2. The two factors differ by
 * 2·lo − 1, an odd number, so one of them is even and the division is exact.
 */
function rangeSum(lo: bigint, hi: bigint): bigint {
  return ((lo + hi) * (hi - lo + 1n)) / 2n;
}

function checkOptions(options: SumOptions): { from: bigint; to: bigint; tasks: number } {
  const { from, to } = rangeBounds(options);
  const tasks = requestedTasks(options, SUM_MAX_TASKS) ?? SUM_DEFAULT_TASKS;
  // More tasks than integers would leave some empty: clamp.
  const size = to - from + 1n;
  return { from, to, tasks: size < BigInt(tasks) ? Number(size) : tasks };
}

/** Ranges larger than this have their progress counted in tasks: a double holds no more. */
const MAX_WEIGHT = 10n ** 300n;

/** A sum partial: a decimal integer of at most the digits a sum of bounds can have. */
const PARTIAL = new RegExp(`^-?\\d{1,${2 * MAX_INTEGER_DIGITS + 1}}$`);

/**
 * The sum job kind. Options `{from, to, tasks}`; task spec `{from, to}` (decimal strings of a
 * sub-range); partial: the sub-range's sum as a decimal string in UTF-8.
 */
export const sumKind: JobKind<SumOptions, SumAcc, SumResult> = {
  name: 'sum',

  describe: (options: SumOptions) => `${options.from} ${options.to}`,

  plan(options: SumOptions): Plan {
    const { from, to, tasks } = checkOptions(options);
    // Progress weight is a double: exact up to 2^53 integers, approximate beyond (fine for a bar),
    // and counted in tasks where the range is beyond any double.
    const size = to - from + 1n;
    return { totalWeight: size > MAX_WEIGHT ? tasks : Number(size), totalTasks: tasks, unit: '' };
  },

  async *split(options: SumOptions, _context: SplitContext): AsyncIterable<Task> {
    const { from, to, tasks } = checkOptions(options);
    const size = to - from + 1n;
    yield* splitRange(from, size, tasks, (lo, hi) => (size > MAX_WEIGHT ? 1 : Number(hi - lo + 1n)));
  },

  map(spec: unknown): Uint8Array {
    const { lo, hi } = parseRangeSpec(spec, 'sum');
    return encodeDecimal(rangeSum(lo, hi));
  },

  init(): SumAcc {
    return { sum: 0n };
  },

  reduce(acc: SumAcc, partial: Uint8Array, task: number): SumAcc {
    acc.sum += BigInt(decodeDecimal(partial, PARTIAL, 'sum', task));
    return acc;
  },

  /** The sum of the sub-ranges folded so far. */
  preview(acc: SumAcc): Json {
    return { label: 'sum so far', value: acc.sum.toString() };
  },

  finalize(acc: SumAcc, summary: JobSummary, options: SumOptions): SumResult {
    const { from, to } = checkOptions(options);
    return { job: summary.job, kind: 'sum', from: from.toString(), to: to.toString(), tasks: summary.tasks, sum: acc.sum.toString() };
  },
};
