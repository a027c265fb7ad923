/**
 * Inputs kept in a NATS Object Store bucket, named `obj://BUCKET[/PREFIX]`: the shared
 * filesystem of a cluster. `tally put` uploads files there once; a count reads them from any
 * machine with credentials, no shared disk needed.
 *
 * This file knows what such a name means and how an object's content digest is spelled; the
 * CLI commands (coordinator/commands/put.ts, objects.ts) use it.
 */
import type { NatsConnection } from '@nats-io/transport-node';
import type { ObjectStore } from '@nats-io/obj';
import { UsageError } from '../errors.js';

/** The bucket `tally put` uploads to unless --bucket names another. */
export const DEFAULT_INPUT_BUCKET = 'tally-inputs';

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
  const { Objm } = await import('@nats-io/obj');
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
