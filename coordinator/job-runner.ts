/**
 * Runs one job of any kind: publishes its tasks with a bounded window in flight, folds each
 * task's partial result into the accumulator exactly once, and stores the final result.
 *
 * Delivery is at least once on the wire; exactly once lives here: a task id is reduced only the
 * first time its result is seen, so redeliveries, duplicate results and replays are harmless.
 *
 * Tiny tasks (no body or a small one) travel several to a message, with consecutive ids, and
 * come back as one result message; batches may be cut anywhere (their subjects and message ids
 * carry their extent), so a resumed job that batches differently still folds each id once.
 */
import { hostname } from 'node:os';
import { AckPolicy, DeliverPolicy, type JetStreamClient, type JetStreamManager, type JsMsg } from '@nats-io/jetstream';
import type { ObjectStore } from '@nats-io/obj';
import type { NatsConnection, Subscription } from '@nats-io/transport-node';
import type { AnyJobKind, Json, PartSummary, Plan, Task } from '../shared/kinds/kind.js';
import { batchEntryJson, decodeResult, encodeEnvelope, encodeTaskBatch, type TaskHeader } from '../shared/nats/envelope.js';
import { takeStoredPartial } from '../shared/nats/partials.js';
import { isTransient, withRetry } from '../shared/nats/retry.js';
import { withQuickList } from '../shared/nats/topology.js';
import {
  PARTIALS_BUCKET,
  RESULT_STREAM,
  TASK_STREAM,
  WORKER_CONSUMER,
  jobEndedSubject,
  jobResultSubjects,
  jobShuffleSubjects,
  jobTaskSubjects,
  SHUFFLE_STREAM,
  messageId,
  newJobId,
  parseTaskSubject,
  resultConsumerName,
  taskSubject,
} from '../shared/subjects.js';
import { InterruptedError, JobFailedError, ServerError, describeError } from '../shared/errors.js';
import type { Logger } from '../shared/log.js';
import { JobTakenOverError, type JobRecord, type JobStatus, type JobStore, type StoredJobRecord } from './job-store.js';
import { JobLease } from './job-lease.js';

/** What progress output and the job record show. */
export interface JobProgress {
  job: string;
  tasksDone: number;
  /** Null while the input is still being split and the total is not known in advance. */
  tasksTotal: number | null;
  weightDone: number;
  weightTotal: number | null;
  unit: Plan['unit'];
  startedAt: number;
  /** True when tasks are queued but no worker has answered for a while. */
  waitingForWorkers: boolean;
}

export interface RunJobOptions {
  nc: NatsConnection;
  js: JetStreamClient;
  jsm: JetStreamManager;
  store: JobStore;
  partials: ObjectStore;
  logger: Logger;
  kind: AnyJobKind;
  /** The kind's validated options; stored in the job record. */
  options: Json;
  /**
   * Takes over a job whose coordinator died: its id and creation time are kept, results already
   * in the results stream are folded in, and only the tasks without one are published again.
   * The take-over fails if the record changed since it was read.
   */
  resume?: StoredJobRecord;
  /** Largest task body the server accepts (from its max_payload, with a margin). */
  maxBodyBytes: number;
  /** Tasks published but not yet reduced, at most. Default 1024. */
  maxTasksInFlight?: number;
  /** Task body bytes published but not yet reduced, at most. Default 64 MiB. */
  maxBytesInFlight?: number;
  /** Replicas for the job's result consumer. Default: the results stream's replicas. */
  replicas?: number;
  /** Called at most every `progressIntervalMs` and once at the end. */
  onProgress?: (progress: JobProgress) => void;
  /** Called once the job id is known (before any task is published). */
  onStart?: (job: string) => void;
  /** Called with a line for the user (without a progress bar, the only way they learn it). */
  onNote?: (text: string) => void;
  /** Aborting cancels the job: its tasks are withdrawn and its status becomes `cancelled`. */
  signal?: AbortSignal;
}

interface InFlight {
  input: string;
  weight: number;
  bytes: number;
  /** Kept for a task sent in a batch: a batch that never completes is sent again task by task. */
  task?: Task;
}

/** Tasks collected for one message, consecutive ids from `first`. */
interface PendingBatch {
  first: number;
  tasks: Task[];
  entries: string[];
  bodyBytes: number;
  /** Length of the entries' JSON in UTF-16 units (at most 3 UTF-8 bytes each). */
  headerUnits: number;
}

/** Returned by the pause probe when the splitter has not produced its next task within a turn of the event loop. */
const PAUSED = Symbol('paused');

/**
 * Unconfirmed task publishes kept in the pipe at once: ~32 big ones (the design notes measured
 * that as right for 1 MiB chunks), up to 256 small ones (range tasks are a few hundred bytes).
 */
const PUBLISH_PIPELINE = 256;
const PUBLISH_PIPELINE_BYTES = 32 * 1024 * 1024;

