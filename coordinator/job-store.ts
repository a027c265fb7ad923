/**
 * Job records (KV bucket) and final results (Object Store): what `tally jobs` and
 * `tally result` read back after the job's coordinator is gone.
 */
import type { TaskIncident } from '../shared/job-feed.js';
import type { KV } from '@nats-io/kv';
import type { ObjectStore } from '@nats-io/obj';
import type { NatsConnection } from '@nats-io/transport-node';
import type { JetStreamManager } from '@nats-io/jetstream';
import { JOBS_BUCKET, RESULTS_BUCKET, kvStreamName, objectStreamName } from '../shared/subjects.js';
import type { Json } from '../shared/json.js';
import { openJobsBucket, openResultsStore, type TopologyOptions } from '../shared/nats/topology.js';
import { assertJobId } from '../shared/subjects.js';
import { gunzipSync, gzipSync } from 'node:zlib';
import { withRetry } from '../shared/nats/retry.js';
import { isTransient, isWrongLastSequence } from '../shared/nats/errors.js';
import { ExitCode, TallyError, UsageError } from '../shared/errors.js';

export type JobStatus = 'running' | 'done' | 'failed' | 'cancelled';

/** One job as stored in the KV bucket. Times are ISO strings. */
export interface JobRecord {
  id: string;
  kind: string;
  /**
   * The job's validated options, as the kind received them; null when they are too big for a
   * record (a folder of 100,000 files) and kept as the object `argsObject` beside the results.
   * Read them with {@link JobStore.args}.
   */
  args: Json;
  /** Object in the results bucket holding `args`, when the record does not. */
  argsObject?: string;
  /** What `tally jobs` shows of the arguments (the kind's `describe`); absent in records of older versions. */
  argsSummary?: string;
  status: JobStatus;
  progress: { tasksDone: number; tasksTotal: number | null; weightDone: number; weightTotal: number | null };
  created: string;
  finished: string | null;
  /** Wall time from creation to the end, in milliseconds. */
  elapsedMs: number | null;
  error: string | null;
  /**
   * Map tasks that failed on every delivery and were left out of the result (`--skip-failed`);
   * absent when none were (and in records of older versions).
   */
  skipped?: number;
  /**
   * The tasks that did not simply succeed on their first delivery (failed deliveries,
   * redeliveries, backups, skips, the failure that ended the job), with the input, worker and
   * error of each event: the job's dead-letter record, written when the job ends; absent when
   * there were none.
   */
  incidents?: TaskIncident[];
  /** Tasks with such a history beyond the ones `incidents` keeps. */
  incidentsOmitted?: number;
  /** host:pid of the coordinator that runs it. */
  coordinator: string;
  /**
   * A token the running coordinator made for itself (absent in records of older versions): the
   * record belongs to the coordinator that wrote it, and a new one is made by `tally resume`.
   */
  lease?: string;
}

/** A record as read, with the revision that an update must name (see {@link JobStore.update}). */
export interface StoredJobRecord {
  record: JobRecord;
  revision: number;
}

/**
 * Another coordinator wrote the job's record since this one last did (`tally resume` took the
 * job over, or `tally jobs --delete` removed it): this coordinator no longer owns the job and
 * must stop without writing anything of it. Exit 1.
 */
export class JobTakenOverError extends TallyError {
  readonly job: string;
  /** host:pid of the coordinator that holds the job now; null when the record is gone. */
  readonly by: string | null;
  constructor(job: string, by: string | null) {
    super(
      by === null
        ? `job ${job} was deleted while this coordinator was running it; stopped without touching it`
        : `job ${job} was taken over by the coordinator ${by} (tally resume); this one stopped without touching the job`,
      ExitCode.failed,
    );
    this.job = job;
    this.by = by;
  }
}

/**
 * Arguments larger than this (as JSON) are kept as an object beside the results, not in the
 * record: a record is rewritten every second while its job runs, and a server refuses a record
 * larger than its max_payload (1 MiB by default; a folder of 12,000 files makes ~1 MB).
 */
const ARGS_INLINE_BYTES = 64 * 1024;

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Reads and writes job records and results. Holds no connection of its own. */
export class JobStore {
  private constructor(
    private readonly records: KV,
    private readonly results: ObjectStore,
  ) {}

