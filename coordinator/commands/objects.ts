/**
 * `tally ls obj://BUCKET[/PREFIX]` and `tally rm obj://BUCKET/NAME…`: what `tally put` stored,
 * and removing it, on --server's server or in the embedded default's store (sessions of
 * `purpose: 'read'`: no worker). A bucket that does not exist is one line, exit 2.
 */
import { Command } from '../commander.js';
import { InputError, UsageError } from '../../shared/errors.js';
import { MAGIC_BYTES, compressionOf, unsupported } from '../../shared/text/compressed.js';
import { openBucket, parseObjectUrl } from '../../shared/text/object-input.js';
import { formatTable, loadDisplayWidth } from '../output.js';
import { explainNatsError, formatOption, withCommonOptions, withSession, type CommonOptions } from './common.js';
import type { NatsConnection } from '@nats-io/transport-node';
import type { ObjectStore } from '@nats-io/obj';
import { displayServers, type ConnectionSettings } from '../../shared/nats/connection-settings.js';
import { connectToNats } from '../../shared/nats/connection.js';
import type { ObjectLister, ResolvedInput } from '../inputs.js';
import type { Session } from '../session.js';
import type { Logger } from '../../shared/log.js';
import { jetstreamLib } from '../../shared/nats/client.js';

/** One stored object, as `ls` shows it. */
export interface ObjectRow {
  name: string;
  size: number;
  modified: string;
  digest: string;
}

/** What an object's info message holds (the client's ServerObjectInfo), as far as tally reads it. */
interface StoredInfo {
  name: string;
  size: number;
  mtime: string;
  digest: string;
  deleted?: boolean;
}

/**
 * The live objects of `bucket` (opened already: see openBucket) whose names start with `prefix`, by name. Read through an
 * ordered consumer of the info subjects only ($O.BUCKET.M.>), the last message of each: the
 * client's own list() first gets a message by sequence, which would let a user allowed to list
 * (the reader role) read any chunk as well.
 */
