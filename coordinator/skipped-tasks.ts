/**
 * Skipping bad records (the MapReduce paper, §4.6): `--skip-failed N` lets a job finish when a
 * few of its map tasks fail on every delivery. Such a task is folded without a partial, and the
 * result names exactly what was not counted; one failure more than allowed fails the job as
 * without the option. The limit is a number of tasks or a fraction of the job's map tasks.
 */
import type { Json } from '../shared/json.js';
import type { AnyJobKind } from '../shared/kinds/kind.js';
import { JobFailedError, OptionError, UsageError } from '../shared/errors.js';
import { MAX_SKIPPED_TASKS } from '../shared/nats/envelope.js';

/** How many map tasks a job may skip: a number, or a fraction of its map tasks (rounded down). */
export type SkipLimit = { tasks: number } | { fraction: number };

/** A map task that failed on every delivery and was left out of the result. */
export interface SkippedTask {
  task: number;
  /** What it covered: "books/a.txt bytes 0-1048575", "range 101..200". */
  input: string;
  error: string;
}

/** The job options' field that holds the limit (kept there so that `tally resume` keeps it). */
export const SKIP_FIELD = 'skipFailed';

/** Longest error text kept per skipped task: results and records stay small. */
const MAX_ERROR_CHARS = 300;

/**
 * Parses the value of `--skip-failed`: a whole number of tasks (`2`), or a fraction of the job's
 * map tasks written with a decimal point or a percent sign (`0.01`, `1%`, `2.5%`), at most all.
 * @throws UsageError naming the flag
 */
export function parseSkipFailed(value: string): SkipLimit {
  const text = value.trim().replace(/_/g, '');
  if (/^\d+$/.test(text)) {
    const tasks = Number(text);
    if (!Number.isSafeInteger(tasks) || tasks > MAX_SKIPPED_TASKS) throw new UsageError(`--skip-failed: ${value} is out of range (0..${MAX_SKIPPED_TASKS} tasks)`);
    return { tasks };
  }
  const percent = /^(\d+(?:\.\d+)?|\.\d+)%$/.exec(text);
  const fraction = percent ? Number(percent[1]) / 100 : /^(\d*\.\d+|\d+\.)$/.test(text) ? Number(text) : Number.NaN;
  if (!Number.isFinite(fraction)) throw new UsageError(`--skip-failed: '${value}' is neither a number of tasks (2) nor a fraction of them (0.01, 1%)`);
  if (fraction > 1) throw new UsageError(`--skip-failed: ${value} is more than all the tasks (at most 1 or 100%)`);
  return { fraction };
}

/**
 * The limit stored in a job's options, checked (options come back from the job record); undefined
 * when the job skips nothing.
 * @throws OptionError on the `skipFailed` field
 */
export function skipLimitOf(options: Json): SkipLimit | undefined {
  if (options === null || typeof options !== 'object' || Array.isArray(options)) return undefined;
  const value = (options as Record<string, Json>)[SKIP_FIELD];
  if (value === undefined) return undefined;
  if (value !== null && typeof value === 'object' && !Array.isArray(value)) {
    const keys = Object.keys(value);
    const { tasks, fraction } = value as Record<string, Json>;
    if (keys.length === 1 && typeof tasks === 'number' && Number.isSafeInteger(tasks) && tasks >= 0 && tasks <= MAX_SKIPPED_TASKS) return { tasks };
    if (keys.length === 1 && typeof fraction === 'number' && fraction >= 0 && fraction <= 1) return { fraction };
  }
  throw new OptionError(SKIP_FIELD, `must be {tasks} (0..${MAX_SKIPPED_TASKS}) or {fraction} (0..1), got ${JSON.stringify(value)}`);
}

/**
 * The limit of a job of `kind` with these options, checked against the kind (one whose result
 * would be meaningless with a task missing refuses it); undefined when the job skips nothing.
 * @throws OptionError on the `skipFailed` field
 */
export function skipLimitFor(kind: Pick<AnyJobKind, 'name' | 'unskippable'>, options: Json): SkipLimit | undefined {
  const limit = skipLimitOf(options);
  if (limit !== undefined && kind.unskippable !== undefined) throw new OptionError(SKIP_FIELD, `does not apply to ${kind.name} jobs: ${kind.unskippable}`);
  return limit;
}

/** What {@link SkippedTasks.taskFailed} needs of the running job. */
export interface FailingJob {
  /** What a task in flight covers. */
  inputOf(id: number): string | undefined;
  /** The job's map tasks, or null while not known (see {@link SkippedTasks.allowed}). */
  mapTasks(): number | null;
  /** True for a task whose result is folded (or that was skipped) already. */
  isFolded(id: number): boolean;
  /** True for a reduce task's id: those are never skipped (their partition would be lost). */
  isReduceTask(id: number): boolean;
  /** Sends the tasks `first` .. `first + count - 1` again, one per message. */
  resendSingly(first: number, count: number): Promise<void>;
  /** Folds the map task without a partial and counts it done. */
  skip(id: number, input: string, error: string): void;
  fail(error: Error): void;
}

/** The tasks a job skipped so far, and whether it may skip one more. */
export class SkippedTasks {
  readonly list: SkippedTask[] = [];

  /**
   * @param job for errors
   * @param limit undefined: the job skips nothing (each failure fails it)
   */
  constructor(
    private readonly job: string,
    private readonly limit: SkipLimit | undefined,
  ) {}

