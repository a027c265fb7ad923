/**
 * The job-kind contract: the MapReduce user interface, one file per kind (count, sum, primes,
 * factorial). The transport never looks inside specs, bodies or partials; only the kind does.
 *
 *   coordinator: plan(options) → split(options) → tasks ─► NATS ─► worker: map(task) → partial
 *   coordinator: init() → reduce(acc, partial) per task, exactly once → finalize(acc) → result
 */
import type { Json } from '../json.js';

/** One unit of work, as produced by `split` on the coordinator. */
export interface Task {
  /** Kind-specific description of the work; small JSON, validated by the worker before use. */
  spec: Json;
  /** Bytes the task carries (a text chunk); empty for number jobs. Workers need no shared disk. */
  body?: Uint8Array;
  /** The input this task covers, for error messages: "books/a.txt bytes 0-1048575", "range 1..1000". */
  input: string;
  /** Units of progress this task represents (input bytes for count, integers for ranges). */
  weight: number;
}

/** What the coordinator knows before splitting, for progress and the job record. */
export interface Plan {
  /** Sum of all task weights when known up front (bytes of all files, size of a range). */
  totalWeight?: number;
  /** Number of tasks when known up front. */
  totalTasks?: number;
  /** What one unit of weight is called in progress output: "B" for bytes, "" for plain counts. */
  unit: 'B' | '';
}

/** Limits the transport imposes on `split`. */
export interface SplitContext {
  /** Largest body one task may carry, already clamped to the server's max_payload. */
  maxBodyBytes: number;
}

/** What a worker offers a running `map`. */
export interface MapContext {
  /** Tells JetStream this task is still alive; call it every few seconds on long tasks. */
  working(): void;
  /**
   * Throws when nobody needs the task's result any more (another copy of it, a backup, got
   * there first); long maps call it between steps (cooperativePause does).
   */
  checkWanted?(): void;
}

/** A file a job reads, as `tally resume` and `--output` need to know it. */
export interface JobInputFile {
  /** As the user gave it ("-" is stdin), for messages. */
  path: string;
  /** Where it is read from: resolved from the directory the job was submitted in. */
  location: string;
  /** Bytes when the job started; null when unknown (stdin). */
  size: number | null;
  /** Modification time when the job started (absent in records of older versions). */
  mtimeMs?: number;
}

/** Facts about a finished job that the kind folds into its result. */
export interface JobSummary {
  job: string;
  tasks: number;
}

/**
 * A job kind: what workers run (map, and for some kinds the reduce) and what the coordinator
 * folds. Errors in `Options` are OptionErrors naming the field. A kind is registered in
 * kinds/index.ts; its command line and output live in coordinator/kinds/NAME.ts.
 * `Options` are the validated job arguments (stored in the job record, so JSON);
 * `Acc` is the coordinator's accumulator; `Result` is what the job prints as JSON and stores.
 */
