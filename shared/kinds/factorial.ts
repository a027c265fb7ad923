/**
 * `factorial`: N! for each N, exactly. Each N is split into K tasks, each the product of a
 * sub-range lo..hi of 1..N; the coordinator multiplies the K partials and describes the result
 * (digit count, trailing zeros, leading digits, sha256 of the decimal value), optionally writing
 * the full decimal value to OUTPUT/N.txt.
 *
 * Every product is a balanced product tree, not a running product: V8 multiplies big BigInts
 * in subquadratic time, which only pays off when the operands are of similar size.
 *
 * The expensive part of a large N is on the coordinator: the top levels of the tree and the
 * decimal conversion (toString(10) of 5,000,000! takes ~17 s). That work runs in a worker
 * thread so the coordinator's event loop (NATS traffic, progress, Ctrl-C) stays responsive.
 */
import { createHash, randomBytes } from 'node:crypto';
import { access, constants, mkdir, rename, stat, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import { InputError, OptionError, TaskRejectedError, describeError } from '../errors.js';
import { parseInteger } from '../integers.js';
import type { JobKind, JobSummary, MapContext, Plan, SplitContext, Task } from './kind.js';
import { cooperativePause } from './cooperative.js';

/**
 * Largest N accepted: 5,000,000. Measured on one core (AMD EPYC, Node 20): computing
 * 5,000,000! by product tree takes ~6.7 s and its toString(10) (31,323,382 digits) ~17 s, peak
 * ~320 MB; the coordinator spends ~20 s on it end to end. Beyond that the decimal conversion
 * (≈ n^1.25) quickly gets out of hand for an interactive tool.
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
 * Factors per task for the default split. A task multiplying 250,000 consecutive integers
 * near 5×10^6 takes ~0.2 s; below that size one task per N is cheaper than the transport.
 */
export const FACTORIAL_DEFAULT_TASK_FACTORS = 250_000;

/** Up to this N the coordinator describes N! inline; starting a thread costs more than that. */
const INLINE_FINALIZE_MAX_N = 50_000;

/** Leading digits reported. */
const LEADING_DIGITS = 20;

/** Job options, as stored in the job record. */
export type FactorialOptions = {
  /** Each N as a decimal string (non-negative, ≤ FACTORIAL_MAX_N), in the order to report. */
  numbers: string[];
  /** Sub-range products per N; null = {@link defaultFactorialSplit}. Clamped to N. */
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

/** One task's work: the product of lo..hi, a slice of 1..n (empty when hi < lo, for 0!). */
type FactorialSpec = { n: number; lo: number; hi: number };

/** Coordinator-side accumulator: the partial products received, as big-endian bytes. */
interface FactorialAcc {
  /** Expected sub-ranges, keyed `${n}:${lo}` → hi, so each partial is checked on arrival. */
  expected: Map<string, number>;
  /** Received partials per N. */
  partials: Map<number, Uint8Array[]>;
}

// ---------------------------------------------------------------------------------------------
// Products.

/** Multiplies lo..hi directly: pairs of factors first multiplied as doubles while exact. */
function leafProduct(lo: number, hi: number): bigint {
  let result = 1n;
  let small = 1;
  for (let i = lo; i <= hi; i++) {
    if (small * i > Number.MAX_SAFE_INTEGER) {
      result *= BigInt(small);
      small = i;
    } else {
      small *= i;
    }
  }
  return result * BigInt(small);
}

/** Product of lo..hi by balanced recursion (1n when empty). */
function productTree(lo: number, hi: number): bigint {
  if (hi - lo < 32) return leafProduct(lo, hi);
  const mid = Math.floor((lo + hi) / 2);
  return productTree(lo, mid) * productTree(mid + 1, hi);
}

/** Balanced product of a list of BigInts (1n when empty). */
function productOf(values: bigint[], from = 0, to = values.length): bigint {
  if (to - from === 0) return 1n;
  if (to - from === 1) return values[from];
  const mid = (from + to) >>> 1;
  return productOf(values, from, mid) * productOf(values, mid, to);
}

/** Factors per synchronous block in `map`: far below a millisecond of work each. */
const MAP_BLOCK = 2_048;

/**
 * Product of lo..hi as a balanced tree built block by block, calling `pause` between steps so
 * the caller can yield and heartbeat. Blocks are merged like a binary counter (equal levels
 * merge), which keeps every multiplication between operands of similar size.
 */
async function rangeProduct(lo: number, hi: number, pause: () => Promise<void> | undefined): Promise<bigint> {
  const stack: { value: bigint; level: number }[] = [];
  for (let start = lo; start <= hi; start += MAP_BLOCK) {
    let top = { value: productTree(start, Math.min(hi, start + MAP_BLOCK - 1)), level: 0 };
    while (stack.length > 0 && stack[stack.length - 1].level === top.level) {
      const below = stack.pop()!;
      top = { value: below.value * top.value, level: top.level + 1 };
      const wait = pause();
      if (wait) await wait;
    }
    stack.push(top);
    const wait = pause();
    if (wait) await wait;
  }
  // The leftovers have strictly decreasing levels: multiply smallest first.
  let result = 1n;
  while (stack.length > 0) {
    result = stack.pop()!.value * result;
    const wait = pause();
    if (wait) await wait;
  }
  return result;
}

/** Big-endian magnitude bytes of a non-negative BigInt (hex is V8's fast path for both ways). */
function toBytes(value: bigint): Uint8Array {
  const hex = value.toString(16);
  return Buffer.from(hex.length % 2 === 0 ? hex : `0${hex}`, 'hex');
}

function fromBytes(bytes: Uint8Array): bigint {
  return bytes.length === 0 ? 0n : BigInt(`0x${Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('hex')}`);
}

// ---------------------------------------------------------------------------------------------
// Describing N! from its partials (inline or in a worker thread).

/** What the describing step returns: the entry, and the decimal digits when a file is wanted. */
interface Description {
  entry: FactorialEntry;
  decimal?: Uint8Array;
}

/** Multiplies the partials and describes the product; `keepDecimal` returns its digits too. */
function describe(n: number, partials: Uint8Array[], keepDecimal: boolean): Description {
  const value = productOf(partials.map(fromBytes));
  const decimal = value.toString(10);
  let zeros = 0;
  while (zeros < decimal.length - 1 && decimal.charCodeAt(decimal.length - 1 - zeros) === 48) zeros++;
  const entry: FactorialEntry = {
    n,
    digits: decimal.length,
    trailingZeros: zeros,
    leading: decimal.slice(0, LEADING_DIGITS),
    sha256: createHash('sha256').update(decimal, 'latin1').digest('hex'),
  };
  // TextEncoder gives the digits an ArrayBuffer of their own (a Buffer may share a pool), so
  // the thread can move it to the coordinator instead of copying 30 MB.
  return keepDecimal ? { entry, decimal: new TextEncoder().encode(decimal) } : { entry };
}

/** Marks the workerData of a describing thread, so this module knows to act on load. */
const THREAD_MARKER = 'tallyFactorialDescribe';

interface ThreadRequest {
  [THREAD_MARKER]: true;
  n: number;
  partials: Uint8Array[];
  keepDecimal: boolean;
}

// When this very module is loaded as a describing thread, do the work and report back.
if (!isMainThread && parentPort && (workerData as Partial<ThreadRequest> | null)?.[THREAD_MARKER] === true) {
  const request = workerData as ThreadRequest;
  const port = parentPort;
  const result = describe(request.n, request.partials, request.keepDecimal);
  port.postMessage(result, result.decimal ? [result.decimal.buffer as ArrayBuffer] : []);
}

/** Runs {@link describe} in a worker thread (this module), moving the partials there. */
function describeInThread(n: number, partials: Uint8Array[], keepDecimal: boolean): Promise<Description> {
  return new Promise((resolve, reject) => {
    const request: ThreadRequest = { [THREAD_MARKER]: true, n, partials, keepDecimal };
    const worker = new Worker(new URL(import.meta.url), {
      workerData: request,
      // Each partial owns its buffer (copied in reduce), so moving them costs nothing.
      transferList: partials.map((p) => p.buffer as ArrayBuffer),
    });
    let settled = false;
    worker.once('message', (message: Description) => {
      settled = true;
      resolve(message);
      void worker.terminate();
    });
    worker.once('error', (error) => {
      settled = true;
      reject(error);
    });
    worker.once('exit', (code) => {
      if (!settled) reject(new Error(`computing ${n}! failed: worker thread exited with code ${code}`));
    });
  });
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
 * Default sub-range products for N: one per {@link FACTORIAL_DEFAULT_TASK_FACTORS} factors
 * (so 1 below that, 4 for 10^6, 20 for 5×10^6).
 */
export function defaultFactorialSplit(n: number): number {
  return Math.max(1, Math.ceil(n / FACTORIAL_DEFAULT_TASK_FACTORS));
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
    // K sub-ranges of 1..n, as equal as integer division allows; never more than n (0! and
    // 1! get one task: the empty product, and 1).
    const k = Math.min(split ?? defaultFactorialSplit(n), Math.max(1, n));
    const ranges: [number, number][] = [];
    for (let i = 0; i < k; i++) ranges.push([1 + Math.floor((n * i) / k), Math.floor((n * (i + 1)) / k)]);
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
 * (numbers); partial: header `"n lo hi\n"` then the product of lo..hi as big-endian bytes.
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
        yield { spec, input: `${n}! factors ${lo}..${hi}`, weight: Math.max(0, hi - lo + 1) };
      }
    }
  },

  async map(spec: unknown, _body: Uint8Array, context: MapContext): Promise<Uint8Array> {
    const task = parseSpec(spec);
    const pause = cooperativePause(context);
    return encodePartial(task, await rangeProduct(task.lo, task.hi, pause));
  },

  init(options: FactorialOptions): FactorialAcc {
    const expected = new Map<string, number>();
    const partials = new Map<number, Uint8Array[]>();
    for (const { n, ranges } of checkOptions(options).plans) {
      for (const [lo, hi] of ranges) expected.set(`${n}:${lo}`, hi);
      partials.set(n, []);
    }
    return { expected, partials };
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
    // One N at a time: each describe holds a product and its decimal string (~10 bytes a digit).
    for (const n of new Set(numbers)) {
      const partials = acc.partials.get(n)!;
      acc.partials.delete(n); // let the bytes go as soon as they are used
      const keepDecimal = options.outputDir !== null && options.outputDir !== undefined;
      const description = n <= INLINE_FINALIZE_MAX_N ? describe(n, partials, keepDecimal) : await describeInThread(n, partials, keepDecimal);
      if (keepDecimal) await writeDecimal(options.outputDir!, n, description.decimal!);
      entries.set(n, description.entry);
    }
    return { job: summary.job, kind: 'factorial', results: numbers.map((n) => entries.get(n)!) };
  },
};