  /** True when the job may skip failed tasks at all. */
  get enabled(): boolean {
    return this.limit !== undefined && ('tasks' in this.limit ? this.limit.tasks > 0 : this.limit.fraction > 0);
  }

  /** Ids of the skipped tasks, ascending (what reduce tasks are told not to wait for). */
  ids(): number[] {
    return this.list.map((skipped) => skipped.task).sort((a, b) => a - b);
  }

  /**
   * How many tasks the job may skip in all; null while a fraction's total is not known (the
   * input is still being split and its size was not known up front).
   */
  allowed(mapTasks: number | null): number | null {
    if (this.limit === undefined) return 0;
    if ('tasks' in this.limit) return this.limit.tasks;
    if (mapTasks === null) return null;
    return Math.min(MAX_SKIPPED_TASKS, Math.floor(this.limit.fraction * mapTasks));
  }

  /** True when one more failure would still be within the limit (or might be, total unknown). */
  hasRoom(mapTasks: number | null): boolean {
    const allowed = this.allowed(mapTasks);
    return this.enabled && (allowed === null || this.list.length < allowed);
  }

  /**
   * A task failed for good: skipped when the limit leaves room, else the job fails naming it.
   * @param first the task message it failed in: `count` tasks from `first` (a batch when > 1)
   */
  taskFailed(job: FailingJob, task: number, error: string, first = task, count = 1): void {
    // Its result was stored after all (a process killed between storing it and its ack, every
    // time): it is counted, and must not be listed as left out.
    if (job.isFolded(task)) return;
    const input = job.inputOf(task);
    const total = job.mapTasks();
    if (job.isReduceTask(task) || !this.hasRoom(total)) {
      job.fail(this.failure(task, input, error, total));
      return;
    }
    if (count > 1) {
      // The other tasks of the batch never got a result: each goes again on its own, so that
      // only the bad one fails (again, by itself) and is skipped.
      job.resendSingly(first, count).catch((e: unknown) => job.fail(e instanceof Error ? e : new Error(String(e))));
      return;
    }
    // A resumed job reads failures stored before its tasks are published again: no input yet.
    const described = input ?? `task ${task}`;
    this.add(task, described, error);
    job.skip(task, described, error);
    const over = this.overLimit(total);
    if (over) job.fail(over);
  }

  /** The result with the skipped tasks in `skipped`; as it is when none were skipped. */
  annotate(result: Json): Json {
    if (this.list.length === 0 || result === null || typeof result !== 'object' || Array.isArray(result)) return result;
    return { ...result, skipped: this.list.map((s) => ({ ...s })) };
  }

  /** Records a skipped task (the caller checked {@link hasRoom} or checks {@link overLimit} next). */
  add(task: number, input: string, error: string): void {
    const oneLine = error.replace(/\s+/g, ' ').trim();
    this.list.push({ task, input, error: oneLine.length > MAX_ERROR_CHARS ? `${oneLine.slice(0, MAX_ERROR_CHARS - 1)}…` : oneLine });
  }

  /**
   * The failure of the job when more tasks were skipped than allowed (known only once the number
   * of map tasks is): it names the first task beyond the limit, and how many were skipped before.
   */
  overLimit(mapTasks: number | null): JobFailedError | null {
    const allowed = this.allowed(mapTasks);
    if (allowed === null || this.list.length <= allowed) return null;
    const first = this.list[allowed]!;
    return this.failure(first.task, first.input, first.error, mapTasks, allowed);
  }

  /**
   * The job's failure for a task that failed for good, saying how many tasks were skipped
   * before it when the job skips any.
   */
  failure(task: number, input: string | undefined, reason: string, mapTasks: number | null, skippedBefore = this.list.length): JobFailedError {
    if (this.limit === undefined) return new JobFailedError(this.job, reason, input, task);
    const allowed = this.allowed(mapTasks);
    const limit = allowed === null ? '' : ` (--skip-failed allows ${allowed})`;
    return new JobFailedError(this.job, `${reason}; ${skippedBefore} failed task${skippedBefore === 1 ? ' was' : 's were'} skipped before it${limit}`, input, task);
  }
}

/** The skipped tasks of a stored result, when it has any (results of older versions have none). */
export function skippedOf(result: Json): SkippedTask[] {
  if (result === null || typeof result !== 'object' || Array.isArray(result)) return [];
  const skipped = (result as Record<string, Json>).skipped;
  if (!Array.isArray(skipped)) return [];
  return skipped.filter((entry): entry is Json & SkippedTask => entry !== null && typeof entry === 'object' && !Array.isArray(entry) && typeof entry.task === 'number' && typeof entry.input === 'string' && typeof entry.error === 'string');
}

/**
 * The line that tells a reader of the result what it leaves out, or null when nothing was
 * skipped: `note: 2 tasks skipped (their inputs were not counted; the totals exclude them):
 * a.txt bytes 0-99 (error), …`.
 */
export function skippedNote(result: Json): string | null {
  const skipped = skippedOf(result);
  if (skipped.length === 0) return null;
  const what = skipped.length === 1 ? '1 task skipped (its input was not counted; the totals exclude it)' : `${skipped.length} tasks skipped (their inputs were not counted; the totals exclude them)`;
  return `note: ${what}: ${skipped.map((s) => `${s.input} (${s.error})`).join(', ')}`;
}