export interface JobKind<Options extends Json = Json, Acc = unknown, Result extends Json = Json> {
  readonly name: string;
  /** What the job works on, in one line for `tally jobs`: "a.txt b.txt … (12 files)", "1 1000". */
  describe(options: Options): string;
  /**
   * Kinds that read files: the files a job reads. `tally resume` refuses one that changed since
   * the job started (the same bytes must give the same tasks), and `--output` may not name one.
   */
  files?(options: Options): JobInputFile[];
  /** Coordinator, before any task is sent: sizes for progress. Must not read whole inputs. */
  plan(options: Options): Promise<Plan> | Plan;
  /** Coordinator: the tasks of a job, streamed (never the whole input in memory). */
  split(options: Options, context: SplitContext): AsyncIterable<Task>;
  /**
   * Worker: computes one task's partial result. `spec` arrives from the wire: validate it and
   * throw TaskRejectedError when it can never succeed (malformed, over a limit).
   */
  map(spec: unknown, body: Uint8Array, context: MapContext): Promise<Uint8Array> | Uint8Array;
  /** Coordinator: an empty accumulator. */
  init(options: Options): Acc;
  /** Coordinator: folds one task's partial into the accumulator; called once per task id. */
  reduce(acc: Acc, partial: Uint8Array, task: number): Acc;
  /** Coordinator: the final result once every task has been reduced. */
  finalize(acc: Acc, summary: JobSummary, options: Options): Result | Promise<Result>;
  /**
   * Coordinator: map task `task` (of this spec) failed on every delivery and is skipped
   * (`--skip-failed`); it is never reduced. A kind whose fold joins neighbouring tasks (ngrams
   * joins n-grams across entry edges) learns here of the gap, so as not to join across it.
   */
  skip?(acc: Acc, task: number, spec: Json): Acc;
  /**
   * Coordinator: what the results folded so far say, for the live view (the job's progress
   * feed): small JSON, asked for at most about once a second. Absent, or null, when the kind has
   * nothing to show before it ends.
   */
  preview?(acc: Acc, options: Options): Json | null;
  /**
   * Set when a job of the kind may not skip tasks that fail on every delivery (`--skip-failed`):
   * why, in a few words ("a product with a missing factor is meaningless").
   */
  readonly unskippable?: string;
  /** Kinds that reduce on the workers (see {@link PartitionedReduce}). */
  readonly partitioned?: PartitionedReduce<Options, Acc, Result>;
}

/** What a reducer tells the coordinator of the part it stored. */
export interface PartSummary {
  /** Where the sorted part is (results bucket). */
  name: string;
  /** The kind's summary of the part (for count: how many words, and the top ones). */
  summary: Json;
}

/**
 * A kind whose reduce is partitioned and runs on the workers (the MapReduce paper's R reduce
 * tasks): each map output is split by key into `partitions` shares; reduce task p folds share p
 * of every map task's output, each map task once, into a sorted part of the result, stored
 * beside it; the coordinator folds only small summaries, so neither its time nor its memory
 * grows with the number of distinct keys. count has one; the number kinds reduce on the
 * coordinator (`reduce` and `finalize` above).
 */
export interface PartitionedReduce<Options extends Json = Json, Acc = unknown, Result extends Json = Json, PartAcc = unknown> {
  /** Reduce partitions of a job with these options; 0: the coordinator reduces (older jobs). */
  partitions(options: Options): number;
  /**
   * Worker: a map task of a partitioned job (in place of `map`): the summary that the
   * coordinator folds with `reduce`, and the task's output as one share per partition (empty
   * shares included).
   */
  map(spec: unknown, body: Uint8Array, context: MapContext, partitions: number): Promise<{ summary: Uint8Array; shares: Uint8Array[] }> | { summary: Uint8Array; shares: Uint8Array[] };
  /**
   * Coordinator, once every map task is folded into `acc`: the spec of reduce task `partition`
   * (it may carry what only the coordinator could join, such as n-grams across task edges).
   */
  reduceSpec(options: Options, partition: number, acc: Acc): Json;
  /** Worker, reduce task: an empty partition accumulator. */
  initPartition(spec: unknown): PartAcc;
  /** Worker, reduce task: folds one map task's share; called once per map task id. */
  foldPartition(acc: PartAcc, share: Uint8Array, task: number): PartAcc;
  /**
   * Worker, reduce task: the distinct keys `acc` holds. Optional: a reducer with a memory share
   * (the embedded coordinator's stand-in) gives a partition back once it holds more.
   */
  keysIn?(acc: PartAcc): number;
  /** Worker, reduce task: the sorted part to store, in pieces (made as they are read), and its summary. */
  finishPartition(acc: PartAcc, spec: unknown): { part: Iterable<Uint8Array>; summary: Json };
  /** Coordinator: the result from the folded map summaries and every partition's part. */
  finalize(acc: Acc, parts: PartSummary[], summary: JobSummary, options: Options): Result | Promise<Result>;
}

/** A job kind whose option, accumulator and result types have been erased (for registries). */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type AnyJobKind = JobKind<any, any, any>;