/**
 * Tiny tasks travel several to a message (like multiprocessing.Pool.map's chunksize): each
 * message costs the server, the coordinator and a worker far more than a range task's map.
 * A job is cut into at least BATCHES_PER_JOB messages when it has that many tasks, so that the
 * work still spreads over workers and the last message is a small part of the job; a message
 * carries at most MAX_BATCH tasks.
 */
const MAX_BATCH = 64;
const BATCHES_PER_JOB = 256;
/**
 * Once results report how long tasks take, a batch is cut so that a message takes about this
 * long at most: a lost or handed-back message then costs little, and the tail stays short.
 */
const BATCH_TARGET_MS = 250;
/** Only tasks with no body or one up to this size share a message (count's chunks do not). */
const BATCH_TASK_BODY_LIMIT = 8 * 1024;
/** Bodies of one batch, at most. */
const BATCH_BODY_LIMIT = 256 * 1024;
/** Header JSON of one batch in UTF-16 units, at most: ≤ 48 KiB of UTF-8, under MAX_HEADER_BYTES. */
const BATCH_HEADER_UNITS = 16 * 1024;
const RECORD_INTERVAL_MS = 1000;
const WORKER_CHECK_MS = 5000;

/**
 * How long the connection to the server may stay lost before the job gives up (a restart or a
 * leader change takes seconds). The job record stays "running", so `tally resume` can finish it.
 */
const SERVER_LOST_MS = (() => {
  const value = Number(process.env.TALLY_SERVER_LOST_MS);
  return Number.isInteger(value) && value >= 1000 ? value : 60_000;
})();
/** How often a running job looks at its record on the server (see `checkServer`). */
const SERVER_PROBE_MS = Math.min(5_000, Math.max(250, Math.floor(SERVER_LOST_MS / 4)));
const WARN_EVERY_MS = 10_000;
const ENDED_GRACE_MS = 25;

/** The server has not answered for SERVER_LOST_MS: the job is left running, for `tally resume`. */
export class ServerLostError extends ServerError {}
/** A result delivered to this process but not acked (lost on the way) comes again after this. */
const RESULT_ACK_WAIT_MS = 5_000;
const EMPTY = new Uint8Array(0);

class JobRun {
  readonly job: string;
  private readonly o: RunJobOptions;
  private readonly log: Logger;
  private acc: unknown;
  /** Map task ids folded so far. */
  private readonly reduced = new Set<number>();
  /** Reduce partitions of the job (0: the coordinator reduces every partial). */
  private partitions = 0;
  /** Each partition's stored part, once its reduce task's result is in. */
  private readonly parts = new Map<number, PartSummary>();
  /** Task ids of the reduce results folded (map tasks + partition). */
  private readonly reduceIds = new Set<number>();
  private reducePublished = false;
  private readonly inFlight = new Map<number, InFlight>();
  private bytesInFlight = 0;
  private published = 0;
  private splitDone = false;
  private progress!: JobProgress;
  private record!: JobRecord;
  private lastRecordWrite = 0;
  private lastResultAt = Date.now();
  private settled = false;
  private resolveDone!: () => void;
  private rejectDone!: (error: Error) => void;
  readonly done: Promise<void>;
  private spaceWaiter: (() => void) | null = null;

  constructor(options: RunJobOptions) {
    this.o = options;
    this.job = options.resume?.record.id ?? newJobId();
    this.log = options.logger.child({ job: this.job, kind: options.kind.name });
    this.done = new Promise<void>((resolve, reject) => {
      this.resolveDone = resolve;
      this.rejectDone = reject;
    });
    // A failure may come before anyone awaits `done`.
    this.done.catch(() => undefined);
  }

