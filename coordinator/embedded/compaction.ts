/** Dropping the deleted partials that an embedded server's store would otherwise read at every start. */
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { PARTIALS_BUCKET, objectChunkSubjects, objectStreamName } from '../../shared/subjects.js';
import type { Logger } from '../../shared/log.js';
import { jetstreamLib, transportLib } from '../../shared/nats/client.js';

/** Bytes of the partials bucket's stream files above which an idle server compacts them. */
const PARTIALS_COMPACT_BYTES = 4 * 1024 * 1024;

/**
 * Deleted partials (big factorial partials go through the Object Store) stay in the stream's
 * block files on disk: nats-server 2.9 does not compact interior deletes, and reads those blocks
 * at every start (measured: 30 MB of them made each embedded start ~50 ms slower). With nobody
 * else connected and no object left in the bucket (no chunk message: a crashed job that
 * `tally resume` may finish keeps its objects, and then nothing is touched), the stream is
 * purged, which drops its blocks. Best effort: any failure leaves the store as it was.
 */
export async function compactPartials(storeDir: string, url: string, token: string, logger: Logger): Promise<void> {
  const stream = objectStreamName(PARTIALS_BUCKET);
  const blocks = join(storeDir, 'jetstream', '$G', 'streams', stream, 'msgs');
  let onDisk = 0;
  try {
    for (const name of readdirSync(blocks)) if (name.endsWith('.blk')) onDisk += statSync(join(blocks, name)).size;
  } catch {
    return;
  }
  if (onDisk < PARTIALS_COMPACT_BYTES) return;
  try {
    const { connect } = transportLib();
    const { jetstreamManager } = jetstreamLib();
    const nc = await connect({ servers: url, token, reconnect: false, name: 'tally-compact' });
    try {
      const jsm = await jetstreamManager(nc);
      const info = await jsm.streams.info(stream, { subjects_filter: objectChunkSubjects(PARTIALS_BUCKET) });
      if (info.state.messages > 0 && Object.keys(info.state.subjects ?? {}).length === 0) {
        await jsm.streams.purge(stream);
        logger.debug({ bytes: onDisk }, 'compacted the deleted partials of ended jobs');
      }
    } finally {
      await nc.close();
    }
  } catch (error) {
    logger.debug({ err: error instanceof Error ? error.message : String(error) }, 'could not compact the partials bucket');
  }
}
