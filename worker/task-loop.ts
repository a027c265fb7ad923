/**
 * One worker process's work: pull one task message when idle, map its task (or each task of a
 * batch of tiny ones), publish the partial result (one message per task message) with the task
 * ids as message id, and only then ack. A process that dies before the ack leaves its task
 * message to be redelivered; a duplicate result is refused by the server and treated as success.
 */
import { hostname } from 'node:os';
import { randomBytes } from 'node:crypto';
import type { ConsumerMessages, JetStreamClient, JsMsg } from '@nats-io/jetstream';
import { isWrongLastSequence } from '../shared/nats/errors.js';
import { decodeTaskBatch, encodeEnvelope, type ResultHeader, type ShuffleHeader, type TaskBatch } from '../shared/nats/envelope.js';
import { DELIVERY, retryDelayMs } from '../shared/nats/topology.js';
import type { PartialsSink } from '../shared/nats/partials.js';
import { withRetry } from '../shared/nats/retry.js';
import { loadKind } from '../shared/kinds/index.js';
import { CorruptInputError, InputChangedError, TaskRejectedError, describeError } from '../shared/errors.js';
import {
  TASK_STREAM,
  WORKER_CONSUMER,
  messageId,
  parseTaskSubject,
  partialObjectName,
  resultSubject,
  shuffleMessageId,
  shuffleObjectName,
  shuffleSubject,
  taskLabel,
  taskReportSubject,
} from '../shared/subjects.js';
import type { NatsConnection } from '@nats-io/transport-node';
import type { TaskReport } from '../shared/job-feed.js';
import type { ObjectStore } from '@nats-io/obj';
import { PartitionTooBigError, runReduceTask } from './reduce-task.js';
import type { Logger } from '../shared/log.js';
import { testHooks } from './test-hooks.js';

/** What `tally workers` shows about a process. */
export interface WorkerStats {
  name: string;
  host: string;
  pid: number;
  started: string;
  tasksDone: number;
  tasksFailed: number;
  tasksRejected: number;
  busy: boolean;
  /** "job/task" of the task in hand. */
  current: string | null;
}

export interface TaskLoopOptions {
  /** The connection, for reports to coordinators (core NATS). */
  nc: NatsConnection;
  js: JetStreamClient;
  partials: PartialsSink;
  /** Reduce tasks read big shares from the partials bucket: opened when first needed. */
  partialsReader: () => Promise<ObjectStore>;
  /** Partials and shares larger than this go through the partials bucket (see inlineLimitFor). */
  inlineLimit: number;
  /** Where reduce tasks store their sorted parts (the results bucket, written blind). */
  parts: { putPieces(name: string, pieces: Iterable<Uint8Array>): Promise<void> };
  logger: Logger;
  /**
   * The most distinct keys a reduce task of this loop may hold (see ReduceContext.maxKeys); past
   * it the task goes back at once, for another worker, and `onReduceGivenBack` is called first.
   */
  reduceKeysLimit?: number;
  /** A reduce task was given back (see reduceKeysLimit): the loop's owner stops it taking more. */
  onReduceGivenBack?: () => void;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Thrown from a map's lease renewal once another copy of its task has its result. */
class TaskSupersededError extends Error {}

/** How long one pull of `runOnePullAtATime` waits for a task (the client's least). */
const ONE_PULL_EXPIRES_MS = 1_000;

/** Results published but not yet acknowledged by the server, per process, at most. */
const MAX_PENDING_DELIVERIES = 16;

export class TaskLoop {
  readonly stats: WorkerStats;
  private stopping = false;
  private readonly options: TaskLoopOptions;
  private readonly log: Logger;

  constructor(options: TaskLoopOptions) {
    this.options = options;
    const host = hostname();
    this.log = options.logger.child({ worker: `${host}:${process.pid}` });
    this.stats = {
      name: `${host}:${process.pid}`,
      host,
      pid: process.pid,
      started: new Date().toISOString(),
      tasksDone: 0,
      tasksFailed: 0,
      tasksRejected: 0,
      busy: false,
      current: null,
    };
  }

