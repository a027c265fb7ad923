/**
 * Partial results travel inline in the result message when small, and through the partials
 * Object Store bucket when larger than one message should be.
 *
 * Workers write partials with {@link PartialsWriter}: the Object Store's own wire format
 * (chunks on `$O.<bucket>.C.<nuid>`, then the metadata on `$O.<bucket>.M.<name>`), published
 * with plain JetStream publishes. The library's `put` first reads the object's current
 * metadata, which needs `$JS.API.STREAM.MSG.GET.OBJ_<bucket>`: a right to read any message
 * of the bucket, i.e. every other task's partial. Writing blind needs publish rights only,
 * so a worker (see config/nats/secure/) can store partials and read none.
 */
import { createHash, randomBytes } from 'node:crypto';
import type { JetStreamClient } from '@nats-io/jetstream';
import type { ObjectStore } from '@nats-io/obj';
import { transportLib } from './client.js';
import { DEFAULT_INLINE_PARTIAL_LIMIT, setting } from '../settings.js';

/**
 * Tests lower it (never raise it) with TALLY_INLINE_PARTIAL_LIMIT, so that small jobs, batches
 * included, take the Object Store path too.
 */
const INLINE_PARTIAL_LIMIT_SET = setting('TALLY_INLINE_PARTIAL_LIMIT');

/**
 * Partials above this many bytes go through the Object Store (max_payload is 1 MiB by
 * default); for a batch of tasks, their partials together.
 */
export const INLINE_PARTIAL_LIMIT = INLINE_PARTIAL_LIMIT_SET ?? DEFAULT_INLINE_PARTIAL_LIMIT;

/** Partials and shares up to this size travel inline even where a server allows more. */
const MAX_INLINE_BYTES = 4 * 1024 * 1024;

/**
 * The largest partial (or share of one) sent inline to a server that takes messages of up to
 * `maxPayload` bytes: tally's own configurations allow 8 MB, and a message costs far less than
 * an object (chunks, metadata, and a SHA-256 its reader computes in JavaScript).
 */
export function inlineLimitFor(maxPayload: number): number {
  if (INLINE_PARTIAL_LIMIT_SET !== undefined) return INLINE_PARTIAL_LIMIT;
  return Math.max(INLINE_PARTIAL_LIMIT, Math.min(MAX_INLINE_BYTES, maxPayload - 64 * 1024));
}

/** What a worker needs of the partials bucket: store an object; dropping one is best effort. */
export interface PartialsSink {
  putBlob(meta: { name: string }, data: Uint8Array): Promise<unknown>;
  delete(name: string): Promise<unknown>;
}

/** Chunk size the Object Store library uses by default. */
const CHUNK_BYTES = 128 * 1024;

/**
 * Stores objects in an existing Object Store bucket with publish rights only. Readers use the
 * ordinary ObjectStore API (`getBlob` checks the SHA-256 digest written here).
 */
export class PartialsWriter implements PartialsSink {
  constructor(
    private readonly js: JetStreamClient,
    private readonly bucket: string,
    private readonly maxPayload: number,
  ) {}

  async putBlob(meta: { name: string }, data: Uint8Array): Promise<void> {
    await this.putPieces(meta.name, [data]);
  }

  /**
   * Stores the concatenation of `pieces` as one object, without joining them in memory first
   * (a reducer's sorted part can be hundreds of MB).
   */
  async putPieces(name: string, pieces: Iterable<Uint8Array>): Promise<void> {
    const nuid = randomBytes(16).toString('hex').toUpperCase();
    const chunkSize = Math.max(1024, Math.min(CHUNK_BYTES, this.maxPayload - 1024));
    const sha = createHash('sha256');
    let chunks = 0;
    let size = 0;
    // Chunks of chunkSize bytes across piece boundaries, the last one shorter; a window of
    // publishes in flight, so that a big object is not one round trip per chunk.
    const pending: Array<Promise<unknown>> = [];
    const send = async (chunk: Uint8Array) => {
      sha.update(chunk);
      const sent = this.js.publish(`$O.${this.bucket}.C.${nuid}`, chunk);
      // Awaited below, oldest first: one refused while an older one is awaited (or while the
      // next pieces are made: a big part's sort) must not be an unhandled rejection, which
      // ends the process, a reducer's or the coordinator's own stand-in's.
      sent.catch(() => undefined);
      pending.push(sent);
      chunks++;
      size += chunk.length;
      if (pending.length >= 32) await pending.shift();
    };
    let carry: Uint8Array | null = null;
    for (const piece of pieces) {
      let offset = 0;
      if (carry) {
        const take = Math.min(chunkSize - carry.length, piece.length);
        const joined: Uint8Array = new Uint8Array(carry.length + take);
        joined.set(carry);
        joined.set(piece.subarray(0, take), carry.length);
        offset = take;
        carry = joined;
        if (carry.length < chunkSize) continue;
        await send(carry);
        carry = null;
      }
      for (; offset + chunkSize <= piece.length; offset += chunkSize) await send(piece.subarray(offset, offset + chunkSize));
      if (offset < piece.length) carry = piece.slice(offset);
    }
    if (carry) await send(carry);
    await Promise.all(pending);
    const info = {
      name,
      description: '',
      options: { max_chunk_size: chunkSize },
      bucket: this.bucket,
      nuid,
      size,
      chunks,
      mtime: new Date().toISOString(),
      digest: `SHA-256=${sha.digest('base64url')}${padding(32)}`,
      deleted: false,
    };
    const h = transportLib().headers();
    h.set('Nats-Rollup', 'sub');
    await this.js.publish(`$O.${this.bucket}.M.${Buffer.from(name).toString('base64url')}${padding(Buffer.byteLength(name))}`, JSON.stringify(info), { headers: h });
  }

  /**
   * Deleting needs a purge (a right workers do not have): an object whose result was refused
   * is left to the coordinator, which sweeps its job's partials when the job ends, and to the
   * bucket's max age.
   */
  async delete(_name: string): Promise<void> {}
}

/** The '=' padding of the base64 encoding of `bytes` bytes (the Object Store pads its names). */
function padding(bytes: number): string {
  return '='.repeat((3 - (bytes % 3)) % 3);
}

/** Reads and then deletes a stored partial; throws when it is missing. */
export async function takeStoredPartial(store: ObjectStore, name: string): Promise<Uint8Array> {
  const data = await store.getBlob(name);
  if (data === null) throw new Error(`partial result object '${name}' is missing from the Object Store`);
  await store.delete(name).catch(() => undefined);
  return data;
}
