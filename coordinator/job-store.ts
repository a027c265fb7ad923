/**
 * Job records (KV bucket) and final results (Object Store): what `tally jobs` and
 * `tally result` read back after the job's coordinator is gone.
 */
import type { KV } from '@nats-io/kv';
import type { ObjectStore } from '@nats-io/obj';
import type { NatsConnection } from '@nats-io/transport-node';
import type { JetStreamManager } from '@nats-io/jetstream';
import { JOBS_BUCKET, RESULTS_BUCKET } from '../shared/subjects.js';
import type { Json } from '../shared/kinds/kind.js';
import { openJobsBucket, openResultsStore, type TopologyOptions } from '../shared/nats/topology.js';
import { assertJobId } from '../shared/subjects.js';
import { UsageError } from '../shared/errors.js';

export type JobStatus = 'running' | 'done' | 'failed' | 'cancelled';

/** One job as stored in the KV bucket. Times are ISO strings. */
export interface JobRecord {
  id: string;
  kind: string;
  /** The job's validated options, as the kind received them. */
  args: Json;
  status: JobStatus;
  progress: { tasksDone: number; tasksTotal: number | null; weightDone: number; weightTotal: number | null };
  created: string;
  finished: string | null;
  /** Wall time from creation to the end, in milliseconds. */
  elapsedMs: number | null;
  error: string | null;
  /** host:pid of the coordinator that runs it. */
  coordinator: string;
}

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

  async put(record: JobRecord): Promise<void> {
    await this.records.put(record.id, encoder.encode(JSON.stringify(record)));
  }

  async get(id: string): Promise<JobRecord | null> {
    assertJobId(id);
    const entry = await this.records.get(id);
    if (!entry || entry.operation !== 'PUT' || entry.value.length === 0) return null;
    return JSON.parse(decoder.decode(entry.value)) as JobRecord;
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

  async putResult(id: string, result: Json): Promise<void> {
    await this.results.putBlob({ name: id }, encoder.encode(JSON.stringify(result)));
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
    for (const stream of [`KV_${JOBS_BUCKET}`, `OBJ_${RESULTS_BUCKET}`]) {
      const info = await jsm.streams.info(stream);
      await jsm.streams.update(stream, { ...info.config, max_age: retentionMs * 1_000_000 });
    }
  }

  /** How long job records are kept now, in milliseconds. */
  static async retention(jsm: JetStreamManager): Promise<number> {
    const info = await jsm.streams.info(`KV_${JOBS_BUCKET}`);
    return Math.round(info.config.max_age / 1_000_000);
  }

  /**
   * Deletes a job's record and result. A running job only with `abandoned` (its coordinator is
   * gone and what it left on the server was discarded: see `discardAbandonedJob`).
   */
  async delete(id: string, options: { abandoned?: boolean } = {}): Promise<void> {
    const record = await this.get(id);
    if (!record) throw new UsageError(`no job '${id}'`);
    if (record.status === 'running' && options.abandoned !== true) throw new UsageError(`job '${id}' is still running; cancel it first`);
    await this.results.delete(id).catch(() => undefined);
    await this.records.purge(id);
  }
}
