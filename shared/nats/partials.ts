/**
 * Partial results travel inline in the result message when small, and through the partials
 * Object Store bucket when larger than one message should be.
 */
import type { ObjectStore } from '@nats-io/obj';

/** Partials above this many bytes go through the Object Store (max_payload is 1 MiB by default). */
export const INLINE_PARTIAL_LIMIT = 512 * 1024;

/** Reads and then deletes a stored partial; throws when it is missing. */
export async function takeStoredPartial(store: ObjectStore, name: string): Promise<Uint8Array> {
  const data = await store.getBlob(name);
  if (data === null) throw new Error(`partial result object '${name}' is missing from the Object Store`);
  await store.delete(name).catch(() => undefined);
  return data;
}
