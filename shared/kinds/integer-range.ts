/**
 * What the kinds over a range of integers (sum, primes) share: the bounds and task count of
 * their options, the split of a range into contiguous sub-ranges, the task spec of a sub-range,
 * and partials that are one decimal number.
 */
import { OptionError, TaskRejectedError, UsageError } from '../errors.js';
import { MAX_INTEGER_DIGITS, describeRange, parseInteger } from '../integers.js';
import type { Task } from './kind.js';

/** Job options of a range kind, as stored in the job record. Bounds are decimal strings. */
export type RangeOptions = {
  from: string;
  to: string;
  /** Sub-ranges to split into; null lets the kind choose. */
  tasks: number | null;
};

/** Spec of one task on the wire: a sub-range, bounds as decimal strings. */
export type RangeSpec = { from: string; to: string };

/** The bounds of a job's range (fields `from` and `to`); FROM greater than TO is refused. */
export function rangeBounds(options: RangeOptions): { from: bigint; to: bigint } {
  const from = parseInteger(String(options.from), 'from');
  const to = parseInteger(String(options.to), 'to');
  if (from > to) throw new UsageError(`FROM (${from}) is greater than TO (${to})`);
  return { from, to };
}

/** The task count a job asks for (its `tasks` option) after checks; null when it asks for none. */
export function requestedTasks(options: RangeOptions, max: number): number | null {
  const tasks = options.tasks;
  if (tasks === null || tasks === undefined) return null;
  if (!Number.isSafeInteger(tasks) || tasks < 1) throw new OptionError('tasks', `must be a positive integer, got ${tasks}`);
  if (tasks > max) throw new OptionError('tasks', `${tasks} is too large (at most ${max})`);
  return tasks;
}

/**
 * The tasks of low..low + size − 1 in `count` sub-ranges: task i covers low + ⌊size·i/count⌋ ..
 * low + ⌊size·(i+1)/count⌋ − 1, so they are contiguous, leave no gap and differ in size by at
 * most one.
 * @param weight a sub-range's units of progress
 */
export function* splitRange(low: bigint, size: bigint, count: number, weight: (lo: bigint, hi: bigint) => number): Generator<Task> {
  const n = BigInt(count);
  for (let i = 0n; i < n; i++) {
    const lo = low + (size * i) / n;
    const hi = low + (size * (i + 1n)) / n - 1n;
    const spec: RangeSpec = { from: lo.toString(), to: hi.toString() };
    yield { spec, input: describeRange(lo, hi), weight: weight(lo, hi) };
  }
}

/** A task bound: a decimal string no longer than any argument parseInteger accepts. */
const SPEC_BOUND = new RegExp(`^-?\\d{1,${MAX_INTEGER_DIGITS}}$`);

/**
 * The sub-range of a task spec from the wire: exactly `{from, to}`, decimal strings, from ≤ to;
 * anything else is a TaskRejectedError naming the kind.
 */
export function parseRangeSpec(spec: unknown, kind: string): { lo: bigint; hi: bigint } {
  if (typeof spec !== 'object' || spec === null || Array.isArray(spec)) throw new TaskRejectedError(`${kind} task: spec must be an object`);
  for (const key of Object.keys(spec)) if (key !== 'from' && key !== 'to') throw new TaskRejectedError(`${kind} task: unknown spec field ${JSON.stringify(key.slice(0, 64))}`);
  const { from, to } = spec as Record<string, unknown>;
  const bound = (value: unknown, name: string): bigint => {
    if (typeof value !== 'string' || !SPEC_BOUND.test(value)) throw new TaskRejectedError(`${kind} task: ${name} must be a decimal integer string`);
    return BigInt(value);
  };
  const lo = bound(from, 'from');
  const hi = bound(to, 'to');
  if (lo > hi) throw new TaskRejectedError(`${kind} task: from ${lo} is greater than to ${hi}`);
  return { lo, hi };
}

const encoder = new TextEncoder();
const decoder = new TextDecoder('utf-8', { fatal: true });

/** A partial that is one integer, in decimal (UTF-8). */
export function encodeDecimal(value: bigint | number): Uint8Array {
  return encoder.encode(value.toString());
}

/**
 * The decimal text of a partial made by {@link encodeDecimal}, checked against `pattern`
 * (which bounds its length); a partial that does not match fails the job, naming the task.
 */
export function decodeDecimal(partial: Uint8Array, pattern: RegExp, kind: string, task: number): string {
  let text: string;
  try {
    text = decoder.decode(partial);
  } catch {
    text = '';
  }
  if (!pattern.test(text)) throw new Error(`${kind} task ${task}: malformed partial result`);
  return text;
}