  /** Jobs announced as ended, most recent last; bounded so a long-lived worker stays small. */
  private readonly endedJobs = new Set<string>();
  /** The task message in hand, and whether its result came from another copy meanwhile. */
  private current: { job: string; first: number; superseded: boolean } | null = null;

  /**
   * Another copy of a task message (a backup, or the original a backup raced) has its result
   * in: the copy in hand is dropped at its next lease renewal (the kinds with long tasks renew
   * often), or at the latest before its result would be published.
   */
  superseded(job: string, first: number): void {
    if (this.current?.job === job && this.current.first === first) this.current.superseded = true;
  }

  /** Records that a job ended (from its coordinator's announcement). */
  jobEnded(job: string): void {
    this.endedJobs.add(job);
    if (this.endedJobs.size > 10_000) this.endedJobs.delete(this.endedJobs.values().next().value!);
  }

  /** The live subscription to the worker consumer, closed by `stop()` when idle. */
  private messages: ConsumerMessages | null = null;

  /** Finish the task in hand (if any), then make `run()` return; an idle loop returns at once. */
  stop(): void {
    this.stopping = true;
    // Stopping the subscription ends the pull; a task already sent our way is still yielded
    // below and handed straight back instead of waiting out its ack wait.
    if (!this.stats.busy) this.messages?.stop();
  }

  /**
   * Pulls and handles tasks until `stop()`, one at a time: `max_messages: 1` asks for the next
   * task as soon as this one arrives, so at most one more waits here while a task runs (the
   * pull is in flight instead of a round trip per task). Short pull expiries and heartbeats
   * bring a stalled pull back within seconds after a server restart or a leader change
   * (measured on a 3-node cluster losing the consumer's leader: task delivery stalled 40-45 s
   * with the client's default 30 s expiry, 9-11 s with these); a failed subscription is opened
   * again.
   */
  async run(onReady?: () => void): Promise<void> {
    const { js } = this.options;
    const consumer = await js.consumers.get(TASK_STREAM, WORKER_CONSUMER);
    onReady?.();
    while (!this.stopping) {
      try {
        this.messages = await consumer.consume({ max_messages: 1, expires: 5000, idle_heartbeat: 1500 });
      } catch (error) {
        this.log.warn({ err: describeError(error) }, 'subscribing to tasks failed; retrying');
        await sleep(1000);
        continue;
      }
      try {
        for await (const message of this.messages) {
          if (this.stopping) {
            // Arrived after we were asked to stop: hand it back, after a pause. A plain nak
            // would come straight back to this worker's pull, still open on the server, and
            // each return counts as a delivery: a few such rounds used up a task's
            // max_deliver while live workers waited, and the job hung or failed on a task
            // nobody had tried (seen with five embedded commands starting and ending at once).
            message.nak(DELIVERY.handBackDelayMs);
            continue;
          }
          await this.handle(message);
          if (this.stopping) this.messages.stop();
        }
      } catch (error) {
        this.log.warn({ err: describeError(error) }, 'pulling tasks failed; subscribing again');
        await sleep(500);
      } finally {
        await this.messages.close().catch(() => undefined);
        this.messages = null;
      }
    }
    await this.flush();
  }

  /** The message being handled, if any (see `settled`). */
  private handling: Promise<void> | null = null;

  /**
   * Pulls one task message at a time until `stop()`: each pull asks for one message and is over
   * once it arrives or expires, so between tasks nothing is pulled for this loop, and it can
   * stop in the middle of a job without losing a task on its way to it (`consume` keeps a pull
   * open ahead). A pull open when `stop()` comes is left to end (its task, if one comes, is
   * handled), unless `abandonPull()`: then a task on its way is lost to the queue until its ack
   * wait, which is for when the job is over. The embedded coordinator's stand-in runs this way
   * (coordinator/embedded/stand-in.ts).
   */
  async runOnePullAtATime(): Promise<void> {
    const consumer = await this.options.js.consumers.get(TASK_STREAM, WORKER_CONSUMER);
    while (!this.stopping) {
      let message: JsMsg | null = null;
      try {
        // As `next()` does, but kept for `abandonPull()` (not in `messages`, which `stop()` ends).
        this.onePull = await consumer.fetch({ max_messages: 1, expires: ONE_PULL_EXPIRES_MS });
        if (this.pullAbandoned) this.onePull.stop();
        for await (const pulled of this.onePull) {
          message = pulled;
          break;
        }
      } catch (error) {
        if (this.stopping) break;
        this.log.warn({ err: describeError(error) }, 'pulling a task failed; retrying');
        await sleep(500);
        continue;
      } finally {
        this.onePull = null;
      }
      if (!message) continue;
      this.handling = this.handle(message);
      await this.handling;
      this.handling = null;
    }
    await this.flush();
  }

