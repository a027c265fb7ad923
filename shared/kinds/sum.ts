/**
 * `sum`: the exact sum of the integers FROM..TO inclusive, any magnitude. Each task sums one
 * contiguous sub-range in closed form with BigInt, so a task costs the same for 10 integers or
 * 10^30 of them; splitting exists to exercise (and demonstrate) the distributed pipeline.
 */
import { TaskRejectedError, UsageError } from '../errors.js';
import { MAX_INTEGER_DIGITS, describeRange, parseInteger } from '../integers.js';
import type { JobKind, JobSummary, Plan, SplitContext, Task } from './kind.js';

/** Most tasks a sum job may be split into. */
export const SUM_MAX_TASKS = 100_000;

/** Tasks per worker the command should ask for when the user gives no --tasks. */
export const SUM_TASKS_PER_WORKER = 8;

/** Tasks used when options say null and the command did not choose (no worker count known). */
export const SUM_DEFAULT_TASKS = 16;

/** Job options, as stored in the job record. Bounds are decimal strings of any magnitude. */
export type SumOptions = {
  from: string;
  to: string;
  /** Sub-ranges to split into (clamped to the range size); null = {@link SUM_DEFAULT_TASKS}. */
  tasks: number | null;
};

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

/** Spec of one task on the wire: a sub-range, bounds as decimal strings. */
type SumSpec = { from: string; to: string };

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
  const from = parseInteger(String(options.from), 'FROM');
  const to = parseInteger(String(options.to), 'TO');
  if (from > to) throw new UsageError(`FROM (${from}) is greater than TO (${to})`);
  let tasks = SUM_DEFAULT_TASKS;
  if (options.tasks !== null && options.tasks !== undefined) {
    tasks = options.tasks;
    if (!Number.isSafeInteger(tasks) || tasks < 1) throw new UsageError(`--tasks: must be a positive integer, got ${tasks}`);
    if (tasks > SUM_MAX_TASKS) throw new UsageError(`--tasks: ${tasks} is too large (at most ${SUM_MAX_TASKS})`);
  }
  // More tasks than integers would leave some empty: clamp.
  const size = to - from + 1n;
  if (size < BigInt(tasks)) tasks = Number(size);
  return { from, to, tasks };
}

/** A task bound: a decimal string no longer than any argument parseInteger accepts. */
const SPEC_BOUND = new RegExp(`^-?\\d{1,${MAX_INTEGER_DIGITS}}$`);

/** Ranges larger than this have their progress counted in tasks: a double holds no more. */
const MAX_WEIGHT = 10n ** 300n;

/** Parses one bound of a task spec. */
function specBound(value: unknown, name: string): bigint {
  if (typeof value !== 'string' || !SPEC_BOUND.test(value)) throw new TaskRejectedError(`sum task: ${name} must be a decimal integer string`);
  return BigInt(value);
}

const encoder = new TextEncoder();
const decoder = new TextDecoder('utf-8', { fatal: true });

/**
 * The sum job kind. Options `{from, to, tasks}`; task spec `{from, to}` (decimal strings of a
 * sub-range); partial: the sub-range's sum as a decimal string in UTF-8.
 */
export const sumKind: JobKind<SumOptions, SumAcc, SumResult> = {
  name: 'sum',

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
    const count = BigInt(tasks);
    // Task i covers from + ⌊size·i/n⌋ .. from + ⌊size·(i+1)/n⌋ − 1: contiguous, gap-free, sizes
    // within one of each other.
    for (let i = 0n; i < count; i++) {
      const lo = from + (size * i) / count;
      const hi = from + (size * (i + 1n)) / count - 1n;
      const spec: SumSpec = { from: lo.toString(), to: hi.toString() };
      yield { spec, input: describeRange(lo, hi), weight: size > MAX_WEIGHT ? 1 : Number(hi - lo + 1n) };
    }
  },

  map(spec: unknown): Uint8Array {
    if (typeof spec !== 'object' || spec === null || Array.isArray(spec)) throw new TaskRejectedError('sum task: spec must be an object');
    for (const key of Object.keys(spec)) if (key !== 'from' && key !== 'to') throw new TaskRejectedError(`sum task: unknown spec field ${JSON.stringify(key.slice(0, 64))}`);
    const { from, to } = spec as Record<string, unknown>;
    const lo = specBound(from, 'from');
    const hi = specBound(to, 'to');
    if (lo > hi) throw new TaskRejectedError(`sum task: from ${lo} is greater than to ${hi}`);
    return encoder.encode(rangeSum(lo, hi).toString());
  },

  init(): SumAcc {
    return { sum: 0n };
  },

  reduce(acc: SumAcc, partial: Uint8Array, task: number): SumAcc {
    const text = decoder.decode(partial);
    if (!/^-?\d+$/.test(text)) throw new Error(`sum task ${task}: malformed partial result`);
    acc.sum += BigInt(text);
    return acc;
  },

  finalize(acc: SumAcc, summary: JobSummary, options: SumOptions): SumResult {
    const { from, to } = checkOptions(options);
    return { job: summary.job, kind: 'sum', from: from.toString(), to: to.toString(), tasks: summary.tasks, sum: acc.sum.toString() };
  },
};
