/**
 * The wire format of tasks and partial results: a 4-byte big-endian header length, a JSON
 * header, then the body bytes. Everything read from the wire is validated here before use.
 *
 * A task message carries one task ({@link TaskHeader}) or a batch of tiny tasks with
 * consecutive ids ({@link BatchTaskHeader}: `task` is the first id, `batch` lists each task's
 * input and spec, and the body is their bodies back to back). The result of a batch is one
 * message too: `count` tasks from `task` on, `sizes` cutting the body (or the stored object)
 * into their partials, or `error` and the index of the task that `failed`.
 */
import type { Json } from '../json.js';
import { MAX_BATCH_TASKS, MAX_PARTITIONS, isJobId } from '../subjects.js';
import { TaskRejectedError } from '../errors.js';
import { MAX_TASK_BYTES } from '../limits.js';

const VERSION = 1;
/** A header never needs more; a larger length field is hostile or broken. */
export const MAX_HEADER_BYTES = 64 * 1024;

export interface TaskHeader {
  v: 1;
  job: string;
  task: number;
  kind: string;
  /** What input this task covers, for error messages. */
  input: string;
  spec: Json;
  /** A map task of a partitioned job: its output goes to this many reduce partitions. */
  partitions?: number;
  /** A reduce task: fold `partition` of the outputs of map tasks 0 .. tasks - 1. */
  reduce?: ReduceOrder;
}

/** What a reduce task is to reduce. */
export interface ReduceOrder {
  partition: number;
  partitions: number;
  /** Map tasks of the job (ids 0 .. tasks - 1), each with one output per partition. */
  tasks: number;
  /**
   * Map tasks skipped because they failed on every delivery (`--skip-failed`): ascending ids
   * below `tasks` whose shares the reducer neither waits for nor folds. Absent when none.
   */
  skipped?: number[];
}

/** Map tasks a job may skip at most (`--skip-failed`): their ids must fit a reduce order's header. */
export const MAX_SKIPPED_TASKS = 1000;

/** One task of a batch: what a {@link TaskHeader} says beyond the ids, and its body's length. */
export interface BatchEntry {
  input: string;
  spec: Json;
  /** Length of this task's body within the message body; omitted for none. */
  bytes?: number;
}

/** A batch of tasks `task` .. `task + batch.length - 1` of one job and kind, in one message. */
export interface BatchTaskHeader {
  v: 1;
  job: string;
  /** The first task id. */
  task: number;
  kind: string;
  /** Two or more tasks, in id order. */
  batch: BatchEntry[];
  /** Map tasks of a partitioned job: see {@link TaskHeader.partitions}. */
  partitions?: number;
}

/** A decoded task message: one task, or each task of a batch with its own header and body. */
export interface TaskBatch {
  job: string;
  /** The first task id; the tasks' ids are consecutive. */
  first: number;
  kind: string;
  /** Map tasks of a partitioned job: how many partitions their outputs go to. */
  partitions?: number;
  /** A reduce task (never batched). */
  reduce?: ReduceOrder;
  tasks: Array<{ header: TaskHeader; body: Uint8Array }>;
}

export interface ResultHeader {
  v: 1;
  job: string;
  /** The task id; the first task id for the result of a batch. */
  task: number;
  /** Which worker process computed it: "host:pid". */
  worker: string;
  /** Milliseconds the map took. */
  ms: number;
  /** Set when the task can never succeed; the job fails naming the task's input. */
  error?: string;
  /** Set when the partial is too large for a message and waits in the partials bucket. */
  object?: string;
  /** Results of a batch only: how many tasks (two or more) it covers, from `task` on. */
  count?: number;
  /** Results of a batch without error: each task's partial length, in id order. */
  sizes?: number[];
  /** Results of a batch with `error`: the index within the batch of the task that failed. */
  failed?: number;
  /** The result of a reduce task: which partition's part it describes. */
  partition?: number;
  /** Which delivery of the task message produced it, when not the first. */
  deliveries?: number;
}