  /** Ends the pull `runOnePullAtATime` has open, if any (see there). */
  abandonPull(): void {
    this.pullAbandoned = true;
    this.onePull?.stop();
  }

  /** The pull `runOnePullAtATime` has open, and whether it was told to end it. */
  private onePull: ConsumerMessages | null = null;
  private pullAbandoned = false;

  /** Resolves once the message in hand (if any) is handled and every result delivered. */
  async settled(): Promise<void> {
    await this.handling;
    await this.flush();
  }

  /**
   * Handles one task message: one task, or a batch of tiny tasks mapped one after the other and
   * answered with one result message. A batch succeeds or fails as a whole: a task of it that
   * throws sends the whole message back for a retry, and on its last delivery fails the job
   * naming that task.
   */
  private async handle(message: JsMsg): Promise<void> {
    const started = performance.now();
    let batch: TaskBatch;
    try {
      batch = decodeTaskBatch(message.data);
      const fromSubject = parseTaskSubject(message.subject);
      if (!fromSubject || fromSubject.job !== batch.job || fromSubject.task !== batch.first || fromSubject.count !== batch.tasks.length) {
        throw new TaskRejectedError(`task header does not match subject ${message.subject}`);
      }
    } catch (error) {
      await this.unreadable(message, describeError(error));
      return;
    }
    const { job, first, tasks } = batch;
    const count = tasks.length;
    // Plain bindings rather than a child logger: a pino child per task costs more than the task.
    const at = count === 1 ? { job, task: first } : { job, task: first, tasks: count };
    if (this.endedJobs.has(job)) {
      this.log.debug(at, 'dropping a task of a job that has ended');
      message.term();
      return;
    }
    this.stats.busy = true;
    this.stats.current = `${job}/${taskLabel(first, count)}`;
    const current = { job, first, superseded: false };
    this.current = current;
    // The coordinator times the task from here, to notice a straggler and back it up.
    this.report(job, { type: 'start', task: first, count, worker: this.stats.name, deliveries: message.info.deliveryCount });
    const ackWaitThird = Math.floor(DELIVERY.ackWaitMs / 3);
    // Tells the server we are alive whenever the event loop is free during a long map.
    const heartbeat = setInterval(() => message.working(), ackWaitThird);
    const checkWanted = () => {
      if (current.superseded) throw new TaskSupersededError(`${job}/${taskLabel(first, count)}`);
    };
    const working = () => {
      checkWanted();
      message.working();
    };
    const context = { working, checkWanted };
    let index = 0;
    try {
      const kind = await loadKind(batch.kind);
      if (!kind) throw new TaskRejectedError(`unknown job kind '${batch.kind}'`);
      if (batch.reduce) {
        testHooks.beforeMap(tasks[0]!.header);
        const { name, summary } = await runReduceTask(kind, job, batch.reduce, tasks[0]!.header.spec, {
          js: this.options.js,
          partials: this.options.partialsReader,
          storePart: (part, pieces) => this.options.parts.putPieces(part, pieces),
          logger: this.log,
          working,
          progress: (progress) => this.report(job, { type: 'reduce', partition: batch.reduce!.partition, worker: this.stats.name, ...progress }),
          maxKeys: this.options.reduceKeysLimit,
        });
        await new Promise((resolve) => setImmediate(resolve));
        if (this.dropped(current, at)) {
          message.term();
          return;
        }
        const body = new TextEncoder().encode(JSON.stringify({ part: name, summary }));
        await this.deliver(message, batch, [body], performance.now() - started, at, batch.reduce.partition);
        return;
      }
      const partitions = batch.partitions;
      const partitioned = kind.partitioned;
      if (partitions !== undefined && !partitioned) throw new TaskRejectedError(`job kind '${kind.name}' has no partitioned reduce`);
      // A partitioned job's map gives each task's summary (its partial) and shares.
      const partials: Uint8Array[] = new Array(count);
      const shares: Uint8Array[][] = partitions === undefined ? [] : new Array(count);
      let lastWorking = started;
      for (; index < count; index++) {
        if (index > 0 && this.stopping) {
          // Asked to stop in the middle of a batch: hand it back now rather than after the
          // rest of it (a batch of long tasks could take minutes); another worker redoes it.
          message.nak();
          return;
        }
        const task = tasks[index]!;
        testHooks.beforeMap(task.header, message.info.deliveryCount);
        const held = testHooks.hold(task.header);
        if (held) await held;
        if (partitions === undefined) partials[index] = await kind.map(task.header.spec, task.body, context);
        else {
          const output = await partitioned!.map(task.header.spec, task.body, context, partitions);
          partials[index] = output.summary;
          shares[index] = output.shares;
        }
        if (count > 1) {
          // The tasks of a batch share one lease: renew it between tasks when a batch runs long.
          const now = performance.now();
          if (now - lastWorking > ackWaitThird) {
            message.working();
            lastWorking = now;
          }
        }
      }
      // A CPU-bound map keeps the event loop busy: let it read what arrived meanwhile (the
      // announcement that this job ended) before deciding to publish. Two turns of the loop
      // make sure one poll phase (socket reads) runs in between.
      await new Promise((resolve) => setImmediate(resolve));
      await new Promise((resolve) => setImmediate(resolve));
      if (this.dropped(current, at)) {
        message.term();
        return;
      }
      const stored = partitions === undefined ? undefined : this.shuffle(batch, shares, partitions);
      await this.deliver(message, batch, partials, performance.now() - started, at, undefined, stored);
    } catch (error) {
      if (error instanceof TaskSupersededError) {
        this.log.debug(at, "dropping a task: another copy's result is in");
        message.term();
        return;
      }
      if (error instanceof PartitionTooBigError) {
        // Not a failure: another worker takes it at once (the owner stops this loop first).
        this.log.info({ ...at, maxKeys: error.maxKeys }, 'giving a reduce task back: its partition outgrew this reducer');
        this.options.onReduceGivenBack?.();
        message.nak();
        return;
      }
      const reason = describeError(error);
      const deliveries = message.info.deliveryCount;
      const failed = tasks[Math.min(index, count - 1)]!.header;
      const where = count === 1 ? at : { ...at, failedTask: failed.task };
      if (error instanceof TaskRejectedError || deliveries >= DELIVERY.maxDeliver) {
        this.stats.tasksFailed++;
        // An input edited mid-job, or corrupt, is the submitter's doing, and their coordinator tells them.
        const level = error instanceof InputChangedError || error instanceof CorruptInputError ? 'info' : 'error';
        this.log[level]({ ...where, input: failed.input, deliveries, err: reason }, 'task failed for good');
        const why = error instanceof TaskRejectedError ? reason : `failed ${deliveries} times: ${reason}`;
        await this.publishFailure({ job, first, count }, failed.task - first, why, performance.now() - started).catch((e) =>
          this.log.error({ ...at, err: describeError(e) }, 'could not report the failure'),
        );
        message.term();
      } else {
        this.log.warn({ ...where, input: failed.input, deliveries, err: reason }, 'task failed; will be retried');
        this.report(job, { type: 'retry', task: failed.task, worker: this.stats.name, deliveries, error: reason });
        message.nak(retryDelayMs(deliveries));
      }
    } finally {
      clearInterval(heartbeat);
      if (this.current === current) this.current = null;
      this.stats.busy = false;
      this.stats.current = null;
    }
  }

