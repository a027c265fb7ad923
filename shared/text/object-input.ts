/**
 * Inputs kept in a NATS Object Store bucket, named `obj://BUCKET[/PREFIX]`: the shared
 * filesystem of a cluster. `tally put` uploads files there once; a count reads them from any
 * machine with credentials, no shared disk needed.
 *
 * This file knows what such a name means and how an object's content digest is spelled (for
 * coordinator/commands/put.ts and objects.ts), and how a worker reads a byte range of an object:
 * the Object Store keeps an object as chunks of 128 KiB, one message each on
 * `$O.BUCKET.C.<nuid>`, after which the client writes its info on `$O.BUCKET.M.<name>`. A
 * worker reads the info (size and time checked against the job's), finds where the chunks are
 * (see firstChunk) and fetches by direct get only those its range covers, plus the few bytes
 * before and after that shared/text/ranges.ts looks at to decide a range's exact edges (the
 * window: see shared/text/remote-ranges.ts, which URLs served in ranges share).
 */
import { randomUUID } from 'node:crypto';
import type { NatsConnection } from '@nats-io/transport-node';
import type { ObjectStore } from '@nats-io/obj';
import type { JetStreamManager } from '@nats-io/jetstream';
import { InputChangedError, TaskRejectedError, UsageError } from '../errors.js';
// Loads no client module itself (see there): the worker's start pays nothing for it.
import { permissionViolation } from '../nats/errors.js';
import { jetstreamLib, objLib } from '../nats/client.js';

export { DEFAULT_INPUT_BUCKET } from '../subjects.js';

/** What the Object Store client accepts as a bucket name (it becomes part of a stream name). */
const BUCKET_NAME = /^[-\w]+$/;

/** A parsed `obj://BUCKET[/PREFIX]`. */
export interface ObjectLocation {
  bucket: string;
  /** Object names start with this ('' for every object in the bucket). */
  prefix: string;
}

/** True for an input that names objects in an Object Store bucket. */
export function isObjectUrl(text: string): boolean {
  return /^obj:\/\//i.test(text);
}

/**
 * Checks a bucket name as the Object Store client would, so that a bad name is a usage error
 * before anything connects.
 * @throws UsageError naming the bucket
 */
export function checkBucketName(bucket: string, what = 'bucket'): string {
  if (!BUCKET_NAME.test(bucket)) throw new UsageError(`${what}: '${bucket}' is not a bucket name (letters, digits, - and _)`);
  return bucket;
}

/**
 * Parses `obj://BUCKET[/PREFIX]`.
 * @throws UsageError for anything else, naming the text
 */
export function parseObjectUrl(text: string): ObjectLocation {
  if (!isObjectUrl(text)) throw new UsageError(`${text}: expected obj://BUCKET[/PREFIX]`);
  const rest = text.slice('obj://'.length);
  const slash = rest.indexOf('/');
  const bucket = slash < 0 ? rest : rest.slice(0, slash);
  const prefix = slash < 0 ? '' : rest.slice(slash + 1);
  if (!BUCKET_NAME.test(bucket)) throw new UsageError(`${text}: '${bucket}' is not a bucket name (letters, digits, - and _)`);
  return { bucket, prefix };
}

/** The digest prefix the Object Store client writes before the base64 of a SHA-256. */
const DIGEST_TYPE = 'SHA-256=';

/** A SHA-256 as the Object Store client spells it in an object's info ("SHA-256=" + padded base64url). */
export function objectDigest(sha256: Uint8Array): string {
  const b64 = Buffer.from(sha256).toString('base64url');
  return `${DIGEST_TYPE}${b64}${'='.repeat((4 - (b64.length % 4)) % 4)}`;
}

/**
 * True when two digests as stored in object infos name the same SHA-256 (clients differ on
 * padding and on the base64 alphabet, so the bytes are compared).
 */
export function sameDigest(a: string | undefined, b: string | undefined): boolean {
  if (!a?.startsWith(DIGEST_TYPE) || !b?.startsWith(DIGEST_TYPE)) return false;
  const x = Buffer.from(a.slice(DIGEST_TYPE.length), 'base64url');
  const y = Buffer.from(b.slice(DIGEST_TYPE.length), 'base64url');
  return x.length === 32 && x.equals(y);
}

/**
 * Opens a bucket that must exist already (ls, rm, count).
 * @param where the server, for the message
 * @throws UsageError naming the bucket when there is none
 */