  async run(): Promise<Json> {
    const { kind, options } = this.o;
    const plan = await kind.plan(options);
    this.partitions = kind.partitioned?.partitions(options) ?? 0;
    const now = Date.now();
    this.progress = {
      job: this.job,
      tasksDone: 0,
      tasksTotal: plan.totalTasks ?? null,
      weightDone: 0,
      weightTotal: plan.totalWeight ?? null,
      unit: plan.unit,
      startedAt: now,
      waitingForWorkers: false,
    };
    // A resumed job keeps its record's arguments as they are (inline or stored beside the results).
    const { args, argsObject, argsSummary } = this.o.resume?.record ?? (await this.o.store.placeArgs(this.job, options));
    this.record = {
      id: this.job,
      kind: kind.name,
      args,
      ...(argsObject !== undefined ? { argsObject } : {}),
      ...(argsSummary !== undefined ? { argsSummary } : {}),
      status: 'running',
      progress: { tasksDone: 0, tasksTotal: this.progress.tasksTotal, weightDone: 0, weightTotal: this.progress.weightTotal },
      created: this.o.resume?.record.created ?? new Date(now).toISOString(),
      finished: null,
      elapsedMs: null,
      error: null,
      coordinator: `${hostname()}:${process.pid}`,
    };
    this.lease = await JobLease.take(this.o.store, this.record, this.o.resume);
    this.o.onStart?.(this.job);
    this.acc = kind.init(options);

    let results: { stop(): Promise<void> } | undefined;
    let advisories: Subscription | undefined;
    const workerWatch = setInterval(() => void this.checkWorkers(), WORKER_CHECK_MS);
    const serverWatch = setInterval(() => void this.checkServer(), SERVER_PROBE_MS);
    const onAbort = () => this.fail(new InterruptedError(`job ${this.job} cancelled`));
    this.o.signal?.addEventListener('abort', onAbort, { once: true });
    try {
      results = await this.consumeResults();
      advisories = this.watchPoisonTasks();
      if (this.o.signal?.aborted) onAbort();
      if (this.o.resume) await this.catchUp();
      await Promise.race([this.publishTasks(plan), this.done]);
      await this.done;
      // Nothing of the job is written once another coordinator holds it.
      await this.lease.check(this.job);
      // Workers stop taking this job's tasks now; the grace before the purge runs meanwhile.
      this.announceEnd();
      const summary = { job: this.job, tasks: this.published };
      const result =
        this.partitions > 0
          ? await kind.partitioned!.finalize(this.acc, Array.from({ length: this.partitions }, (_, p) => this.parts.get(p)!), summary, options)
          : await kind.finalize(this.acc, summary, options);
      // A leader election (a node lost) can refuse these writes for a few seconds: retry.
      await withRetry(() => this.o.store.putResult(this.job, result), { deadlineMs: 30_000, onRetry: (e) => this.log.warn({ err: describeError(e) }, 'storing the result failed; retrying') });
      await this.finish('done', null);
      return result;
    } catch (error) {
      this.leftAsIs = error instanceof JobTakenOverError || error instanceof ServerLostError || isTransient(error);
      if (!this.leftAsIs) {
        const status: JobStatus = error instanceof InterruptedError ? 'cancelled' : 'failed';
        await this.withdrawTasks();
        await this.finish(status, describeError(error)).catch((e) => this.log.error({ err: describeError(e) }, 'could not store the job record'));
      }
      if (this.leftAsIs && !(error instanceof JobTakenOverError) && !(error instanceof ServerLostError)) {
        throw new ServerError(`nats://${this.o.nc.getServer()}`, `${describeError(error)}; once the server answers again, \`tally resume ${this.job}\` finishes the job`, { cause: error });
      }
      throw error;
    } finally {
      this.o.signal?.removeEventListener('abort', onAbort);
      clearInterval(workerWatch);
      clearInterval(serverWatch);
      advisories?.unsubscribe();
      // A job that another coordinator took over, or that is left for `tally resume` (the
      // server is gone or failing), keeps its tasks and results on the server, untouched.
      if (!this.leftAsIs) {
        await results?.stop();
        await this.cleanUp();
      }
    }
  }

  /**
   * True once the job ended in a way that leaves it on the server as it is: taken over by
   * another coordinator, or stopped by a server that is gone or failing (then resumable).
   */
  private leftAsIs = false;
  private lease!: JobLease;

  /** Unconfirmed task publishes, oldest first. */
  private readonly pipeline: Array<{ ack: Promise<unknown>; bytes: number }> = [];
  private pipelineBytes = 0;
  /** Tasks waiting to be sent together; never held while the splitter or the window waits. */
  private batch: PendingBatch | null = null;
  private probe: Promise<typeof PAUSED> | null = null;
  /** Map time that workers reported, and over how many tasks, for sizing batches. */
  private mappedMs = 0;
  private mappedTasks = 0;

