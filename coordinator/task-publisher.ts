/**
 * Publishing a job's tasks: the map tasks the kind splits, streamed into JetStream never more
 * than a window ahead of the results, tiny ones several to a message; then, for a partitioned
 * kind, one reduce task per partition. The window is the publisher's: the result folder frees a
 * task's room when its result is in.
 *
 * Tiny tasks (no body or a small one) travel several to a message, with consecutive ids, and come
 * back as one result message; batches may be cut anywhere (their subjects and message ids carry
 * their extent), so a resumed job that batches differently still folds each id once.
 */
import type { JetStreamClient } from '@nats-io/jetstream';
import type { AnyJobKind, Plan, Task } from '../shared/kinds/kind.js';
import type { Json } from '../shared/json.js';
import { batchEntryJson, encodeEnvelope, encodeTaskBatch, type TaskHeader } from '../shared/nats/envelope.js';
import { withRetry } from '../shared/nats/retry.js';
import { messageId, taskSubject } from '../shared/subjects.js';
import { describeError } from '../shared/errors.js';

/** A task published and not yet folded. */
export interface InFlight {
  input: string;
  weight: number;
  bytes: number;
  /** Kept for a task sent in a batch: a batch that never completes is sent again task by task. */
  task?: Task;
  /** The first task id of the message it went in. */
  message?: number;
  /** The task's spec, for a kind that must know what a skipped task covered (see JobKind.skip). */
  spec?: Json;
}

/**
 * A task message as sent, remembered until all its tasks are folded: a straggler's copy is made
 * from it. Not its payload (with carried chunks that would hold the whole window in memory a
 * second time): where it is stored, for as long as it is unacked, which a straggler's is.
 */
interface SentMessage {
  subject: string;
  msgID: string;
  /** Its sequence in the task stream, once the server confirmed it. */
  seq: number | null;
  /** Its tasks not folded yet. */
  left: number;
  /** Copies sent so far. */
  copies: number;
}

export interface TaskPublisherOptions {
  js: JetStreamClient;
  job: string;
  kind: AnyJobKind;
  /** The kind's validated options. */
  options: Json;
  /** Largest task body the server accepts. */
  maxBodyBytes: number;
  /** Tasks published but not yet folded, at most. Default 1024. */
  maxTasksInFlight?: number;
  /** Task body bytes published but not yet folded, at most. Default 64 MiB. */
  maxBytesInFlight?: number;
  /** Reduce partitions of a partitioned kind's job; 0 for none. */
  partitions: number;
  /** The embedded coordinator's stand-in worker, when there is one. */
  standIn?: StandInView;
  /** True once the job has ended (done, failed, cancelled): publishing stops. */
  ended(): boolean;
  /** True for a map task whose result is folded already (a resumed job's): not sent again. */
  folded(id: number): boolean;
  /** A map task not sent again because it is folded already: its weight counts as done. */
  onSkipped(weight: number): void;
  /** A warning that may repeat while the server is away (the caller says it once in a while). */
  warn(key: string, fields: Record<string, unknown>, message: string): void;
  /** A task message (ids first .. first + count - 1) is on its way. */
  onMessage?(first: number, count: number, phase: 'map' | 'reduce'): void;
  /** The payload of the task message stored at `seq`, or null when it is gone (acked). */
  readTask?(seq: number): Promise<Uint8Array | null>;
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
 * Unconfirmed task publishes kept in the pipe at once: ~32 big ones (a window of ~32
 * unconfirmed publishes was measured to be enough for 1 MiB chunks on nats-server 2.9 with the
 * v3 clients), up to 256 small ones (range tasks are a few hundred bytes).
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
/**
 * While only the coordinator's stand-in takes tasks (a small job's worker processes are held
 * back), tiny tasks travel at least this many to a message: each message costs the one process
 * doing everything a pull, a result and an ack (~2.5 ms; `tally sum 1 10` took 287 ms in 10
 * messages against 262 in one). Not all in one: a job that outlasts the hold leaves messages
 * for the worker processes that start then.
 */
const STAND_IN_BATCH = 8;

/**
 * Once a job has carried this many input bytes itself (stdin, a URL served whole), the
 * coordinator's process is busy reading and sending them: a stand-in mapping beside its worker
 * processes gives its core to one more (English on stdin, 8 pairs: 4.35 s with the stand-in
 * mapping throughout, 3.90 with two worker processes). A job that carries less is over sooner
 * than a worker process starts.
 */
const CARRIED_BYTES_TO_GIVE_WAY = 4 * 1024 * 1024;

/** The embedded coordinator's stand-in worker (coordinator/embedded/stand-in.ts), as the publisher sees it. */
export interface StandInView {
  /** True while it takes every task alone (a small job's worker processes held): see STAND_IN_BATCH. */
  alone(): boolean;
  /** The coordinator carries the job's input itself: the stand-in leaves its core to a worker process (see CARRIED_BYTES_TO_GIVE_WAY). */
  giveWay(): void;
}
/** Only tasks with no body or one up to this size share a message (count's chunks do not). */
const BATCH_TASK_BODY_LIMIT = 8 * 1024;
/** Bodies of one batch, at most. */
const BATCH_BODY_LIMIT = 256 * 1024;
/** Header JSON of one batch in UTF-16 units, at most: ≤ 48 KiB of UTF-8, under MAX_HEADER_BYTES. */
const BATCH_HEADER_UNITS = 16 * 1024;
const EMPTY = new Uint8Array(0);

export class TaskPublisher {
  /** Tasks published and not yet folded, by id. */
  readonly inFlight = new Map<number, InFlight>();
  /** Map tasks the kind has split so far (their ids are 0 .. published - 1). */
  published = 0;
  private bytesInFlight = 0;
  /** Input bytes this job's tasks carried (see CARRIED_BYTES_TO_GIVE_WAY). */
  private carriedBytes = 0;
  private spaceWaiter: (() => void) | null = null;
  /** Unconfirmed task publishes, oldest first. */
  private readonly pipeline: Array<{ ack: Promise<unknown>; bytes: number }> = [];
  private pipelineBytes = 0;
  /** Tasks waiting to be sent together; never held while the splitter or the window waits. */
  private batch: PendingBatch | null = null;
  private probe: Promise<typeof PAUSED> | null = null;
  /** The messages whose tasks are not all folded, by first task id. */
  private readonly sent = new Map<number, SentMessage>();
  /** Map time that workers reported, and over how many tasks, for sizing batches. */
  private mappedMs = 0;
  private mappedTasks = 0;