export async function openBucket(nc: NatsConnection, bucket: string, where: string): Promise<ObjectStore> {
  const { Objm } = objLib();
  try {
    return await new Objm(nc).open(bucket);
  } catch (error) {
    // The client's words for a stream that does not exist.
    if (error instanceof Error && /object store not found|stream not found/i.test(error.message)) {
      throw new UsageError(`no bucket '${bucket}' on ${where} (tally put creates it)`, { cause: error });
    }
    throw error;
  }
}

// ─── Reading a byte range of an object (workers) ────────────────────────────────────────────

/**
 * The connection a worker process reads objects through, set once it has connected (see
 * worker/process-main.ts). Objects need no --read-files: what a worker may read of them is
 * what its NATS user may read (config/nats/secure/permissions.conf), not the worker's disk.
 */
let connection: NatsConnection | null = null;

/** Lets tasks of this process read objects through `nc`. */
export function setObjectConnection(nc: NatsConnection | null): void {
  connection = nc;
  stores.clear();
  firstChunks.clear();
}

/** Buckets opened by this process, by name. */
const stores = new Map<string, Promise<ObjectStore>>();
/**
 * The stream sequence of an object's first chunk and whether its chunks follow each other
 * without a gap, by the object's nuid (a new upload gets a new nuid): found once per process.
 */
const firstChunks = new Map<string, Promise<{ seq: number; contiguous: boolean }>>();
const FIRST_CHUNKS_KEPT = 1024;

/** The bucket and object name of an `obj://BUCKET/NAME` range path. */
function objectOf(path: string): { bucket: string; name: string } {
  const { bucket, prefix } = parseObjectUrl(path);
  return { bucket, name: prefix };
}

/** Bytes [from, to) of an object, and how many of its chunks were fetched to get them. */
export interface ObjectBytes {
  bytes: Uint8Array;
  chunksRead: number;
}

/**
 * Reads bytes [from, to) of the object `path` names (obj://BUCKET/NAME), fetching only the
 * chunks that hold them (by direct get, one message each), after checking that the object is
 * the one the job was planned with: same size and modification time.
 * @throws InputChangedError naming the object when it changed or is gone;
 *   TaskRejectedError when this process has no connection to read it through
 */
export async function readObjectRange(path: string, size: number, mtimeMs: number, from: number, to: number): Promise<ObjectBytes> {
  const nc = connection;
  if (!nc) throw new TaskRejectedError(`count task: this process cannot read objects (${path}): it has no NATS connection for them`);
  const { bucket, name } = objectOf(path);
  let opening = stores.get(bucket);
  if (!opening) {
    opening = Promise.resolve().then(() => new (objLib().Objm)(nc).open(bucket));
    opening.catch(() => stores.delete(bucket));
    stores.set(bucket, opening);
  }
  let store: ObjectStore;
  try {
    store = await opening;
  } catch (error) {
    throw deniedRead(path, error) ?? new InputChangedError(path, `its bucket cannot be opened (${error instanceof Error ? error.message : String(error)})`);
  }
  const info = await store.info(name).catch((error: unknown) => {
    throw deniedRead(path, error) ?? error;
  });
  if (!info || info.deleted) throw new InputChangedError(path, 'it was deleted');
  if (info.size !== size) throw new InputChangedError(path, `it has ${info.size} bytes, not ${size}`);
  if (Date.parse(info.mtime) !== mtimeMs) throw new InputChangedError(path, `replaced ${info.mtime}`);
  if (to <= from) return { bytes: new Uint8Array(0), chunksRead: 0 };
  const chunkSize = info.options?.max_chunk_size ?? DEFAULT_CHUNK_BYTES;
  const subject = `$O.${bucket}.C.${info.nuid}`;
  const stream = `OBJ_${bucket}`;
  const jsm = (store as unknown as { jsm: JetStreamManager }).jsm;
  const get = async (query: { seq: number; next_by_subj?: string }) => {
    const msg = await jsm.direct.getMessage(stream, query).catch((error: unknown) => {
      const denied = deniedRead(path, error);
      if (denied) throw denied;
      return null;
    });
    if (!msg || msg.subject !== subject) throw new InputChangedError(path, 'its chunks are gone (replaced or deleted while it was read)');
    return msg;
  };
  // One chunk (most files): the first message on its subject is all of it; nothing to locate.
  if (info.chunks === 1) {
    const msg = await get({ seq: 1, next_by_subj: subject });
    if (msg.data.length !== size) throw new InputChangedError(path, `chunk 0 holds ${msg.data.length} bytes, not ${size}`);
    return { bytes: msg.data.subarray(from, to), chunksRead: 1 };
  }
  let first = firstChunks.get(info.nuid);
  if (!first) {
    if (firstChunks.size >= FIRST_CHUNKS_KEPT) firstChunks.clear();
    first = firstChunk(jsm, stream, subject, info.revision, info.chunks, get);
    first.catch(() => firstChunks.delete(info.nuid));
    firstChunks.set(info.nuid, first);
  }
  const { seq: firstSeq, contiguous } = await first;
  const k0 = Math.floor(from / chunkSize);
  const k1 = Math.floor((to - 1) / chunkSize);
  const pieces: Uint8Array[] = [];
  let chunksRead = 0;
  let seq = firstSeq;
  // Chunks interleaved with another upload's: walked from the first (reads the ones before).
  for (let k = contiguous ? k0 : 0; k <= k1; k++) {
    const msg = contiguous ? await get({ seq: firstSeq + k }) : await get(k === 0 ? { seq: firstSeq } : { seq: seq + 1, next_by_subj: subject });
    seq = msg.seq;
    chunksRead++;
    const expected = k < info.chunks - 1 ? chunkSize : size - k * chunkSize;
    if (msg.data.length !== expected) throw new InputChangedError(path, `chunk ${k} holds ${msg.data.length} bytes, not ${expected}`);
    if (k >= k0) pieces.push(msg.data);
  }
  const joined = pieces.length === 1 ? pieces[0]! : Buffer.concat(pieces);
  const at = from - k0 * chunkSize;
  return { bytes: joined.subarray(at, at + (to - from)), chunksRead };
}