  static async open(nc: NatsConnection, options: TopologyOptions = {}): Promise<JobStore> {
    const [records, results] = await Promise.all([openJobsBucket(nc, options), openResultsStore(nc, options)]);
    return new JobStore(records, results);
  }

  /**
   * Stores the record of a new job; returns its revision. Fails if a record with that id exists.
   */
  async create(record: JobRecord): Promise<number> {
    return this.records.create(record.id, encoder.encode(JSON.stringify(record)));
  }

  /**
   * Replaces a job's record only if it is still at `revision` (the one this coordinator read or
   * wrote last): the server checks it, so of two coordinators that both believe they run a job,
   * only the one that took it last can write. Returns the new revision.
   * @throws JobTakenOverError when someone else wrote (or deleted) the record meanwhile
   */
  async update(record: JobRecord, revision: number): Promise<number> {
    const value = encoder.encode(JSON.stringify(record));
    for (let expected = revision; ; ) {
      try {
        return await this.records.update(record.id, value, expected);
      } catch (error) {
        if (!isWrongRevision(error)) throw error;
        const now = await this.read(record.id);
        // An earlier write of ours landed though its answer was lost (a timeout, a leader
        // change): the record still carries our lease, at a newer revision. Write again there.
        if (now !== null && record.lease !== undefined && now.record.lease === record.lease && now.revision > expected) {
          expected = now.revision;
          continue;
        }
        throw new JobTakenOverError(record.id, now?.record.coordinator ?? null);
      }
    }
  }

  async get(id: string): Promise<JobRecord | null> {
    return (await this.read(id))?.record ?? null;
  }

  /** A job's record with its revision, or null when there is none. */
  async read(id: string): Promise<StoredJobRecord | null> {
    assertJobId(id);
    const entry = await this.records.get(id);
    if (!entry || entry.operation !== 'PUT' || entry.value.length === 0) return null;
    return { record: JSON.parse(decoder.decode(entry.value)) as JobRecord, revision: entry.revision };
  }

  /**
   * Follows every job record through one KV watch: first each stored record, then every write
   * and delete as it happens (record null), until `stop()`. The caller owns the watch.
   */
  async watch(): Promise<{ updates: AsyncIterable<{ id: string; record: JobRecord | null }>; stop(): void }> {
    const entries = await this.records.watch({ key: '>' });
    async function* updates(): AsyncGenerator<{ id: string; record: JobRecord | null }> {
      for await (const entry of entries) {
        if (entry.operation !== 'PUT' || entry.value.length === 0) yield { id: entry.key, record: null };
        else {
          let record: JobRecord | null = null;
          try {
            record = JSON.parse(decoder.decode(entry.value)) as JobRecord;
          } catch {
            continue; // not a record this version can read
          }
          yield { id: entry.key, record };
        }
      }
    }
    return { updates: updates(), stop: () => entries.stop() };
  }

  /** Every stored job, newest first. */
  async list(): Promise<JobRecord[]> {
    const keys: string[] = [];
    for await (const key of await this.records.keys()) keys.push(key);
    const records = await Promise.all(keys.map((key) => this.get(key).catch(() => null)));
    return records
      .filter((record): record is JobRecord => record !== null)
      .sort((a, b) => (a.created < b.created ? 1 : a.created > b.created ? -1 : 0));
  }

  /**
   * The argument fields of a new job's record: the arguments themselves, or, when they are too
   * big for a record, a summary and the name of the object they are stored in (written here).
   */
  async placeArgs(id: string, args: Json, summary: string): Promise<Pick<JobRecord, 'args' | 'argsObject' | 'argsSummary'>> {
    const json = JSON.stringify(args);
    if (json.length <= ARGS_INLINE_BYTES) return { args, argsSummary: summary };
    const name = argsObjectName(id);
    // Compressed: paths repeat, and storing an object hashes every byte (SHA-256 in
    // JavaScript): for 12,000 files, 0.9 MB took ~100 ms before the first task could go out.
    await this.results.putBlob({ name }, gzipSync(json, { level: 1 }));
    return { args: null, argsObject: name, argsSummary: summary };
  }