  constructor(private readonly o: TaskPublisherOptions) {}

  /** Workers took `ms` to map `tasks` tasks: batches are sized from it. */
  noteMapTime(ms: number, tasks: number): void {
    this.mappedMs += ms;
    this.mappedTasks += tasks;
  }

  /** A task's result is folded: its room in the window is free again. Returns what was in flight. */
  release(id: number): InFlight | undefined {
    const task = this.inFlight.get(id);
    if (!task) return undefined;
    this.inFlight.delete(id);
    this.bytesInFlight -= task.bytes;
    const sent = task.message === undefined ? undefined : this.sent.get(task.message);
    if (sent && --sent.left <= 0) this.sent.delete(task.message!);
    this.wake();
    return task;
  }

  /** Lets a publish waiting for room go on (to find the job ended, or room freed). */
  wake(): void {
    this.spaceWaiter?.();
    this.spaceWaiter = null;
  }

  /** What a task in flight covers, for messages. */
  inputOf(id: number): string | undefined {
    return this.inFlight.get(id)?.input;
  }

  /**
   * Streams the kind's map tasks into JetStream, never more than the window ahead of the
   * results. Tiny tasks are sent several to a message; a batch is sent as soon as it is full,
   * when the splitter pauses (its next task is not ready within a turn of the event loop),
   * before waiting for room in the window, and at the end: a batch never waits for more tasks.
   * Resolves once every map task is published and stored (false if the job ended first).
   */
  async publishMap(plan: Plan): Promise<boolean> {
    const { kind, options } = this.o;
    const maxTasks = this.o.maxTasksInFlight ?? 1024;
    const maxBytes = this.o.maxBytesInFlight ?? 64 * 1024 * 1024;
    // Several messages must fit in the window, or workers would wait for each other's batches.
    const maxBatch = Math.max(1, Math.min(MAX_BATCH, Math.floor(maxTasks / 4)));
    // From the job's size when the plan knows it, else from the tasks seen so far (a job of
    // unknown size starts one task per message and batches more as it proves long).
    const batchSize = () => {
      const bySize = Math.max(Math.floor((plan.totalTasks ?? this.published) / BATCHES_PER_JOB), this.o.standIn?.alone() ? STAND_IN_BATCH : 1);
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
        if (this.o.ended()) return false;
        const task = step.value;
        const body = task.body ?? EMPTY;
        while (this.inFlight.size >= maxTasks || (this.inFlight.size > 0 && this.bytesInFlight + body.length > maxBytes)) {
          if (this.batch) {
            await this.flushBatch();
            continue;
          }
          await new Promise<void>((resolve) => (this.spaceWaiter = resolve));
          if (this.o.ended()) return false;
        }
        const id = this.published++;
        if (this.o.folded(id)) {
          // Resumed job: this task's result was folded in from the results stream already.
          this.o.onSkipped(task.weight);
          continue;
        }
        const size = batchSize();
        const entry = size > 1 && body.length <= BATCH_TASK_BODY_LIMIT ? batchEntryJson(task.input, task.spec, body.length) : null;
        const batchable = entry !== null && entry.length <= BATCH_HEADER_UNITS / 4;
        this.inFlight.set(id, batchable ? { input: task.input, weight: task.weight, bytes: body.length, task } : { input: task.input, weight: task.weight, bytes: body.length, ...(kind.skip ? { spec: task.spec } : {}) });
        this.bytesInFlight += body.length;
        this.carriedBytes += body.length;
        // Once is enough: the stand-in gives way once, and ignores later calls.
        if (this.carriedBytes >= CARRIED_BYTES_TO_GIVE_WAY) this.o.standIn?.giveWay();
        const open = this.batch;
        if (open && (!batchable || id !== open.first + open.tasks.length || open.bodyBytes + body.length > BATCH_BODY_LIMIT || open.headerUnits + entry.length > BATCH_HEADER_UNITS)) {
          await this.flushBatch();
        }
        if (!batchable) {
          await this.publishMessage(id, 1, 'map', taskSubject(this.o.job, id), messageId(this.o.job, id), this.singleTask(id, task));
          continue;
        }
        this.batch ??= { first: id, tasks: [], entries: [], bodyBytes: 0, headerUnits: 0 };
        this.batch.tasks.push(task);
        this.batch.entries.push(entry);
        this.batch.bodyBytes += body.length;
        this.batch.headerUnits += entry.length + 1;
        if (this.batch.tasks.length >= size) await this.flushBatch();
      }
      if (this.o.ended()) return false;
      await this.flushBatch();
      await this.settle();
      return true;
    } finally {
      // Closes the splitter's inputs when the job ended early.
      if (!finished) await iterator.return?.(undefined).catch(() => undefined);
    }
  }