  /**
   * A task message this worker cannot read: malformed, or in a format of another tally version
   * (a fleet in the middle of an upgrade). It goes back for another worker, which may read it;
   * on its last delivery it fails its job with the reason, where the subject names one, so that
   * the coordinator does not wait forever for a result nobody sends. A message whose subject
   * names no task is only dropped.
   */
  private async unreadable(message: JsMsg, reason: string): Promise<void> {
    const where = parseTaskSubject(message.subject);
    const deliveries = message.info.deliveryCount;
    const log = { subject: message.subject, bytes: message.data.length, deliveries, err: reason };
    if (where && !this.endedJobs.has(where.job) && deliveries < DELIVERY.maxDeliver) {
      this.log.warn(log, 'could not read a task; handing it back for another worker');
      message.nak(retryDelayMs(deliveries));
      return;
    }
    this.stats.tasksRejected++;
    this.log.warn(log, 'rejected a malformed task');
    if (where && !this.endedJobs.has(where.job)) {
      const why = `no worker could read this task (${reason.slice(0, 1000)}); run the same tally version on the coordinator and every worker`;
      await this.publishFailure({ job: where.job, first: where.task, count: where.count }, 0, why, 0).catch((e) =>
        this.log.error({ ...where, err: describeError(e) }, 'could not report the failure'),
      );
    }
    message.term();
  }