export async function listObjects(nc: NatsConnection, bucket: string, prefix: string): Promise<StoredInfo[]> {
  const { jetstream, DeliverPolicy } = jetstreamLib();
  const consumer = await jetstream(nc).consumers.get(`OBJ_${bucket}`, { filter_subjects: `$O.${bucket}.M.>`, deliver_policy: DeliverPolicy.LastPerSubject });
  const infos: StoredInfo[] = [];
  try {
    let pending = (await consumer.info(true)).num_pending;
    while (pending > 0) {
      const batch = await consumer.fetch({ max_messages: Math.min(pending, 1000), expires: 5000 });
      for await (const message of batch) {
        infos.push(message.json<StoredInfo>());
        pending = message.info.pending;
        if (pending === 0) break;
      }
    }
  } finally {
    await consumer.delete().catch(() => undefined);
  }
  return infos.filter((info) => !info.deleted && info.name.startsWith(prefix)).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

export function renderObjects(rows: ObjectRow[], format: 'table' | 'json'): string {
  if (format === 'json') return JSON.stringify(rows) + '\n';
  if (rows.length === 0) return '(no objects)\n';
  return formatTable(
    rows.map((row) => [row.name, row.size, row.modified, row.digest]),
    ['name', 'size', 'modified', 'digest'],
  );
}

interface LsCliOptions extends CommonOptions {
  format: 'table' | 'json';
}

export function lsCommand(): Command {
  const command = new Command('ls')
    .description('objects stored with tally put: name, size, modified, digest')
    .argument('<location>', 'obj://BUCKET[/PREFIX]')
    .addOption(formatOption(['table', 'json']));
  return withCommonOptions(command).action(async (location: string, options: LsCliOptions) => {
    const { bucket, prefix } = parseObjectUrl(location);
    await withSession(
      options,
      async (session) => {
        await openBucket(session.nc, bucket, sessionServer(session));
        const rows = (await listObjects(session.nc, bucket, prefix)).map((info) => ({ name: info.name, size: info.size, modified: info.mtime, digest: info.digest }));
        if (options.format === 'table') await loadDisplayWidth();
        process.stdout.write(renderObjects(rows, options.format));
      },
      0,
    );
  });
}

interface RmCliOptions extends CommonOptions {
  recursive?: boolean;
}

export function rmCommand(): Command {
  const command = new Command('rm')
    .description('delete objects stored with tally put')
    .argument('<locations...>', 'obj://BUCKET/NAME (with --recursive: obj://BUCKET/PREFIX, or obj://BUCKET for all)')
    .option('-r, --recursive', 'delete every object whose name starts with the given prefix');
  return withCommonOptions(command).action(async (locations: string[], options: RmCliOptions) => {
    const targets = locations.map(parseObjectUrl);
    // Without --recursive, a location names one object: an empty name would mean every one.
    if (!options.recursive) {
      const bare = locations.find((_, i) => targets[i]!.prefix === '');
      if (bare !== undefined) throw new UsageError(`${bare}: names a bucket, not an object (--recursive deletes every object in it)`);
    }
    await withSession(
      options,
      async (session) => {
        let deleted = 0;
        for (let i = 0; i < targets.length; i++) {
          const { bucket, prefix } = targets[i]!;
          const store = await openBucket(session.nc, bucket, sessionServer(session));
          const names = options.recursive ? (await listObjects(session.nc, bucket, prefix)).map((info) => info.name) : [prefix];
          if (!options.recursive) {
            const info = await store.info(prefix);
            if (!info || info.deleted) throw new UsageError(`${locations[i]}: no such object${deleted > 0 ? ` (${deleted} deleted before it)` : ''}`);
          }
          for (const name of names) {
            await store.delete(name);
            deleted++;
          }
        }
        process.stdout.write(`deleted ${deleted} object${deleted === 1 ? '' : 's'}\n`);
      },
      0,
    );
  });
}

/** Objects whose first bytes are looked at at once. */
const HEADS_IN_FLIGHT = 8;

/**
 * Sets `compression` on the objects whose first bytes say they are compressed, as a walk does
 * for files (one read of each object's first chunk).
 * @throws InputError naming a compressed object this Node cannot decompress
 */
async function findCompressed(store: ObjectStore, objects: ResolvedInput[]): Promise<void> {
  let next = 0;
  const look = async () => {
    while (next < objects.length) {
      const object = objects[next++]!;
      if ((object.size ?? 0) < MAGIC_BYTES) continue;
      const head = await objectHead(store, object.path.slice(object.path.indexOf('/', 'obj://'.length) + 1));
      const compression = head && compressionOf(head);
      if (!compression) continue;
      const why = unsupported(compression);
      if (why) throw new InputError(object.path, why);
      object.compression = compression;
    }
  };
  await Promise.all(Array.from({ length: Math.min(HEADS_IN_FLIGHT, objects.length) }, look));
}

/** The first bytes of an object (its first chunk), or null when it is gone. */
async function objectHead(store: ObjectStore, name: string): Promise<Uint8Array | null> {
  const result = await store.get(name);
  if (!result) return null;
  // Cancelling the read below can race a chunk the client is still handing over: its failure
  // then rejects this promise, which must not go unhandled (Node 24 ended the process on it).
  result.error.catch(() => undefined);
  const reader = result.data.getReader();
  try {
    const first = await reader.read();
    return first.done ? null : first.value;
  } finally {
    await reader.cancel().catch(() => undefined);
  }
}

/** A lister of the objects `obj://` inputs name, and the closing of its connection. */
export interface ObjectListing {
  list: ObjectLister;
  close(): Promise<void>;
}

/**
 * The objects `obj://` inputs of a count name, listed through a connection of their own (made
 * on first use): a job's inputs are chosen before its session opens. Sizes and upload times
 * only; no object is read.
 * @param where the server, as messages name it (default: its URLs)
 */
export function objectLister(connection: ConnectionSettings, where = displayServers(connection.servers)): ObjectListing {
  let opened: Promise<NatsConnection> | undefined;
  return {
    async list(url: string): Promise<ResolvedInput[]> {
      const { bucket, prefix } = parseObjectUrl(url);
      opened ??= connectToNats({ ...connection, name: 'tally-coordinator' });
      const nc = await opened;
      try {
        const store = await openBucket(nc, bucket, where);
        const objects = (await listObjects(nc, bucket, prefix)).map((info): ResolvedInput => ({ path: `obj://${bucket}/${info.name}`, size: info.size, mtimeMs: Date.parse(info.mtime) }));
        await findCompressed(store, objects);
        return objects;
      } catch (error) {
        throw explainNatsError(error, connection, where);
      }
    },
    async close(): Promise<void> {
      await (await opened?.catch(() => undefined))?.close();
    },
  };
}

/** How messages name the embedded server: its loopback URL changes every run and says nothing. */
export const EMBEDDED_SERVER = 'the embedded server';

/**
 * {@link objectLister} in the embedded default: the objects `tally put` stored in the embedded
 * server's store, listed on the server the job then runs on (started or joined here, and taken
 * by the job's session: see shareEmbeddedServer).
 */
export function embeddedObjectLister(logger: Logger): ObjectListing {
  let inner: Promise<ObjectListing> | undefined;
  const open = () =>
    (inner ??= (async () => {
      const [{ shareEmbeddedServer }, { embeddedConnection }] = await Promise.all([import('../embedded/prestart.js'), import('../embedded/server.js')]);
      return objectLister(embeddedConnection(await shareEmbeddedServer(logger)), EMBEDDED_SERVER);
    })());
  return {
    list: async (url) => (await open()).list(url),
    close: async () => (await inner?.catch(() => undefined))?.close(),
  };
}

/** The server a session's messages name: the embedded one by what it is, not by its URL. */
export function sessionServer(session: Session): string {
  return session.isEmbedded ? EMBEDDED_SERVER : session.server;
}
