/**
 * `factorial`: N! for each N, exactly. N! is computed by its prime factorisation
 * (shared/prime-powers.ts): each N is split into K tasks, each the product of p^e(p) over the
 * primes p of a sub-range lo..hi of 1..N (2 and 5 left out); the coordinator multiplies the
 * K partials, shifts in the 2s left over by the trailing zeros, and describes the result (digit
 * count, trailing zeros, leading digits, sha256 of the decimal value), optionally writing the
 * full decimal value to OUTPUT/N.txt.
 *
 * The sub-ranges are geometric (1..N^(1/K), …), not equal: the primes of lo..hi contribute
 * about N·log2(hi/lo) bits to N!, so geometric ranges give partials of similar size, which the
 * coordinator multiplies in subquadratic time.
 *
 * The expensive part of a large N is on the coordinator: the decimal conversion, by GMP where
 * its addon is built (shared/gmp-decimal.ts), else in two worker threads
 * (shared/kinds/factorial-describe.ts).
 */
import { randomBytes } from 'node:crypto';
import { access, constants, mkdir, rename, stat, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { InputError, OptionError, TaskRejectedError, describeError } from '../errors.js';
import { parseInteger } from '../integers.js';
import { toBytes } from '../bigint-bytes.js';
import { primePowerProduct } from '../prime-powers.js';
import { converterFor, describeInline, describeInThreads, describeWithGmp, startConverterEarly, type Converter } from './factorial-describe.js';
import { gmpDecimal } from '../gmp-decimal.js';
import type { JobKind, JobSummary, MapContext, Plan, SplitContext, Task } from './kind.js';
import { cooperativePause } from './cooperative.js';

/**
 * Largest N accepted: 5,000,000 (31,323,382 digits). The decimal conversion grows faster than
 * N (≈ n^1.25), so beyond that it quickly gets out of hand for an interactive tool (with the
 * earlier product tree and toString(10) it took ~20 s on one core, peak ~320 MB).
 */
export const FACTORIAL_MAX_N = 5_000_000;

/** Most numbers one job may ask for. */
export const FACTORIAL_MAX_NUMBERS = 1_000;

/**
 * Largest sum of the distinct N of one job: two maximal factorials. The coordinator describes
 * them one after another, so this bounds the job's time (~40 s), not its memory.
 */
export const FACTORIAL_MAX_TOTAL_N = 10_000_000;

/** Largest --split: sub-range products per N. */
export const FACTORIAL_MAX_SPLIT = 1_024;

/** Most tasks in one job, all numbers together. */
export const FACTORIAL_MAX_TASKS = 100_000;

/**
 * Numbers per task for the default split. The prime powers of 10^6! take ~0.3 s on one core;
 * as 2 tasks (one per worker of a 2-core machine) ~0.05 s + 0.16 s, and the coordinator joins
 * them with one multiplication (~0.09 s). More tasks cost the coordinator more big
 * multiplications than they save (4 tasks: ~0.2 s to join).
 */
export const FACTORIAL_DEFAULT_TASK_FACTORS = 500_000;

/** Up to this N the coordinator describes N! inline; starting a thread costs more than that. */
const INLINE_FINALIZE_MAX_N = 50_000;

/**
 * For the command line, before it submits the job: starts the converter thread of the largest
 * N now (when it will be described in threads), so its ladder is built while the embedded
 * server and the workers start; the job's init takes it over.
 */
export function prepareFactorial(numbers: string[]): void {
  const largest = Math.max(...numbers.map(Number));
  if (Number.isSafeInteger(largest) && largest > INLINE_FINALIZE_MAX_N && largest <= FACTORIAL_MAX_N && !gmpDecimal()) startConverterEarly(largest);
}

/** Job options, as stored in the job record. */
export type FactorialOptions = {
  /** Each N as a decimal string (non-negative, ≤ FACTORIAL_MAX_N), in the order to report. */
  numbers: string[];
  /** Sub-ranges (tasks) per N; null = {@link defaultFactorialSplit}. Clamped to N. */
  split: number | null;
  /** Directory for N.txt files (created if missing), or null to write nothing. */
  outputDir: string | null;
};

/** What the job reports about one N!. */
export type FactorialEntry = {
  n: number;
  /** Number of decimal digits. */
  digits: number;
  trailingZeros: number;
  /** The first 20 decimal digits (all of them when there are fewer). */
  leading: string;
  /** Hex SHA-256 of the decimal digits (no newline). */
  sha256: string;
};

/** The printed result; `results` follows the order of `numbers`, duplicates included. */
export type FactorialResult = {
  job: string;
  kind: 'factorial';
  results: FactorialEntry[];
};

/**
 * One task's work: ∏ p^e(p) over the primes p of lo..hi (a slice of 1..n, empty when hi < lo,
 * for 0!) except 2 and 5, e(p) the exponent of p in n!.
 */
type FactorialSpec = { n: number; lo: number; hi: number };

/** Coordinator-side accumulator: the partial products received, as big-endian bytes. */
interface FactorialAcc {
  /** Expected sub-ranges, keyed `${n}:${lo}` → hi, so each partial is checked on arrival. */
  expected: Map<string, number>;
  /** Received partials per N. */
  partials: Map<number, Uint8Array[]>;
  /**
   * The converter thread of the largest N, started with the job so that its decimal ladder is
   * built while the workers multiply (shared/kinds/factorial-describe.ts).
   */
  converters: Map<number, Converter>;
}

/** Writes `digits` plus a newline to dir/N.txt atomically: a temporary file, then a rename. */
async function writeDecimal(dir: string, n: number, digits: Uint8Array): Promise<void> {
  const target = join(dir, `${n}.txt`);
  const temporary = join(dir, `.${n}.txt.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
  try {
    await mkdir(dir, { recursive: true });
    await writeFile(temporary, [digits, new Uint8Array([10])]);
    await rename(temporary, target);
  } catch (error) {
    await unlink(temporary).catch(() => undefined);
    throw new InputError(dir, `cannot write ${n}.txt: ${describeError(error)}`, { cause: error });
  }
}

// ---------------------------------------------------------------------------------------------
// Options and tasks.

/**
 * Default sub-ranges for N: one per {@link FACTORIAL_DEFAULT_TASK_FACTORS} numbers
 * (so 1 up to that, 2 for 10^6, 10 for 5×10^6).
 */
export function defaultFactorialSplit(n: number): number {
  return Math.max(1, Math.ceil(n / FACTORIAL_DEFAULT_TASK_FACTORS));
}

/**
 * K non-empty sub-ranges tiling 1..n (n ≥ K, or n = 0 with K = 1), the i-th ending near
 * n^((i+1)/K): the primes of lo..hi bring about n·log2(hi/lo) bits to n!, so the partials come
 * out of similar size. Each end is clamped to leave at least one number to every later range.
 */
export function geometricRanges(n: number, k: number): [number, number][] {
  const ranges: [number, number][] = [];
  let lo = 1;
  for (let i = 0; i < k; i++) {
    const last = i === k - 1;
    const hi = last ? n : Math.min(n - (k - 1 - i), Math.max(lo, Math.floor(n ** ((i + 1) / k))));
    ranges.push([lo, hi]);
    lo = hi + 1;
  }
  return ranges;
}

interface CheckedOptions {
  /** N per entry of `numbers`, in order. */
  numbers: number[];
  /** Each distinct N (first-seen order) with its sub-ranges. */
  plans: { n: number; ranges: [number, number][] }[];
  tasks: number;
}

function checkOptions(options: FactorialOptions): CheckedOptions {
  if (!Array.isArray(options.numbers) || options.numbers.length === 0) throw new OptionError('numbers', 'at least one number is required');
  if (options.numbers.length > FACTORIAL_MAX_NUMBERS) {
    throw new OptionError('numbers', `${options.numbers.length} numbers given, at most ${FACTORIAL_MAX_NUMBERS} per job`);
  }
  const split = options.split;
  if (split !== null && split !== undefined) {
    if (!Number.isSafeInteger(split) || split < 1) throw new OptionError('split', `must be a positive integer, got ${split}`);
    if (split > FACTORIAL_MAX_SPLIT) throw new OptionError('split', `${split} is too large (at most ${FACTORIAL_MAX_SPLIT})`);
  }
  const numbers = options.numbers.map((text) => {
    const n = parseInteger(String(text), 'numbers');
    if (n < 0n) throw new OptionError('numbers', `${n} is negative; factorials are defined for N ≥ 0`);
    if (n > BigInt(FACTORIAL_MAX_N)) throw new OptionError('numbers', `${n} is above the limit for factorials (${FACTORIAL_MAX_N})`);
    return Number(n);
  });
  const plans: CheckedOptions['plans'] = [];
  let total = 0;
  let tasks = 0;
  for (const n of new Set(numbers)) {
    total += n;
    // Never more than n sub-ranges (0! and 1! get one task: the empty product, and 1).
    const k = Math.min(split ?? defaultFactorialSplit(n), Math.max(1, n));
    const ranges = geometricRanges(n, k);
    plans.push({ n, ranges });
    tasks += k;
  }
  if (total > FACTORIAL_MAX_TOTAL_N) {
    throw new OptionError('numbers', `the numbers add up to ${total}, above the per-job limit of ${FACTORIAL_MAX_TOTAL_N}; use several jobs`);
  }
  if (tasks > FACTORIAL_MAX_TASKS) throw new OptionError('split', `${tasks} tasks in all, at most ${FACTORIAL_MAX_TASKS}; split them less`);
  return { numbers, plans, tasks };
}

function parseSpec(spec: unknown): FactorialSpec {
  if (typeof spec !== 'object' || spec === null || Array.isArray(spec)) throw new TaskRejectedError('factorial task: spec must be an object');
  for (const key of Object.keys(spec)) if (key !== 'n' && key !== 'lo' && key !== 'hi') throw new TaskRejectedError(`factorial task: unknown spec field ${JSON.stringify(key.slice(0, 64))}`);
  const { n, lo, hi } = spec as Record<string, unknown>;
  for (const [name, value] of [['n', n], ['lo', lo], ['hi', hi]] as const) {
    if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) {
      throw new TaskRejectedError(`factorial task: ${name} must be a non-negative integer`);
    }
  }
  const task = { n, lo, hi } as FactorialSpec;
  if (task.n > FACTORIAL_MAX_N) throw new TaskRejectedError(`factorial task: n ${task.n} is above the limit ${FACTORIAL_MAX_N}`);
  if (task.lo < 1 || task.hi > task.n || task.lo > task.hi + 1) {
    throw new TaskRejectedError(`factorial task: ${task.lo}..${task.hi} is not a sub-range of 1..${task.n}`);
  }
  return task;
}

/** Partial layout: an ASCII header "n lo hi\n", then the product's big-endian bytes. */
function encodePartial(task: FactorialSpec, product: bigint): Uint8Array {
  return Buffer.concat([Buffer.from(`${task.n} ${task.lo} ${task.hi}\n`, 'latin1'), toBytes(product)]);
}

/**
 * The factorial job kind. Options `{numbers, split, outputDir}`; task spec `{n, lo, hi}`
 * (numbers); partial: header `"n lo hi\n"` then ∏ p^e(p) over the primes of lo..hi (2 and 5
 * left out) as big-endian bytes.
 */
export const factorialKind: JobKind<FactorialOptions, FactorialAcc, FactorialResult> = {
  name: 'factorial',
  unskippable: 'a product with a missing factor is meaningless',

  describe: (options: FactorialOptions) => options.numbers.join(' '),

  async plan(options: FactorialOptions): Promise<Plan> {
    const checked = checkOptions(options);
    if (options.outputDir !== null && options.outputDir !== undefined) {
      // Fail before any work rather than after minutes of it: the directory must be creatable
      // and writable (creating it now is what finalize would do anyway).
      const dir = options.outputDir;
      try {
        await mkdir(dir, { recursive: true });
        if (!(await stat(dir)).isDirectory()) throw new Error('not a directory');
        await access(dir, constants.W_OK);
      } catch (error) {
        throw new InputError(dir, `cannot write output files there: ${describeError(error)}`, { cause: error });
      }
    }
    const totalWeight = checked.plans.reduce((sum, plan) => sum + plan.n, 0);
    return { totalWeight, totalTasks: checked.tasks, unit: '' };
  },

  async *split(options: FactorialOptions, _context: SplitContext): AsyncIterable<Task> {
    for (const { n, ranges } of checkOptions(options).plans) {
      for (const [lo, hi] of ranges) {
        const spec: FactorialSpec = { n, lo, hi };
        yield { spec, input: `${n}! primes ${lo}..${hi}`, weight: Math.max(0, hi - lo + 1) };
      }
    }
  },

  async map(spec: unknown, _body: Uint8Array, context: MapContext): Promise<Uint8Array> {
    const task = parseSpec(spec);
    const pause = cooperativePause(context);
    return encodePartial(task, await primePowerProduct(task.n, task.lo, task.hi, pause));
  },

  init(options: FactorialOptions): FactorialAcc {
    const expected = new Map<string, number>();
    const partials = new Map<number, Uint8Array[]>();
    for (const { n, ranges } of checkOptions(options).plans) {
      for (const [lo, hi] of ranges) expected.set(`${n}:${lo}`, hi);
      partials.set(n, []);
    }
    const converters = new Map<number, Converter>();
    const largest = Math.max(...partials.keys());
    // With GMP no converter thread is needed (and none should take CPU from the workers).
    if (largest > INLINE_FINALIZE_MAX_N && !gmpDecimal()) converters.set(largest, converterFor(largest));
    return { expected, partials, converters };
  },

  reduce(acc: FactorialAcc, partial: Uint8Array, task: number): FactorialAcc {
    const newline = partial.subarray(0, 64).indexOf(10);
    const header = newline < 0 ? null : /^(\d+) (\d+) (\d+)$/.exec(Buffer.from(partial.subarray(0, newline)).toString('latin1'));
    if (!header) throw new Error(`factorial task ${task}: malformed partial result`);
    const [n, lo, hi] = [Number(header[1]), Number(header[2]), Number(header[3])];
    const key = `${n}:${lo}`;
    if (acc.expected.get(key) !== hi) throw new Error(`factorial task ${task}: unexpected partial for ${n}! factors ${lo}..${hi}`);
    acc.expected.delete(key);
    // Copy: the transport may reuse the message buffer, and an own buffer can be moved to a thread.
    acc.partials.get(n)!.push(new Uint8Array(partial.subarray(newline + 1)));
    return acc;
  },

  async finalize(acc: FactorialAcc, summary: JobSummary, options: FactorialOptions): Promise<FactorialResult> {
    if (acc.expected.size > 0) throw new Error(`factorial: ${acc.expected.size} partial products missing`);
    const { numbers } = checkOptions(options);
    const entries = new Map<number, FactorialEntry>();
    const gmp = gmpDecimal();
    // One N at a time: each describe holds a product and its decimal string (~10 bytes a digit).
    for (const n of new Set(numbers)) {
      const partials = acc.partials.get(n)!;
      acc.partials.delete(n); // let the bytes go as soon as they are used
      const keepDecimal = options.outputDir !== null && options.outputDir !== undefined;
      const converter = acc.converters.get(n);
      acc.converters.delete(n);
      const description =
        n <= INLINE_FINALIZE_MAX_N ? describeInline(n, partials, keepDecimal)
        : gmp ? await describeWithGmp(n, partials, keepDecimal, gmp)
        : await describeInThreads(n, partials, keepDecimal, converter);
      if (keepDecimal) await writeDecimal(options.outputDir!, n, description.decimal!);
      entries.set(n, description.entry);
    }
    return { job: summary.job, kind: 'factorial', results: numbers.map((n) => entries.get(n)!) };
  },
};