  /**
   * Streams the kind's tasks into JetStream, never more than the window ahead of the results.
   * Tiny tasks are sent several to a message; a batch is sent as soon as it is full, when the
   * splitter pauses (its next task is not ready within a turn of the event loop), before
   * waiting for room in the window, and at the end: a batch never waits for more tasks.
   */
  private async publishTasks(plan: Plan): Promise<void> {
    const { kind, options } = this.o;
    const maxTasks = this.o.maxTasksInFlight ?? 1024;
    const maxBytes = this.o.maxBytesInFlight ?? 64 * 1024 * 1024;
    // Several messages must fit in the window, or workers would wait for each other's batches.
    const maxBatch = Math.max(1, Math.min(MAX_BATCH, Math.floor(maxTasks / 4)));
    // From the job's size when the plan knows it, else from the tasks seen so far (a job of
    // unknown size starts one task per message and batches more as it proves long).
    const batchSize = () => {
      const bySize = Math.floor((plan.totalTasks ?? this.published) / BATCHES_PER_JOB);
      const byTime = this.mappedMs > 0 ? Math.floor((BATCH_TARGET_MS * this.mappedTasks) / this.mappedMs) : maxBatch;
      return Math.max(1, Math.min(maxBatch, bySize, byTime));
    };
    const iterator = kind.split(options, { maxBodyBytes: this.o.maxBodyBytes })[Symbol.asyncIterator]();
    let finished = false;
    try {
      for (;;) {
        const next = iterator.next();
        let step: IteratorResult<Task> | typeof PAUSED;
        if (this.batch) {
          step = await Promise.race([next, this.pauseProbe()]);
          if (step === PAUSED) {
            next.catch(() => undefined);
            await this.flushBatch();
            step = await next;
          }
        } else {
          step = await next;
        }
        if (step.done) {
          finished = true;
          break;
        }
        if (this.settled) return;
        const task = step.value;
        const body = task.body ?? EMPTY;
        while (this.inFlight.size >= maxTasks || (this.inFlight.size > 0 && this.bytesInFlight + body.length > maxBytes)) {
          if (this.batch) {
            await this.flushBatch();
            continue;
          }
          await new Promise<void>((resolve) => (this.spaceWaiter = resolve));
          if (this.settled) return;
        }
        const id = this.published++;
        if (this.reduced.has(id)) {
          // Resumed job: this task's result was folded in from the results stream already.
          this.progress.weightDone += task.weight;
          continue;
        }
        const size = batchSize();
        const entry = size > 1 && body.length <= BATCH_TASK_BODY_LIMIT ? batchEntryJson(task.input, task.spec, body.length) : null;
        const batchable = entry !== null && entry.length <= BATCH_HEADER_UNITS / 4;
        this.inFlight.set(id, batchable ? { input: task.input, weight: task.weight, bytes: body.length, task } : { input: task.input, weight: task.weight, bytes: body.length });
        this.bytesInFlight += body.length;
        const open = this.batch;
        if (open && (!batchable || id !== open.first + open.tasks.length || open.bodyBytes + body.length > BATCH_BODY_LIMIT || open.headerUnits + entry.length > BATCH_HEADER_UNITS)) {
          await this.flushBatch();
        }
        if (!batchable) {
          await this.publishMessage(taskSubject(this.job, id), messageId(this.job, id), this.singleTask(id, task));
          continue;
        }
        this.batch ??= { first: id, tasks: [], entries: [], bodyBytes: 0, headerUnits: 0 };
        this.batch.tasks.push(task);
        this.batch.entries.push(entry);
        this.batch.bodyBytes += body.length;
        this.batch.headerUnits += entry.length + 1;
        if (this.batch.tasks.length >= size) await this.flushBatch();
      }
      if (this.settled) return;
      await this.flushBatch();
      await Promise.all(this.pipeline.map((entry) => entry.ack));
    } finally {
      // Closes the splitter's inputs when the job ended early.
      if (!finished) await iterator.return?.(undefined).catch(() => undefined);
    }
    this.splitDone = true;
    this.progress.tasksTotal = this.published + this.partitions;
    this.report(true);
    this.checkComplete();
  }

  /** Resolves with PAUSED at the end of this turn of the event loop (one probe shared by a turn's tasks). */
  private pauseProbe(): Promise<typeof PAUSED> {
    return (this.probe ??= new Promise((resolve) =>
      setImmediate(() => {
        this.probe = null;
        resolve(PAUSED);
      }),
    ));
  }

  private singleTask(id: number, task: Task): Uint8Array {
    const header: TaskHeader = { v: 1, job: this.job, task: id, kind: this.o.kind.name, input: task.input, spec: task.spec };
    if (this.partitions > 0) header.partitions = this.partitions;
    return encodeEnvelope(header, task.body ?? EMPTY);
  }

  /**
   * Once every map task is folded: one reduce task per partition still without a part (a
   * resumed job may have some), after the map tasks' ids.
   */
  private async publishReduceTasks(): Promise<void> {
    const { kind, options } = this.o;
    for (let p = 0; p < this.partitions; p++) {
      const id = this.published + p;
      if (this.parts.has(p)) continue;
      const input = `partition ${p + 1} of ${this.partitions}`;
      this.inFlight.set(id, { input, weight: 0, bytes: 0 });
      const header: TaskHeader = {
        v: 1,
        job: this.job,
        task: id,
        kind: kind.name,
        input,
        spec: kind.partitioned!.reduceSpec(options, p),
        reduce: { partition: p, partitions: this.partitions, tasks: this.published },
      };
      await this.publishMessage(taskSubject(this.job, id), messageId(this.job, id), encodeEnvelope(header, EMPTY));
    }
    await Promise.all(this.pipeline.map((entry) => entry.ack));
  }