  /**
   * Tells the job's coordinator what only this worker sees (shared/job-feed.ts): fire and
   * forget, on core NATS; a worker whose role may not publish there loses only the report.
   */
  private report(job: string, report: TaskReport): void {
    try {
      this.options.nc.publish(taskReportSubject(job), JSON.stringify(report));
    } catch (error) {
      this.log.debug({ err: describeError(error) }, 'could not report to the coordinator');
    }
  }

  /**
   * True when nobody will read the result of the message in hand: another copy's result is in,
   * or its job was cancelled, failed or finished while we worked.
   */
  private dropped(current: { job: string; superseded: boolean }, at: Record<string, unknown>): boolean {
    if (current.superseded) this.log.debug(at, "dropping a task: another copy's result is in");
    else if (this.endedJobs.has(current.job)) this.log.debug(at, 'dropping a task: its job has ended');
    else return false;
    return true;
  }

  /** Result deliveries still waiting for their PubAck (bounded by MAX_PENDING_DELIVERIES). */
  private readonly pending = new Set<Promise<void>>();

  /**
   * Publishes a message's result and acks the message once the server has stored the result,
   * without making the next pull wait for that round trip: a process pulls its next task while
   * the previous result is on its way. The task is acked only after its result is stored, so a
   * crash in between leaves it to be redelivered and deduplicated, never lost.
   */
  private async deliver(message: JsMsg, batch: TaskBatch, partials: Uint8Array[], ms: number, at: Record<string, unknown>, partition?: number, before?: Promise<unknown>): Promise<void> {
    // A partitioned map's result goes out only once its shares are stored (`before`).
    const deliveries = message.info.deliveryCount;
    const delivery = (before ?? Promise.resolve()).then(() => this.publishResult(batch, partials, ms, deliveries, partition)).then(
      () => {
        this.stats.tasksDone += partials.length;
        // A lost ack only brings the task back, and its duplicate result is refused.
        message.ack();
        this.log.debug({ ...at, ms: Math.round(ms) }, 'task done');
      },
      (error) => {
        this.log.warn({ ...at, input: batch.tasks[0]!.header.input, err: describeError(error) }, 'publishing the result failed; the task will be retried');
        message.nak(retryDelayMs(message.info.deliveryCount));
      },
    );
    this.pending.add(delivery);
    void delivery.finally(() => this.pending.delete(delivery));
    if (this.pending.size >= MAX_PENDING_DELIVERIES) await Promise.race(this.pending);
  }

  /** Waits until every result handed to `deliver` is stored and its task acked. */
  async flush(): Promise<void> {
    await Promise.all([...this.pending]);
  }

  private async publishResult(batch: TaskBatch, partials: Uint8Array[], ms: number, deliveries: number, partition?: number): Promise<void> {
    const { job, first } = batch;
    const count = partials.length;
    const header: ResultHeader = { v: 1, job, task: first, worker: this.stats.name, ms: Math.round(ms) };
    if (deliveries > 1) header.deliveries = deliveries;
    if (partition !== undefined) header.partition = partition;
    let body: Uint8Array;
    if (count === 1) {
      body = partials[0]!;
    } else {
      header.count = count;
      header.sizes = partials.map((partial) => partial.length);
      body = Buffer.concat(partials);
    }
    if (body.length > this.options.inlineLimit) {
      // A unique name per attempt: a redelivered copy must never overwrite or delete the object
      // that a first, accepted result points to.
      header.object = `${partialObjectName(job, first, count)}.${randomBytes(4).toString('hex')}`;
      await this.options.partials.putBlob({ name: header.object }, body);
      body = new Uint8Array(0);
    }
    if (count > 1 && partition === undefined && testHooks.duplicateBatchesAsSingles()) {
      for (const [i, partial] of partials.entries()) {
        await this.publishOnce({ v: 1, job, task: first + i, worker: this.stats.name, ms: header.ms }, partial);
      }
    }
    const accepted = await this.publishOnce(header, body);
    if (!accepted && header.object) await this.options.partials.delete(header.object).catch(() => undefined);
  }