  /**
   * Once every map task is folded: one reduce task per partition that has no part yet (a
   * resumed job may have some), with ids after the map tasks'. `skipped`: map tasks skipped
   * for failing (ascending), whose shares the reducers must not wait for.
   */
  async publishReduce(hasPart: (partition: number) => boolean, specOf: (partition: number) => Json, skipped: number[] = []): Promise<void> {
    const { kind, options, partitions } = this.o;
    for (let p = 0; p < partitions; p++) {
      if (hasPart(p)) continue;
      const id = this.published + p;
      const input = `partition ${p + 1} of ${partitions}`;
      this.inFlight.set(id, { input, weight: 0, bytes: 0 });
      const header: TaskHeader = {
        v: 1,
        job: this.o.job,
        task: id,
        kind: kind.name,
        input,
        spec: specOf(p),
        reduce: { partition: p, partitions, tasks: this.published, ...(skipped.length > 0 ? { skipped } : {}) },
      };
      await this.publishMessage(id, 1, 'reduce', taskSubject(this.o.job, id), messageId(this.o.job, id), encodeEnvelope(header, EMPTY));
    }
    await this.settle();
  }

  /**
   * A batch delivered max_deliver times without a result killed its worker every time (a task
   * that throws is reported by the worker, naming it): its tasks go again one per message, so
   * that the poison one is found and named by its own max-deliveries advisory.
   */
  async resendSingly(first: number, count: number): Promise<void> {
    const sends: Array<Promise<unknown>> = [];
    this.sent.delete(first);
    for (let id = first; id < first + count; id++) {
      const inFlight = this.inFlight.get(id);
      const task = inFlight?.task;
      if (!task || this.o.folded(id)) continue;
      const payload = this.singleTask(id, task);
      inFlight.message = id;
      const sent = this.remember(id, 1, 'map', taskSubject(this.o.job, id), messageId(this.o.job, id));
      sends.push(
        withRetry(() => this.o.js.publish(taskSubject(this.o.job, id), payload, { msgID: messageId(this.o.job, id), timeout: 10_000 }), { deadlineMs: Number.POSITIVE_INFINITY, cancelled: () => this.o.ended() }).then(
          (ack) => (sent.seq = ack.seq),
        ),
      );
    }
    await Promise.all(sends);
  }