  /** Sends the pending batch (a lone task as a plain task message). */
  private async flushBatch(): Promise<void> {
    const batch = this.batch;
    if (!batch) return;
    this.batch = null;
    const { first, tasks } = batch;
    if (tasks.length === 1) {
      await this.publishMessage(taskSubject(this.job, first), messageId(this.job, first), this.singleTask(first, tasks[0]!));
      return;
    }
    const body = batch.bodyBytes === 0 ? EMPTY : Buffer.concat(tasks.map((task) => task.body ?? EMPTY));
    const payload = encodeTaskBatch(this.job, first, this.o.kind.name, batch.entries, body, this.partitions > 0 ? this.partitions : undefined);
    await this.publishMessage(taskSubject(this.job, first, tasks.length), messageId(this.job, first, tasks.length), payload);
  }

  /** Publishes one task message into the pipeline; waits while too many are unconfirmed. */
  private async publishMessage(subject: string, msgID: string, payload: Uint8Array): Promise<void> {
    // No deadline of its own: while the server is away the job's server watch decides when
    // to give up (and settles the job, which ends these retries).
    const ack = withRetry(() => this.o.js.publish(subject, payload, { msgID, timeout: 10_000 }), {
      deadlineMs: Number.POSITIVE_INFINITY,
      cancelled: () => this.settled,
      onRetry: (error) => this.warnOnce('publish', { subject, err: describeError(error) }, 'publishing a task failed; retrying'),
    });
    // Awaited in order below; until then a failure must not count as unhandled.
    ack.catch(() => undefined);
    this.pipeline.push({ ack, bytes: payload.length });
    this.pipelineBytes += payload.length;
    while (this.pipeline.length >= PUBLISH_PIPELINE || this.pipelineBytes > PUBLISH_PIPELINE_BYTES) {
      const oldest = this.pipeline.shift()!;
      this.pipelineBytes -= oldest.bytes;
      await oldest.ack;
    }
  }

  /**
   * A batch delivered max_deliver times without a result killed its worker every time (a task
   * that throws is reported by the worker, naming it): send its tasks again one per message,
   * so that the poison one is found and named by its own max-deliveries advisory.
   */
  private async resendSingly(first: number, count: number): Promise<void> {
    const sends: Array<Promise<unknown>> = [];
    for (let id = first; id < first + count; id++) {
      const task = this.inFlight.get(id)?.task;
      if (!task || this.reduced.has(id)) continue;
      const payload = this.singleTask(id, task);
      sends.push(withRetry(() => this.o.js.publish(taskSubject(this.job, id), payload, { msgID: messageId(this.job, id), timeout: 10_000 }), { deadlineMs: Number.POSITIVE_INFINITY, cancelled: () => this.settled }));
    }
    await Promise.all(sends);
  }