  /**
   * A partitioned job's map output: each task's share for each partition (`shares[task][p]`) is
   * stored in the shuffle stream before the message's result is published (the returned
   * promise), so that once the coordinator has every result, every reducer finds every share.
   * A share stored by an earlier delivery of the same message is refused as a duplicate, which
   * is success.
   */
  private shuffle(batch: TaskBatch, taskShares: Uint8Array[][], partitions: number): Promise<unknown> {
    const { job, first } = batch;
    const count = taskShares.length;
    // Not awaited here: the next task is pulled and mapped while these are on their way.
    const stored = Promise.all(
      Array.from({ length: partitions }, async (_, p) => {
        const shares = taskShares.map((one) => one[p]!);
        const header: ShuffleHeader = { v: 1, job, task: first, partition: p };
        let body = count === 1 ? shares[0]! : Buffer.concat(shares);
        if (count > 1) {
          header.count = count;
          header.sizes = shares.map((share) => share.length);
        }
        if (body.length > this.options.inlineLimit) {
          header.object = `${shuffleObjectName(job, p, first, count)}.${randomBytes(4).toString('hex')}`;
          await this.options.partials.putBlob({ name: header.object }, body);
          body = new Uint8Array(0);
        }
        if (count > 1 && testHooks.duplicateBatchesAsSingles()) {
          for (const [i, share] of shares.entries()) {
            const single: ShuffleHeader = { v: 1, job, task: first + i, partition: p };
            await this.storeOnce(shuffleSubject(job, p, first + i, 1), shuffleMessageId(job, p, first + i, 1), encodeEnvelope(single, share), job, first + i);
          }
        }
        await this.storeOnce(shuffleSubject(job, p, first, count), shuffleMessageId(job, p, first, count), encodeEnvelope(header, body), job, first);
      }),
    );
    stored.catch(() => undefined);
    return stored;
  }

  /** Reports that the task at `index` of the message can never succeed; the job fails naming it. */
  private async publishFailure(message: { job: string; first: number; count: number }, index: number, reason: string, ms: number): Promise<void> {
    const header: ResultHeader = { v: 1, job: message.job, task: message.first, worker: this.stats.name, ms: Math.round(ms), error: reason };
    if (message.count > 1) {
      header.count = message.count;
      header.failed = index;
    }
    await this.publishOnce(header, new Uint8Array(0));
  }

  /**
   * Publishes a message's result unless one is already stored. Returns false for a duplicate:
   * another delivery of the same task got there first, which is success, not an error.
   */
  private async publishOnce(header: ResultHeader, body: Uint8Array): Promise<boolean> {
    return this.storeOnce(resultSubject(header.job, header.task, header.count), messageId(header.job, header.task, header.count), encodeEnvelope(header, body), header.job, header.task);
  }

  /**
   * Publishes a message on a subject that holds one message for good (a result, a share):
   * false when one is already stored there (another delivery of the same task got there first).
   */
  private async storeOnce(subject: string, msgID: string, payload: Uint8Array, job: string, task: number): Promise<boolean> {
    try {
      const ack = await withRetry(() => this.options.js.publish(subject, payload, { msgID, expect: { lastSubjectSequence: 0 } }), {
        deadlineMs: DELIVERY.ackWaitMs,
        onRetry: (error) => this.log.warn({ job, task, subject, err: describeError(error) }, 'publishing failed; retrying'),
      });
      return !ack.duplicate;
    } catch (error) {
      if (isWrongLastSequence(error)) return false;
      throw error;
    }
  }
}