  /**
   * Sends a copy of the task message that starts at task `first` (a backup for a straggler):
   * the same subject and payload under a message id of its own, so the work queue keeps both;
   * its result goes where the original's would, and the first one stored wins. False when that
   * message's tasks are all folded already.
   */
  async publishCopy(first: number): Promise<boolean> {
    const sent = this.sent.get(first);
    if (!sent || sent.seq === null || !this.o.readTask || this.o.ended()) return false;
    // The original, read back from the task stream: unacked, it is still there.
    const payload = await this.o.readTask(sent.seq);
    if (payload === null || this.o.ended()) return false;
    const msgID = `${sent.msgID}.copy${++sent.copies}`;
    this.copies++;
    await withRetry(() => this.o.js.publish(sent.subject, payload, { msgID, timeout: 10_000 }), { deadlineMs: 30_000, cancelled: () => this.o.ended() });
    return true;
  }

  /** True once any copy of a message was sent (the job then withdraws what is left of its tasks when it ends). */
  get copiesSent(): boolean {
    return this.copies > 0;
  }

  private copies = 0;

  /** Keeps a message until its tasks are folded, and says it is on its way. */
  private remember(first: number, count: number, phase: 'map' | 'reduce', subject: string, msgID: string): SentMessage {
    for (let id = first; id < first + count; id++) {
      const inFlight = this.inFlight.get(id);
      if (inFlight) inFlight.message = first;
    }
    const sent: SentMessage = { subject, msgID, seq: null, left: count, copies: 0 };
    this.sent.set(first, sent);
    this.o.onMessage?.(first, count, phase);
    return sent;
  }

  /** Waits until every publish so far is stored. */
  private async settle(): Promise<void> {
    await Promise.all(this.pipeline.map((entry) => entry.ack));
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
    const header: TaskHeader = { v: 1, job: this.o.job, task: id, kind: this.o.kind.name, input: task.input, spec: task.spec };
    if (this.o.partitions > 0) header.partitions = this.o.partitions;
    return encodeEnvelope(header, task.body ?? EMPTY);
  }

  /** Sends the pending batch (a lone task as a plain task message). */
  private async flushBatch(): Promise<void> {
    const batch = this.batch;
    if (!batch) return;
    this.batch = null;
    const { first, tasks } = batch;
    if (tasks.length === 1) {
      await this.publishMessage(first, 1, 'map', taskSubject(this.o.job, first), messageId(this.o.job, first), this.singleTask(first, tasks[0]!));
      return;
    }
    const body = batch.bodyBytes === 0 ? EMPTY : Buffer.concat(tasks.map((task) => task.body ?? EMPTY));
    const payload = encodeTaskBatch(this.o.job, first, this.o.kind.name, batch.entries, body, this.o.partitions > 0 ? this.o.partitions : undefined);
    await this.publishMessage(first, tasks.length, 'map', taskSubject(this.o.job, first, tasks.length), messageId(this.o.job, first, tasks.length), payload);
  }

  /** Publishes one task message into the pipeline; waits while too many are unconfirmed. */
  private async publishMessage(first: number, count: number, phase: 'map' | 'reduce', subject: string, msgID: string, payload: Uint8Array): Promise<void> {
    const sent = this.remember(first, count, phase, subject, msgID);
    // No deadline of its own: while the server is away the job's server watch decides when to
    // give up (and ends the job, which ends these retries).
    const ack = withRetry(() => this.o.js.publish(subject, payload, { msgID, timeout: 10_000 }), {
      deadlineMs: Number.POSITIVE_INFINITY,
      cancelled: () => this.o.ended(),
      onRetry: (error) => this.o.warn('publish', { subject, err: describeError(error) }, 'publishing a task failed; retrying'),
    }).then((pubAck) => {
      // A duplicate (a resumed job sending what is stored already) names the stored message.
      sent.seq = pubAck.seq;
      return pubAck;
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
}