  /** Waits (up to 30 s) until the results already stored for this job have been folded in. */
  private async catchUp(): Promise<void> {
    const info = await this.o.jsm.streams.info(RESULT_STREAM, { subjects_filter: jobResultSubjects(this.job) });
    // Each stored result covers one task or a batch of them.
    const covered = new Set<number>();
    for (const subject of Object.keys(info.state.subjects ?? {})) {
      const where = parseTaskSubject(subject);
      if (where) for (let i = 0; i < where.count; i++) covered.add(where.task + i);
    }
    this.log.info({ stored: covered.size }, 'resuming: folding in stored results');
    const deadline = Date.now() + 30_000;
    const missing = () => {
      for (const id of covered) if (!this.reduced.has(id) && !this.reduceIds.has(id)) return true;
      return false;
    };
    while (missing() && !this.settled && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }

  /**
   * A named pull consumer over this job's results, replicated like the stream so that it
   * survives a node loss, deleted when the job ends (and by the server after an hour of
   * inactivity if its coordinator dies).
   *
   * Each result is acked as soon as it reaches this process (it is then in the fold queue).
   * Without acks (AckPolicy.None), a result the server delivered while this process was
   * reconnecting (its server killed, a pull request still open on the consumer leader) counted
   * as delivered and never came again, and the job waited forever (tests/cluster.test.ts). With
   * acks it comes again after RESULT_ACK_WAIT_MS; folding ignores repeats.
   */
  private async consumeResults(): Promise<{ stop(): Promise<void> }> {
    const name = resultConsumerName(this.job);
    const { jsm, js } = this.o;
    // A resumed job starts its own reading afresh, from the first stored result.
    await jsm.consumers.delete(RESULT_STREAM, name).catch(() => undefined);
    // Replicas must be explicit: nats-server 2.9 makes a named, non-durable consumer with
    // num_replicas 0 an R1 consumer even on an R3 stream, and the job would hang for good when
    // that one node died (seen in tests/cluster.test.ts).
    const replicas = this.o.replicas ?? (await jsm.streams.info(RESULT_STREAM)).config.num_replicas;
    await jsm.consumers.add(RESULT_STREAM, {
      name,
      filter_subject: jobResultSubjects(this.job),
      ack_policy: AckPolicy.Explicit,
      ack_wait: RESULT_ACK_WAIT_MS * 1_000_000,
      max_ack_pending: -1,
      deliver_policy: DeliverPolicy.All,
      inactive_threshold: 60 * 60 * 1e9,
      num_replicas: replicas,
    });
    const consumer = await js.consumers.get(RESULT_STREAM, name);
    const messages = await consumer.consume({
      idle_heartbeat: 2000,
      // Also the client's back-off between consumer lookups after a reconnect: short, so that
      // reading resumes within seconds of a node loss.
      expires: 5_000,
      callback: (message: JsMsg) => {
        message.ack();
        // Results are folded strictly in arrival order, one at a time.
        this.queue = this.queue.then(() => this.onResult(message)).catch((error) => this.fail(error as Error));
      },
    });
    return {
      stop: async () => {
        await messages.close().catch(() => undefined);
        await jsm.consumers.delete(RESULT_STREAM, name).catch(() => undefined);
      },
    };
  }


  private queue: Promise<void> = Promise.resolve();

  private async onResult(message: JsMsg): Promise<void> {
    if (this.settled) return;
    let decoded;
    try {
      decoded = decodeResult(message.data);
    } catch (error) {
      this.log.warn({ subject: message.subject, err: describeError(error) }, 'ignoring a malformed result');
      return;
    }
    const { header, body } = decoded;
    if (header.job !== this.job) return;
    if (header.partition !== undefined && header.error === undefined) {
      this.onPart(header.task, header.partition, body);
      return;
    }
    const first = header.task;
    const count = header.count ?? 1;
    if (header.error !== undefined) {
      const failed = first + (header.failed ?? 0);
      if (this.reduced.has(failed) || this.reduceIds.has(failed)) return;
      this.fail(new JobFailedError(this.job, header.error, this.inFlight.get(failed)?.input));
      return;
    }
    let fresh = false;
    for (let id = first; id < first + count && !fresh; id++) fresh = !this.reduced.has(id);
    if (!fresh) return;
    const data = header.object
      ? await withRetry(() => takeStoredPartial(this.o.partials, header.object!), { deadlineMs: Number.POSITIVE_INFINITY, cancelled: () => this.settled })
      : body;
    if (this.settled) return;
    const sizes = header.sizes ?? [data.length];
    if (sizes.reduce((a, b) => a + b, 0) !== data.length) throw new Error(`result of tasks ${first}-${first + count - 1}: its sizes do not match its stored partial`);
    this.mappedMs += header.ms;
    this.mappedTasks += count;
    let offset = 0;
    for (let i = 0; i < count; i++) {
      const id = first + i;
      const partial = data.subarray(offset, offset + sizes[i]!);
      offset += sizes[i]!;
      if (this.reduced.has(id)) continue;
      this.acc = this.o.kind.reduce(this.acc, partial, id);
      this.reduced.add(id);
      this.progress.tasksDone++;
      const task = this.inFlight.get(id);
      if (task) {
        this.progress.weightDone += task.weight;
        this.bytesInFlight -= task.bytes;
        this.inFlight.delete(id);
      }
    }
    this.lastResultAt = Date.now();
    this.progress.waitingForWorkers = false;
    this.spaceWaiter?.();
    this.spaceWaiter = null;
    this.report(false);
    this.checkComplete();
  }

  /** A reduce task's result: where its partition's part is stored, and the kind's summary of it. */
  private onPart(id: number, partition: number, body: Uint8Array): void {
    if (partition >= this.partitions || this.parts.has(partition)) return;
    let part: { part?: unknown; summary?: Json };
    try {
      part = JSON.parse(new TextDecoder().decode(body)) as { part?: unknown; summary?: Json };
    } catch {
      part = {};
    }
    if (typeof part.part !== 'string' || part.summary === undefined) {
      this.log.warn({ partition }, 'ignoring a malformed reduce result');
      return;
    }
    this.parts.set(partition, { name: part.part, summary: part.summary });
    this.reduceIds.add(id);
    this.progress.tasksDone++;
    const task = this.inFlight.get(id);
    if (task) this.inFlight.delete(id);
    this.lastResultAt = Date.now();
    this.progress.waitingForWorkers = false;
    this.report(false);
    this.checkComplete();
  }

  private checkComplete(): void {
    if (!this.splitDone || this.reduced.size !== this.published || this.settled) return;
    if (this.parts.size < this.partitions) {
      // Every map task is in: the reduce tasks go out (once).
      if (!this.reducePublished) {
        this.reducePublished = true;
        this.publishReduceTasks().catch((error: unknown) => this.fail(error instanceof Error ? error : new Error(String(error))));
      }
      return;
    }
    this.settled = true;
    this.resolveDone();
  }

  private fail(error: Error): void {
    if (this.settled) return;
    this.settled = true;
    this.spaceWaiter?.();
    this.rejectDone(error);
  }

  /**
   * A task that killed its process on every delivery never produces a result; the server
   * announces it after max_deliver. Fail the job naming the task's input.
   */
  private watchPoisonTasks(): Subscription {
    const subject = `$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.${TASK_STREAM}.${WORKER_CONSUMER}`;
    return this.o.nc.subscribe(subject, {
      callback: (error, message) => {
        if (error) return;
        void (async () => {
          const advisory = message.json<{ stream_seq: number; deliveries: number }>();
          const stored = await this.o.jsm.streams.getMessage(TASK_STREAM, { seq: advisory.stream_seq }).catch(() => null);
          const where = stored ? parseTaskSubject(stored.subject) : undefined;
          if (!stored || !where || where.job !== this.job) return;
          await this.o.jsm.streams.deleteMessage(TASK_STREAM, advisory.stream_seq, false).catch(() => undefined);
          if (where.count > 1) {
            this.log.warn({ tasks: `${where.task}-${where.task + where.count - 1}`, deliveries: advisory.deliveries }, 'a batch of tasks never completed; sending its tasks one by one');
            await this.resendSingly(where.task, where.count);
            return;
          }
          const input = this.inFlight.get(where.task)?.input;
          this.fail(new JobFailedError(this.job, `task ${where.task} was delivered ${advisory.deliveries} times and never completed`, input));
        })().catch((e) => this.log.warn({ err: describeError(e) }, 'could not handle a max-deliveries advisory'));
      },
    });
  }

  /** When the server last answered this job (a look at the job's record). */
  private lastContact = Date.now();
  private probing = false;

  /**
   * Looks at the job's record: the answer proves the server is there, and says whether the job
   * is still ours. A link cut without a word (a dead route, a paused VM) is noticed by the
   * client only after its pings go unanswered; these looks notice it within SERVER_LOST_MS.
   * Gives up once the server has not answered for that long.
   */
  private async checkServer(): Promise<void> {
    if (this.settled) return;
    if (Date.now() - this.lastContact >= SERVER_LOST_MS) {
      const seconds = Math.round(SERVER_LOST_MS / 1000);
      this.fail(new ServerLostError(`nats://${this.o.nc.getServer()}`, `connection lost for ${seconds} s; once the server is back, \`tally resume ${this.job}\` finishes the job`));
      return;
    }
    if (this.probing) return;
    this.probing = true;
    try {
      await this.lease.check(this.job);
      this.lastContact = Date.now();
    } catch (error) {
      if (error instanceof JobTakenOverError) this.fail(error);
      else this.log.debug({ err: describeError(error) }, 'the server did not answer a look at the job record');
    } finally {
      this.probing = false;
    }
  }

  /** Warnings that repeat while the server is away are said once per WARN_EVERY_MS. */
  private readonly warned = new Map<string, number>();

  private warnOnce(key: string, fields: Record<string, unknown>, message: string): void {
    const now = Date.now();
    if (now - (this.warned.get(key) ?? 0) < WARN_EVERY_MS) return;
    this.warned.set(key, now);
    this.log.warn(fields, message);
  }

  /** True once the user was told that no worker is pulling tasks. */
  private waitNoted = false;

  /** Notices when nothing is being done because no worker is connected. */
  private async checkWorkers(): Promise<void> {
    if (this.settled || Date.now() - this.lastResultAt < WORKER_CHECK_MS || this.inFlight.size === 0) return;
    try {
      const info = await this.o.jsm.consumers.info(TASK_STREAM, WORKER_CONSUMER);
      // Pull requests waiting on the consumer are idle workers; acks pending are busy ones.
      const waiting = (info.num_waiting ?? 0) + (info.num_ack_pending ?? 0);
      this.progress.waitingForWorkers = waiting === 0;
      if (this.progress.waitingForWorkers) {
        this.warnOnce('workers', {}, 'no worker is pulling tasks; waiting for workers');
        if (!this.waitNoted) {
          const server = `nats://${this.o.nc.getServer()}`;
          this.o.onNote?.(`waiting for workers: none is pulling tasks from ${server} (start some with \`tally worker --server ${server}\`)`);
          this.waitNoted = true;
        }
      }
      this.report(true);
    } catch (error) {
      this.log.debug({ err: describeError(error) }, 'consumer info failed');
    }
  }

  private report(force: boolean): void {
    this.o.onProgress?.({ ...this.progress });
    const now = Date.now();
    if (!force && now - this.lastRecordWrite < RECORD_INTERVAL_MS) return;
    this.lastRecordWrite = now;
    this.record.progress = {
      tasksDone: this.progress.tasksDone,
      tasksTotal: this.progress.tasksTotal,
      weightDone: this.progress.weightDone,
      weightTotal: this.progress.weightTotal,
    };
    this.lease.write(this.record).catch((e) => {
      if (e instanceof JobTakenOverError) this.fail(e);
      else this.log.debug({ err: describeError(e) }, 'progress record write failed');
    });
  }

  private async finish(status: JobStatus, error: string | null): Promise<void> {
    const now = Date.now();
    this.record.status = status;
    this.record.error = error;
    this.record.finished = new Date(now).toISOString();
    this.record.elapsedMs = now - this.progress.startedAt;
    this.record.progress = {
      tasksDone: this.progress.tasksDone,
      tasksTotal: this.splitDone ? this.published + this.partitions : this.progress.tasksTotal,
      weightDone: this.progress.weightDone,
      weightTotal: this.progress.weightTotal,
    };
    this.o.onProgress?.({ ...this.progress });
    await withRetry(() => this.lease.write(this.record), { deadlineMs: 30_000, onRetry: (e) => this.log.warn({ err: describeError(e) }, 'storing the job record failed; retrying') });
  }

  /** Removes the job's queued tasks so workers move on. */
  private async withdrawTasks(): Promise<void> {
    await this.o.jsm.streams.purge(TASK_STREAM, { filter: jobTaskSubjects(this.job) }).catch((e) =>
      this.log.warn({ err: describeError(e) }, 'could not withdraw tasks'),
    );
  }

  private endAnnouncedAt = -1;

  /** Tells workers the job has ended (once): they drop its tasks and results from then on. */
  private announceEnd(): void {
    if (this.endAnnouncedAt >= 0) return;
    this.endAnnouncedAt = performance.now();
    try {
      this.o.nc.publish(jobEndedSubject(this.job));
    } catch (error) {
      this.log.debug({ err: describeError(error) }, 'could not announce the end of the job');
    }
  }

  /** Leaves nothing of the job on the server but its record and result. */
  private async cleanUp(): Promise<void> {
    await this.queue.catch(() => undefined);
    // Workers still holding a task of this job drop its result instead of publishing it after
    // the purge below; the pause lets the announcement reach them first.
    try {
      this.announceEnd();
      await this.o.nc.flush();
      const left = ENDED_GRACE_MS - (performance.now() - this.endAnnouncedAt);
      if (left > 0) await new Promise((resolve) => setTimeout(resolve, left));
    } catch (error) {
      this.log.debug({ err: describeError(error) }, 'could not announce the end of the job');
    }
    await this.o.jsm.streams.purge(RESULT_STREAM, { filter: jobResultSubjects(this.job) }).catch((e) =>
      this.log.warn({ err: describeError(e) }, 'could not purge results'),
    );
    if (this.partitions > 0) {
      await this.o.jsm.streams.purge(SHUFFLE_STREAM, { filter: jobShuffleSubjects(this.job) }).catch((e) =>
        this.log.warn({ err: describeError(e) }, 'could not purge the map outputs'),
      );
    }
    try {
      await deletePartialsOf(this.o.partials, this.job);
    } catch (error) {
      this.log.warn({ bucket: PARTIALS_BUCKET, err: describeError(error) }, 'could not sweep partial objects');
    }
  }
}

/** Runs a job to completion and returns its result (also stored under its id). */
export async function runJob(options: RunJobOptions): Promise<{ job: string; result: Json }> {
  const run = new JobRun(options);
  const result = await run.run();
  return { job: run.job, result };
}

/**
 * Removes what a job whose coordinator died left on the server (`tally jobs --delete` of such a
 * job): workers are told it ended, so they drop its tasks in hand; its queued tasks, partial
 * results, result consumer and partial objects go. Its record and result are the job store's.
 */
export async function discardAbandonedJob(nc: NatsConnection, jsm: JetStreamManager, job: string): Promise<void> {
  nc.publish(jobEndedSubject(job));
  await nc.flush();
  await jsm.streams.purge(TASK_STREAM, { filter: jobTaskSubjects(job) });
  await new Promise((resolve) => setTimeout(resolve, ENDED_GRACE_MS));
  await jsm.streams.purge(RESULT_STREAM, { filter: jobResultSubjects(job) });
  await jsm.streams.purge(SHUFFLE_STREAM, { filter: jobShuffleSubjects(job) }).catch(() => undefined);
  // The consumer through which its coordinator read results (absent if it never got that far).
  await jsm.consumers.delete(RESULT_STREAM, resultConsumerName(job)).catch(() => false);
  const { Objm } = await import('@nats-io/obj');
  const partials = await new Objm(nc).open(PARTIALS_BUCKET).catch(() => null);
  if (partials) await deletePartialsOf(withQuickList(partials, jsm, PARTIALS_BUCKET), job);
}

/** Deletes the partial objects of `job` left in the partials bucket (every name starts "JOB."). */
async function deletePartialsOf(partials: ObjectStore, job: string): Promise<void> {
  for (const info of await partials.list()) {
    if (info.name.startsWith(`${job}.`)) await partials.delete(info.name).catch(() => undefined);
  }
}
