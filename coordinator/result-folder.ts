/**
 * Folding a job's results, exactly once: results arrive at least once (redeliveries, duplicate
 * results, a resumed job reading the stream from its start), and each task id is folded the
 * first time only. Map results go through the kind's `reduce` (for a partitioned kind, a map
 * result is only the task's summary); a reduce task's result names its partition's stored part.
 */
import type { ResultSource } from './feed-publisher.js';
import type { JetStreamClient, JetStreamManager, JsMsg } from '@nats-io/jetstream';
import { jetstreamLib } from '../shared/nats/client.js';
import type { ObjectStore } from '@nats-io/obj';
import type { AnyJobKind, PartSummary } from '../shared/kinds/kind.js';
import type { Json } from '../shared/json.js';
import { decodeResult } from '../shared/nats/envelope.js';
import { takeStoredPartial } from '../shared/nats/partials.js';
import { withRetry } from '../shared/nats/retry.js';
import { RESULT_STREAM, jobResultSubjects, parseTaskSubject, partObjectName, resultConsumerName } from '../shared/subjects.js';
import { describeError } from '../shared/errors.js';
import type { Logger } from '../shared/log.js';

/** A result delivered to this process but not acked (lost on the way) comes again after this. */
const RESULT_ACK_WAIT_MS = 5_000;

export interface ResultFolderOptions {
  js: JetStreamClient;
  jsm: JetStreamManager;
  job: string;
  kind: AnyJobKind;
  /** The kind's validated options. */
  options: Json;
  partials: ObjectStore;
  logger: Logger;
  /** Replicas for the result consumer. Default: the results stream's. */
  replicas?: number;
  /** True once the job has ended: nothing more is folded. */
  ended(): boolean;
  /** A map task's result is folded; `ms` is the time its worker reports for the message. */
  onMapFolded(id: number, from: ResultSource): void;
  /** Workers took `ms` to map the `tasks` tasks of one message. */
  onMapTime(ms: number, tasks: number): void;
  /** A partition's part is stored (its reduce task's id). */
  onPart(id: number, partition: number, from: ResultSource): void;
  /** The job cannot complete: a result cannot be read. */
  onFailure(error: Error): void;
  /** A worker reports that a task failed for good: the job fails, or skips it (see skipped-tasks.ts). */
  onTaskFailed(failure: TaskFailure): void;
  /** What a task covers, for messages. */
  inputOf(id: number): string | undefined;
}

/** A task that failed for good, as its worker reports it. */
export interface TaskFailure {
  /** The failed task's id. */
  task: number;
  /** The task message it came in: `count` tasks from `first` (a batch when count > 1). */
  first: number;
  count: number;
  error: string;
}

export class ResultFolder {
  /** The kind's accumulator. */
  acc: unknown;
  /** Map task ids folded so far. */
  readonly folded = new Set<number>();
  /** Each partition's part, once its reduce task's result is in. */
  readonly parts = new Map<number, PartSummary>();
  /** Ids of the reduce tasks whose result is in. */
  private readonly reduceIds = new Set<number>();
  /** Results are folded strictly in arrival order, one at a time. */
  private queue: Promise<void> = Promise.resolve();
  private consumer: { close(): Promise<unknown> } | null = null;

  constructor(private readonly o: ResultFolderOptions) {
    this.acc = o.kind.init(o.options);
  }

  /** True when task `id` (a map or a reduce task) has its result folded. */
  has(id: number): boolean {
    return this.folded.has(id) || this.reduceIds.has(id);
  }

  /**
   * Starts reading the job's results through a named pull consumer, replicated like the stream
   * so that it survives a node loss, deleted when the job ends (and by the server after an hour
   * of inactivity if its coordinator dies).
   *
   * Each result is acked as soon as it reaches this process (it is then in the fold queue).
   * Without acks (AckPolicy.None), a result the server delivered while this process was
   * reconnecting (its server killed, a pull request still open on the consumer leader) counted
   * as delivered and never came again, and the job waited forever (tests/cluster.test.ts). With
   * acks it comes again after RESULT_ACK_WAIT_MS; folding ignores repeats.
   */
  async start(): Promise<void> {
    const name = resultConsumerName(this.o.job);
    const { jsm, js } = this.o;
    const { AckPolicy, DeliverPolicy } = jetstreamLib();
    // A resumed job starts its own reading afresh, from the first stored result.
    // Replicas must be explicit: nats-server 2.9 makes a named, non-durable consumer with
    // num_replicas 0 an R1 consumer even on an R3 stream, and the job would hang for good when
    // that one node died (seen in tests/cluster.test.ts). Both asked for at once.
    const [, replicas] = await Promise.all([
      jsm.consumers.delete(RESULT_STREAM, name).catch(() => undefined),
      this.o.replicas ?? jsm.streams.info(RESULT_STREAM).then((info) => info.config.num_replicas),
    ]);
    await jsm.consumers.add(RESULT_STREAM, {
      name,
      filter_subject: jobResultSubjects(this.o.job),
      ack_policy: AckPolicy.Explicit,
      ack_wait: RESULT_ACK_WAIT_MS * 1_000_000,
      max_ack_pending: -1,
      deliver_policy: DeliverPolicy.All,
      inactive_threshold: 60 * 60 * 1e9,
      num_replicas: replicas,
    });
    const consumer = await js.consumers.get(RESULT_STREAM, name);
    this.consumer = await consumer.consume({
      idle_heartbeat: 2000,
      // Also the client's back-off between consumer lookups after a reconnect: short, so that
      // reading resumes within seconds of a node loss.
      expires: 5_000,
      callback: (message: JsMsg) => {
        message.ack();
        this.queue = this.queue.then(() => this.onResult(message)).catch((error) => this.o.onFailure(error as Error));
      },
    });
  }