/**
 * One partition's share of the map output of a task message (one task or a batch): the
 * reducer of that partition reads it from the shuffle stream.
 */
export interface ShuffleHeader {
  v: 1;
  job: string;
  task: number;
  partition: number;
  /** A batch's: how many tasks (two or more) from `task` on. */
  count?: number;
  /** A batch's: each task's share of the body (or object), in id order. */
  sizes?: number[];
  /** Set when the body is too large for a message and waits in the partials bucket. */
  object?: string;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder('utf-8', { fatal: true });

/** Packs a header and a body into one message payload. */
export function encodeEnvelope(header: TaskHeader | BatchTaskHeader | ResultHeader | ShuffleHeader, body: Uint8Array = new Uint8Array(0)): Uint8Array {
  return encodeJsonEnvelope(JSON.stringify(header), body);
}

/** Packs a header already serialized as JSON and a body into one message payload. */
function encodeJsonEnvelope(header: string, body: Uint8Array): Uint8Array {
  const json = encoder.encode(header);
  const out = new Uint8Array(4 + json.length + body.length);
  new DataView(out.buffer).setUint32(0, json.length);
  out.set(json, 4);
  out.set(body, 4 + json.length);
  return out;
}

/**
 * One entry of a batch as JSON, so that the coordinator serializes each task once and can
 * bound the header's size while it fills a batch.
 */
export function batchEntryJson(input: string, spec: Json, bytes: number): string {
  const entry: BatchEntry = bytes > 0 ? { input, spec, bytes } : { input, spec };
  return JSON.stringify(entry);
}

/** Packs a batch: entries from {@link batchEntryJson} in id order, their bodies back to back. */
export function encodeTaskBatch(job: string, first: number, kind: string, entries: string[], body: Uint8Array = new Uint8Array(0), partitions?: number): Uint8Array {
  const shuffled = partitions === undefined ? '' : `,"partitions":${partitions}`;
  return encodeJsonEnvelope(`{"v":1,"job":${JSON.stringify(job)},"task":${first},"kind":${JSON.stringify(kind)}${shuffled},"batch":[${entries.join(',')}]}`, body);
}

function splitEnvelope(data: Uint8Array): { header: Record<string, unknown>; body: Uint8Array } {
  if (data.length < 4) throw new TaskRejectedError(`message too short (${data.length} bytes)`);
  const length = new DataView(data.buffer, data.byteOffset, data.byteLength).getUint32(0);
  if (length > MAX_HEADER_BYTES || 4 + length > data.length) {
    throw new TaskRejectedError(`bad header length ${length} in a ${data.length}-byte message`);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(decoder.decode(data.subarray(4, 4 + length)));
  } catch {
    throw new TaskRejectedError('header is not valid UTF-8 JSON');
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new TaskRejectedError('header is not a JSON object');
  }
  return { header: parsed as Record<string, unknown>, body: data.subarray(4 + length) };
}

function checkCommon(header: Record<string, unknown>): void {
  if (header.v !== VERSION) throw new TaskRejectedError(`unsupported message version ${typeof header.v === 'number' ? header.v : typeof header.v}`);
  if (typeof header.job !== 'string' || !isJobId(header.job)) throw new TaskRejectedError('bad job id');
  if (typeof header.task !== 'number' || !Number.isSafeInteger(header.task) || header.task < 0) {
    throw new TaskRejectedError('bad task number');
  }
}

/** Longest `input` description and `error` reason accepted (they reach logs and job records). */
export const MAX_TEXT_FIELD = 4096;

const TASK_KEYS = new Set(['v', 'job', 'task', 'kind', 'input', 'spec', 'partitions', 'reduce']);
const BATCH_KEYS = new Set(['v', 'job', 'task', 'kind', 'batch', 'partitions']);
const REDUCE_KEYS = new Set(['partition', 'partitions', 'tasks', 'skipped']);
const SHUFFLE_KEYS = new Set(['v', 'job', 'task', 'partition', 'count', 'sizes', 'object']);
const ENTRY_KEYS = new Set(['input', 'spec', 'bytes']);
const RESULT_KEYS = new Set(['v', 'job', 'task', 'worker', 'ms', 'error', 'object', 'count', 'sizes', 'failed', 'partition', 'deliveries']);

const isPartitionCount = (n: unknown): n is number => typeof n === 'number' && Number.isSafeInteger(n) && n >= 1 && n <= MAX_PARTITIONS;
const isPartition = (n: unknown, partitions: number): n is number => typeof n === 'number' && Number.isSafeInteger(n) && n >= 0 && n < partitions;

function checkPartitions(partitions: unknown): void {
  if (partitions !== undefined && !isPartitionCount(partitions)) throw new TaskRejectedError(`partitions must be an integer from 1 to ${MAX_PARTITIONS}`);
}

function checkReduce(reduce: unknown): void {
  if (reduce === undefined) return;
  if (typeof reduce !== 'object' || reduce === null || Array.isArray(reduce)) throw new TaskRejectedError('malformed reduce order');
  checkKeys(reduce as Record<string, unknown>, REDUCE_KEYS, 'reduce order');
  const { partition, partitions, tasks } = reduce as Record<string, unknown>;
  if (!isPartitionCount(partitions) || !isPartition(partition, partitions)) throw new TaskRejectedError('bad reduce partition');
  if (typeof tasks !== 'number' || !Number.isSafeInteger(tasks) || tasks < 0) throw new TaskRejectedError('bad reduce task count');
  checkSkipped((reduce as Record<string, unknown>).skipped, tasks);
}

/** A reduce order's skipped map tasks: 1..MAX_SKIPPED_TASKS ids, ascending, each below `tasks`. */
function checkSkipped(skipped: unknown, tasks: number): void {
  if (skipped === undefined) return;
  if (!Array.isArray(skipped) || skipped.length === 0 || skipped.length > MAX_SKIPPED_TASKS) throw new TaskRejectedError(`skipped tasks must be a list of 1 to ${MAX_SKIPPED_TASKS} task ids`);
  let previous = -1;
  for (const id of skipped as unknown[]) {
    // Ascending, so that a repeated id cannot make the reducer finish with a share missing.
    if (typeof id !== 'number' || !Number.isSafeInteger(id) || id <= previous || id >= tasks) throw new TaskRejectedError('skipped task ids must ascend and be below the reduce task count');
    previous = id;
  }
}

/**
 * Unknown header fields are refused, not ignored: a version-1 peer never sends one, so one is a
 * bug or an attempt to smuggle something past a later reader.
 */
function checkKeys(header: Record<string, unknown>, allowed: Set<string>, what: string): void {
  for (const key of Object.keys(header)) {
    if (!allowed.has(key)) throw new TaskRejectedError(`unknown ${what} header field ${JSON.stringify(key.slice(0, 64))}`);
  }
}

function checkKind(kind: unknown): void {
  if (typeof kind !== 'string' || !/^[a-z]{1,32}$/.test(kind)) throw new TaskRejectedError('bad kind');
}

function checkInputAndSpec(input: unknown, spec: unknown): void {
  if (typeof input !== 'string' || input.length > MAX_TEXT_FIELD) throw new TaskRejectedError('bad input description');
  if (typeof spec !== 'object' || spec === null || Array.isArray(spec)) throw new TaskRejectedError('missing or malformed spec');
}

/** Decodes and validates a message carrying one task; throws TaskRejectedError on anything malformed (a batch too). */
export function decodeTask(data: Uint8Array): { header: TaskHeader; body: Uint8Array } {
  if (data.length > MAX_TASK_BYTES + MAX_HEADER_BYTES) throw new TaskRejectedError(`task of ${data.length} bytes exceeds the limit`);
  const { header, body } = splitEnvelope(data);
  return { header: checkTask(header), body };
}

function checkTask(header: Record<string, unknown>): TaskHeader {
  checkCommon(header);
  checkKeys(header, TASK_KEYS, 'task');
  checkKind(header.kind);
  checkInputAndSpec(header.input, header.spec);
  checkPartitions(header.partitions);
  checkReduce(header.reduce);
  if (header.partitions !== undefined && header.reduce !== undefined) throw new TaskRejectedError('a task is a map task or a reduce task, not both');
  return header as unknown as TaskHeader;
}

/**
 * Decodes and validates a task message of either form, one task or a batch; throws
 * TaskRejectedError on anything malformed. Bodies are views into `data`, never copies.
 */
export function decodeTaskBatch(data: Uint8Array): TaskBatch {
  if (data.length > MAX_TASK_BYTES + MAX_HEADER_BYTES) throw new TaskRejectedError(`task of ${data.length} bytes exceeds the limit`);
  const { header, body } = splitEnvelope(data);
  if (!('batch' in header)) {
    const single = checkTask(header);
    return { job: single.job, first: single.task, kind: single.kind, partitions: single.partitions, reduce: single.reduce, tasks: [{ header: single, body }] };
  }
  checkCommon(header);
  checkKeys(header, BATCH_KEYS, 'task');
  checkKind(header.kind);
  checkPartitions(header.partitions);
  const { job, task: first, kind, batch, partitions } = header as unknown as BatchTaskHeader;
  if (!Array.isArray(batch) || batch.length < 2 || batch.length > MAX_BATCH_TASKS) {
    throw new TaskRejectedError(`a batch must list 2 to ${MAX_BATCH_TASKS} tasks`);
  }
  if (!Number.isSafeInteger(first + batch.length - 1)) throw new TaskRejectedError('bad task number');
  const tasks: TaskBatch['tasks'] = new Array(batch.length);
  let offset = 0;
  for (let i = 0; i < batch.length; i++) {
    const entry = batch[i] as unknown;
    if (typeof entry !== 'object' || entry === null || Array.isArray(entry)) throw new TaskRejectedError('malformed batch entry');
    checkKeys(entry as Record<string, unknown>, ENTRY_KEYS, 'batch entry');
    const { input, spec, bytes } = entry as BatchEntry;
    checkInputAndSpec(input, spec);
    if (bytes !== undefined && (!Number.isSafeInteger(bytes) || bytes < 0 || offset + bytes > body.length)) throw new TaskRejectedError('bad batch entry length');
    const end = offset + (bytes ?? 0);
    tasks[i] = { header: { v: 1, job, task: first + i, kind, input, spec, ...(partitions !== undefined ? { partitions } : {}) }, body: body.subarray(offset, end) };
    offset = end;
  }
  if (offset !== body.length) throw new TaskRejectedError('batch entry lengths do not add up to the body');
  return { job, first, kind, partitions, tasks };
}

/**
 * The name a worker gives a partial it stores: `<job>.<task>.<8 hex digits>`, or
 * `<job>.<first>-<last>.<8 hex digits>` for a batch's (see task-loop.ts).
 */
export function isPartialObjectName(name: string, job: string, task: number, count = 1): boolean {
  const prefix = `${job}.${count === 1 ? task : `${task}-${task + count - 1}`}.`;
  return name.startsWith(prefix) && /^[0-9a-f]{8}$/.test(name.slice(prefix.length));
}

const isSize = (n: unknown): n is number => typeof n === 'number' && Number.isSafeInteger(n) && n >= 0;

/** Decodes and validates a result message. */
export function decodeResult(data: Uint8Array): { header: ResultHeader; body: Uint8Array } {
  const { header, body } = splitEnvelope(data);
  checkCommon(header);
  checkKeys(header, RESULT_KEYS, 'result');
  if (typeof header.worker !== 'string' || header.worker.length > 256) throw new TaskRejectedError('bad worker name');
  if (typeof header.ms !== 'number' || !Number.isFinite(header.ms) || header.ms < 0) throw new TaskRejectedError('bad duration');
  if (header.error !== undefined && (typeof header.error !== 'string' || header.error.length > MAX_TEXT_FIELD)) throw new TaskRejectedError('bad error');
  if (header.deliveries !== undefined && !(isSize(header.deliveries) && header.deliveries >= 2)) throw new TaskRejectedError('bad delivery count');
  let count = 1;
  if (header.count !== undefined) {
    if (typeof header.count !== 'number' || !Number.isSafeInteger(header.count) || header.count < 2 || header.count > MAX_BATCH_TASKS) throw new TaskRejectedError('bad batch size');
    count = header.count;
    if (!Number.isSafeInteger((header.task as number) + count - 1)) throw new TaskRejectedError('bad task number');
    if (header.error !== undefined) {
      if (!isSize(header.failed) || header.failed >= count) throw new TaskRejectedError('a failed batch must name the failed task');
      if (header.sizes !== undefined) throw new TaskRejectedError('a failed batch carries no sizes');
    } else {
      if (header.failed !== undefined) throw new TaskRejectedError('only a failed batch names a failed task');
      const sizes = header.sizes;
      if (!Array.isArray(sizes) || sizes.length !== count || !sizes.every(isSize)) throw new TaskRejectedError('bad batch sizes');
      // With an object, the coordinator checks the sizes against the object it reads.
      if (header.object === undefined && sizes.reduce((a: number, b: number) => a + b, 0) !== body.length) throw new TaskRejectedError('batch sizes do not add up to the body');
    }
  } else if (header.sizes !== undefined || header.failed !== undefined) {
    throw new TaskRejectedError('sizes and failed belong to the result of a batch');
  }
  if (header.object !== undefined) {
    // Only an object of this very task (or batch): a result must not point its reader (who
    // deletes what it reads) at another task's or another job's partial.
    if (typeof header.object !== 'string' || !isPartialObjectName(header.object, header.job as string, header.task as number, count)) {
      throw new TaskRejectedError('bad object name');
    }
    if (body.length > 0) throw new TaskRejectedError('a result with an object carries no body');
  }
  if (header.partition !== undefined) {
    if (!isPartition(header.partition, MAX_PARTITIONS)) throw new TaskRejectedError('bad partition');
    if (count !== 1) throw new TaskRejectedError('the result of a reduce task is never a batch');
  }
  return { header: header as unknown as ResultHeader, body };
}

/**
 * Decodes and validates one partition's map output from the shuffle stream; the sizes of a
 * batch's are checked against the body here, or against the object by its reader.
 */
export function decodeShuffle(data: Uint8Array): { header: ShuffleHeader; body: Uint8Array } {
  const { header, body } = splitEnvelope(data);
  checkCommon(header);
  checkKeys(header, SHUFFLE_KEYS, 'shuffle');
  if (!isPartition(header.partition, MAX_PARTITIONS)) throw new TaskRejectedError('bad partition');
  let count = 1;
  if (header.count !== undefined) {
    if (typeof header.count !== 'number' || !Number.isSafeInteger(header.count) || header.count < 2 || header.count > MAX_BATCH_TASKS) throw new TaskRejectedError('bad batch size');
    count = header.count;
    const sizes = header.sizes;
    if (!Array.isArray(sizes) || sizes.length !== count || !sizes.every(isSize)) throw new TaskRejectedError('bad batch sizes');
    if (header.object === undefined && sizes.reduce((a: number, b: number) => a + b, 0) !== body.length) throw new TaskRejectedError('batch sizes do not add up to the body');
  } else if (header.sizes !== undefined) {
    throw new TaskRejectedError('sizes belong to the output of a batch');
  }
  if (header.object !== undefined) {
    const expected = `${header.job as string}.${count === 1 ? String(header.task) : `${header.task as number}-${(header.task as number) + count - 1}`}.p${header.partition as number}.`;
    if (typeof header.object !== 'string' || !header.object.startsWith(expected) || !/^[0-9a-f]{8}$/.test(header.object.slice(expected.length))) throw new TaskRejectedError('bad object name');
    if (body.length > 0) throw new TaskRejectedError('a shuffle message with an object carries no body');
  }
  return { header: header as unknown as ShuffleHeader, body };
}
