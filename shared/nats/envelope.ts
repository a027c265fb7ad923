/**
 * The wire format of tasks and partial results: a 4-byte big-endian header length, a JSON
 * header, then the body bytes. Everything read from the wire is validated here before use.
 */
import type { Json } from '../kinds/kind.js';
import { isJobId } from '../subjects.js';
import { TaskRejectedError } from '../errors.js';

const VERSION = 1;
/** A header never needs more; a larger length field is hostile or broken. */
export const MAX_HEADER_BYTES = 64 * 1024;
/** No task body may exceed this, whatever the server allows. */
export const MAX_TASK_BYTES = 16 * 1024 * 1024;

export interface TaskHeader {
  v: 1;
  job: string;
  task: number;
  kind: string;
  /** What input this task covers, for error messages. */
  input: string;
  spec: Json;
}

export interface ResultHeader {
  v: 1;
  job: string;
  task: number;
  /** Which worker process computed it: "host:pid". */
  worker: string;
  /** Milliseconds the map took. */
  ms: number;
  /** Set when the task can never succeed; the job fails naming the task's input. */
  error?: string;
  /** Set when the partial is too large for a message and waits in the partials bucket. */
  object?: string;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder('utf-8', { fatal: true });

/** Packs a header and a body into one message payload. */
export function encodeEnvelope(header: TaskHeader | ResultHeader, body: Uint8Array = new Uint8Array(0)): Uint8Array {
  const json = encoder.encode(JSON.stringify(header));
  const out = new Uint8Array(4 + json.length + body.length);
  new DataView(out.buffer).setUint32(0, json.length);
  out.set(json, 4);
  out.set(body, 4 + json.length);
  return out;
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
  if (header.v !== VERSION) throw new TaskRejectedError(`unsupported message version ${String(header.v)}`);
  if (typeof header.job !== 'string' || !isJobId(header.job)) throw new TaskRejectedError('bad job id');
  if (typeof header.task !== 'number' || !Number.isSafeInteger(header.task) || header.task < 0) {
    throw new TaskRejectedError('bad task number');
  }
}

/** Longest `input` description and `error` reason accepted (they reach logs and job records). */
export const MAX_TEXT_FIELD = 4096;

const TASK_KEYS = new Set(['v', 'job', 'task', 'kind', 'input', 'spec']);
const RESULT_KEYS = new Set(['v', 'job', 'task', 'worker', 'ms', 'error', 'object']);

/**
 * Unknown header fields are refused, not ignored: a version-1 peer never sends one, so one is a
 * bug or an attempt to smuggle something past a later reader.
 */
function checkKeys(header: Record<string, unknown>, allowed: Set<string>, what: string): void {
  for (const key of Object.keys(header)) {
    if (!allowed.has(key)) throw new TaskRejectedError(`unknown ${what} header field ${JSON.stringify(key.slice(0, 64))}`);
  }
}

/** Decodes and validates a task message; throws TaskRejectedError on anything malformed. */
export function decodeTask(data: Uint8Array): { header: TaskHeader; body: Uint8Array } {
  if (data.length > MAX_TASK_BYTES + MAX_HEADER_BYTES) throw new TaskRejectedError(`task of ${data.length} bytes exceeds the limit`);
  const { header, body } = splitEnvelope(data);
  checkCommon(header);
  checkKeys(header, TASK_KEYS, 'task');
  if (typeof header.kind !== 'string' || !/^[a-z]{1,32}$/.test(header.kind)) throw new TaskRejectedError('bad kind');
  if (typeof header.input !== 'string' || header.input.length > MAX_TEXT_FIELD) throw new TaskRejectedError('bad input description');
  if (typeof header.spec !== 'object' || header.spec === null || Array.isArray(header.spec)) throw new TaskRejectedError('missing or malformed spec');
  return { header: header as unknown as TaskHeader, body };
}

/** The name a worker gives a partial it stores: `<job>.<task>.<8 hex digits>` (see task-loop.ts). */
export function isPartialObjectName(name: string, job: string, task: number): boolean {
  return name.startsWith(`${job}.${task}.`) && /^[0-9a-f]{8}$/.test(name.slice(`${job}.${task}.`.length));
}

/** Decodes and validates a result message. */
export function decodeResult(data: Uint8Array): { header: ResultHeader; body: Uint8Array } {
  const { header, body } = splitEnvelope(data);
  checkCommon(header);
  checkKeys(header, RESULT_KEYS, 'result');
  if (typeof header.worker !== 'string' || header.worker.length > 256) throw new TaskRejectedError('bad worker name');
  if (typeof header.ms !== 'number' || !Number.isFinite(header.ms) || header.ms < 0) throw new TaskRejectedError('bad duration');
  if (header.error !== undefined && (typeof header.error !== 'string' || header.error.length > MAX_TEXT_FIELD)) throw new TaskRejectedError('bad error');
  if (header.object !== undefined) {
    // Only an object of this very task: a result must not point its reader (who deletes what it
    // reads) at another task's or another job's partial.
    if (typeof header.object !== 'string' || !isPartialObjectName(header.object, header.job as string, header.task as number)) {
      throw new TaskRejectedError('bad object name');
    }
    if (body.length > 0) throw new TaskRejectedError('a result with an object carries no body');
  }
  return { header: header as unknown as ResultHeader, body };
}