/**
 * A task over `path` refused for good when `error` is a permissions violation: this worker's NATS
 * user may not read the object's bucket (the shipped worker role reads `tally-inputs` only), which
 * no redelivery cures. The one line names the bucket and the denied subject (and so the entry
 * the role lacks). Undefined for any other error.
 */
function deniedRead(path: string, error: unknown): TaskRejectedError | undefined {
  const violation = permissionViolation(error);
  if (!violation) return undefined;
  const { bucket } = objectOf(path);
  const verb = violation.operation === 'publish' ? 'publishing to' : 'subscribing to';
  return new TaskRejectedError(`${path}: this worker's NATS user may not read bucket '${bucket}' (permission denied ${verb} ${violation.subject}; each bucket needs its own entries in the worker role: see docs/SECURITY.md, "Tasks that name objects")`);
}

/**
 * Where an object's first chunk is, and whether its chunks follow each other. The client writes
 * an object's chunks, then its info: with nothing else written to the bucket meanwhile, chunk k
 * is at (info's sequence - chunks + k). A consumer from that sequence on the object's chunk
 * subject says how many chunks lie at or after it (and delivers nothing: no byte is read); all
 * of them means no gap. Otherwise the chunks are found one after the other from the first.
 */
async function firstChunk(
  jsm: JetStreamManager,
  stream: string,
  subject: string,
  revision: number,
  chunks: number,
  get: (query: { seq: number; next_by_subj?: string }) => Promise<{ seq: number }>,
): Promise<{ seq: number; contiguous: boolean }> {
  const candidate = revision - chunks;
  const { AckPolicy, DeliverPolicy } = jetstreamLib();
  const consumer = await jsm.consumers.add(stream, {
    // Named, so that the request's subject names its filter too, which permissions can limit
    // ($JS.API.CONSUMER.CREATE.<stream>.<name>.<filter>).
    name: `tally-count-${randomUUID().replaceAll('-', '')}`,
    filter_subject: subject,
    deliver_policy: DeliverPolicy.StartSequence,
    opt_start_seq: Math.max(1, candidate),
    ack_policy: AckPolicy.None,
    mem_storage: true,
    num_replicas: 1,
    // Removed below; this only covers a worker that dies in between.
    inactive_threshold: 10_000_000_000,
  });
  await jsm.consumers.delete(stream, consumer.name).catch(() => undefined);
  if (candidate >= 1 && consumer.num_pending === chunks) return { seq: candidate, contiguous: true };
  return { seq: (await get({ seq: 1, next_by_subj: subject })).seq, contiguous: false };
}

/** The chunk size of the Object Store client, for infos that do not say theirs. */
const DEFAULT_CHUNK_BYTES = 128 * 1024;