  /** A job's arguments, from its record or from the object that holds them. */
  async args(record: JobRecord): Promise<Json> {
    if (record.argsObject === undefined) return record.args;
    const data = await this.results.getBlob(record.argsObject);
    if (data === null) throw new UsageError(`the arguments of job '${record.id}' are no longer stored`);
    return JSON.parse(decoder.decode(gunzipSync(data))) as Json;
  }

  async putResult(id: string, result: Json): Promise<void> {
    await this.results.putBlob({ name: id }, encoder.encode(JSON.stringify(result)));
  }

  /**
   * The bytes of an object stored beside the results (a sorted part of a count job's table),
   * as they arrive.
   * @throws Error naming the object when it is gone
   */
  async *readObject(name: string): AsyncGenerator<Uint8Array> {
    // Read through an ordered consumer, which a node lost in a cluster or a server restart can
    // stall or break: then read again from the start, skipping what was delivered already.
    let delivered = 0;
    for (let attempt = 1; ; attempt++) {
      let skip = delivered;
      try {
        const object = await withRetry(() => this.results.get(name), { deadlineMs: 60_000 });
        if (object === null) throw new UsageError(`object '${name}' is no longer stored (results are kept for the retention time)`);
        // A failed read also errors the stream read below; this promise must not go unhandled.
        object.error.catch(() => undefined);
        for await (const piece of object.data as unknown as AsyncIterable<Uint8Array>) {
          if (skip >= piece.length) {
            skip -= piece.length;
            continue;
          }
          const fresh = skip > 0 ? piece.subarray(skip) : piece;
          skip = 0;
          delivered += fresh.length;
          yield fresh;
        }
        return;
      } catch (error) {
        if (!isTransient(error) || attempt >= 5) throw error;
      }
    }
  }

  /** Deletes objects beside the results (a job's sorted parts); those already gone are skipped. */
  async deleteParts(names: string[]): Promise<void> {
    for (const name of names) await this.results.delete(name).catch(() => undefined);
  }

  async getResult(id: string): Promise<Json | null> {
    assertJobId(id);
    const data = await this.results.getBlob(id);
    return data === null ? null : (JSON.parse(decoder.decode(data)) as Json);
  }

  /**
   * Changes how long job records and results are kept (both buckets' max age). Applies to
   * what is stored already as well as to what comes.
   */
  static async setRetention(jsm: JetStreamManager, retentionMs: number): Promise<void> {
    for (const stream of [kvStreamName(JOBS_BUCKET), objectStreamName(RESULTS_BUCKET)]) {
      const info = await jsm.streams.info(stream);
      await jsm.streams.update(stream, { ...info.config, max_age: retentionMs * 1_000_000 });
    }
  }

  /** How long job records are kept now, in milliseconds. */
  static async retention(jsm: JetStreamManager): Promise<number> {
    const info = await jsm.streams.info(kvStreamName(JOBS_BUCKET));
    return Math.round(info.config.max_age / 1_000_000);
  }

  /**
   * Deletes a job's record and result. A running job only with `abandoned` (its coordinator is
   * gone and what it left on the server was discarded: see `discardAbandonedJob`).
   */
  async delete(id: string, options: { abandoned?: boolean; parts?: string[] } = {}): Promise<void> {
    const record = await this.get(id);
    if (!record) throw new UsageError(`no job '${id}'`);
    if (record.status === 'running' && options.abandoned !== true) throw new UsageError(`job '${id}' is still running; cancel it first`);
    const result = (await this.getResult(id).catch(() => null)) as { parts?: unknown } | null;
    await this.results.delete(id).catch(() => undefined);
    if (record.argsObject !== undefined) await this.results.delete(record.argsObject).catch(() => undefined);
    // The sorted parts of a count job's table.
    if (Array.isArray(result?.parts)) await this.deleteParts(result.parts.filter((part): part is string => typeof part === 'string'));
    // Parts a job that never finished may have left (they are named by the caller, which knows
    // how many partitions the job had).
    if (options.parts) await this.deleteParts(options.parts);
    await this.records.purge(id);
  }
}

/** The server refused a revision-checked write: the subject's last sequence was not the one named. */
function isWrongRevision(error: unknown): boolean {
  return isWrongLastSequence(error, true);
}

/** The object holding a job's arguments (job ids never contain dots, results are named by id). */
function argsObjectName(id: string): string {
  return `${id}.args`;
}