  /** Stops reading and deletes the job's result consumer. */
  async stop(): Promise<void> {
    await this.consumer?.close().catch(() => undefined);
    await this.o.jsm.consumers.delete(RESULT_STREAM, resultConsumerName(this.o.job)).catch(() => undefined);
  }

  /** Resolves once the results handed to the fold so far are folded. */
  async drained(): Promise<void> {
    await this.queue.catch(() => undefined);
  }

  /** Waits (up to 30 s) until the results already stored for this job have been folded in. */
  async catchUp(): Promise<void> {
    const info = await this.o.jsm.streams.info(RESULT_STREAM, { subjects_filter: jobResultSubjects(this.o.job) });
    // Each stored result covers one task or a batch of them.
    const covered = new Set<number>();
    for (const subject of Object.keys(info.state.subjects ?? {})) {
      const where = parseTaskSubject(subject);
      if (where) for (let i = 0; i < where.count; i++) covered.add(where.task + i);
    }
    this.o.logger.info({ stored: covered.size }, 'resuming: folding in stored results');
    const deadline = Date.now() + 30_000;
    const missing = () => {
      for (const id of covered) if (!this.has(id)) return true;
      return false;
    };
    while (missing() && !this.o.ended() && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }

  private async onResult(message: JsMsg): Promise<void> {
    if (this.o.ended()) return;
    let decoded;
    try {
      decoded = decodeResult(message.data);
    } catch (error) {
      this.o.logger.warn({ subject: message.subject, err: describeError(error) }, 'ignoring a malformed result');
      return;
    }
    const { header, body } = decoded;
    if (header.job !== this.o.job) return;
    const first = header.task;
    const count = header.count ?? 1;
    if (header.error !== undefined) {
      const failed = first + (header.failed ?? 0);
      if (this.has(failed)) return;
      this.o.onTaskFailed({ task: failed, first, count, error: header.error });
      return;
    }
    if (header.partition !== undefined) {
      this.onPart(first, header.partition, body, { worker: header.worker, deliveries: header.deliveries ?? 1, ms: header.ms });
      return;
    }
    let fresh = false;
    for (let id = first; id < first + count && !fresh; id++) fresh = !this.folded.has(id);
    if (!fresh) return;
    const data = header.object
      ? await withRetry(() => takeStoredPartial(this.o.partials, header.object!), { deadlineMs: Number.POSITIVE_INFINITY, cancelled: () => this.o.ended() })
      : body;
    if (this.o.ended()) return;
    const sizes = header.sizes ?? [data.length];
    if (sizes.reduce((a, b) => a + b, 0) !== data.length) throw new Error(`result of tasks ${first}-${first + count - 1}: its sizes do not match its stored partial`);
    this.o.onMapTime(header.ms, count);
    let offset = 0;
    for (let i = 0; i < count; i++) {
      const id = first + i;
      const partial = data.subarray(offset, offset + sizes[i]!);
      offset += sizes[i]!;
      if (this.folded.has(id)) continue;
      this.acc = this.o.kind.reduce(this.acc, partial, id);
      this.folded.add(id);
      this.o.onMapFolded(id, { worker: header.worker, deliveries: header.deliveries ?? 1, ms: header.ms / count });
    }
  }

  /**
   * Folds map task `id` without a partial (it failed and is skipped): the job then completes
   * without it, and a result of it that arrives later is ignored like any repeat. `spec`: the
   * task's, for a kind that must know what it covered (JobKind.skip).
   */
  skip(id: number, spec: Json | undefined): void {
    if (this.folded.has(id)) return;
    if (spec !== undefined && this.o.kind.skip) this.acc = this.o.kind.skip(this.acc, id, spec);
    this.folded.add(id);
  }

  /** A reduce task's result: where its partition's part is stored, and the kind's summary of it. */
  private onPart(id: number, partition: number, body: Uint8Array, from: ResultSource): void {
    if (this.parts.has(partition)) return;
    let part: { part?: unknown; summary?: Json };
    try {
      part = JSON.parse(new TextDecoder().decode(body)) as { part?: unknown; summary?: Json };
    } catch {
      part = {};
    }
    // The part of this very job and partition: a result must not point the job at another's.
    if (part.part !== partObjectName(this.o.job, partition) || part.summary === undefined) {
      this.o.logger.warn({ partition }, 'ignoring a malformed reduce result');
      return;
    }
    this.parts.set(partition, { name: part.part, summary: part.summary });
    this.reduceIds.add(id);
    this.o.onPart(id, partition, from);
  }
}
