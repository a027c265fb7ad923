/**
 * One worker process's work: pull one task when idle, map it, publish the partial result with
 * the task id as message id, and only then ack. A process that dies before the ack leaves its
 * task to be redelivered; a duplicate result is refused by the server and treated as success.
 */
import { hostname } from 'node:os';
import { randomBytes } from 'node:crypto';
import { JetStreamApiError, type JetStreamClient, type JsMsg } from '@nats-io/jetstream';
import { decodeTask, encodeEnvelope, type ResultHeader, type TaskHeader } from '../shared/nats/envelope.js';
import { DELIVERY } from '../shared/nats/topology.js';
import { INLINE_PARTIAL_LIMIT, type PartialsSink } from '../shared/nats/partials.js';
import { withRetry } from '../shared/nats/retry.js';
import { findKind } from '../shared/kinds/index.js';
import { TaskRejectedError, describeError } from '../shared/errors.js';
import { TASK_STREAM, WORKER_CONSUMER, parseTaskSubject, partialObjectName, resultSubject } from '../shared/subjects.js';
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
  js: JetStreamClient;
  partials: PartialsSink;
  logger: Logger;
  /** Milliseconds a pull waits for a task before asking again (the floor is 1000): also how long an idle process takes to stop. Default 1000. */
  pullExpiresMs?: number;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

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

  private wakeIdle: (() => void) | null = null;
  /** Jobs announced as ended, most recent last; bounded so a long-lived worker stays small. */
  private readonly endedJobs = new Set<string>();

  /** Records that a job ended (from its coordinator's announcement). */
  jobEnded(job: string): void {
    this.endedJobs.add(job);
    if (this.endedJobs.size > 10_000) this.endedJobs.delete(this.endedJobs.values().next().value!);
  }

  /** Finish the task in hand (if any), then make `run()` return; an idle loop returns at once. */
  stop(): void {
    this.stopping = true;
    this.wakeIdle?.();
  }

  /** Pulls and handles tasks until `stop()`. Pull errors (server restart, leader change) are retried. */
  async run(onReady?: () => void): Promise<void> {
    const { js } = this.options;
    const consumer = await js.consumers.get(TASK_STREAM, WORKER_CONSUMER);
    onReady?.();
    while (!this.stopping) {
      let message: JsMsg | null;
      try {
        const pull = consumer.next({ expires: this.options.pullExpiresMs ?? 1000 });
        // Stopping while idle need not wait for the pull to expire: once our connection closes
        // the server has no interest to deliver to, and a message already on its way is
        // handed back below or, at worst, redelivered after the ack wait.
        const stopped = new Promise<null>((resolve) => (this.wakeIdle = () => resolve(null)));
        message = await Promise.race([pull, stopped]);
        this.wakeIdle = null;
        if (message === null && this.stopping) {
          void pull.then((late) => late?.nak()).catch(() => undefined);
          break;
        }
      } catch (error) {
        this.log.warn({ err: describeError(error) }, 'pulling a task failed; retrying');
        await sleep(1000);
        continue;
      }
      if (message === null) continue;
      if (this.stopping) {
        // Pulled after we were asked to stop: hand it straight back.
        message.nak();
        break;
      }
      await this.handle(message);
    }
  }

  private async handle(message: JsMsg): Promise<void> {
    const started = performance.now();
    let decoded: { header: TaskHeader; body: Uint8Array };
    try {
      decoded = decodeTask(message.data);
      const fromSubject = parseTaskSubject(message.subject);
      if (!fromSubject || fromSubject.job !== decoded.header.job || fromSubject.task !== decoded.header.task) {
        throw new TaskRejectedError(`task header does not match subject ${message.subject}`);
      }
    } catch (error) {
      this.stats.tasksRejected++;
      this.log.warn({ subject: message.subject, bytes: message.data.length, err: describeError(error) }, 'rejected a malformed task');
      message.term();
      return;
    }
    const { header, body } = decoded;
    const log = this.log.child({ job: header.job, task: header.task });
    if (this.endedJobs.has(header.job)) {
      log.debug('dropping a task of a job that has ended');
      message.term();
      return;
    }
    this.stats.busy = true;
    this.stats.current = `${header.job}/${header.task}`;
    // Tells the server we are alive whenever the event loop is free during a long map.
    const heartbeat = setInterval(() => message.working(), Math.floor(DELIVERY.ackWaitMs / 3));
    try {
      const kind = findKind(header.kind);
      if (!kind) throw new TaskRejectedError(`unknown job kind '${header.kind}'`);
      testHooks.beforeMap(header);
      const partial = await kind.map(header.spec, body, { working: () => message.working() });
      if (this.endedJobs.has(header.job)) {
        // Cancelled, failed or finished while we worked: nobody will read this result.
        message.term();
        return;
      }
      await this.publishResult(header, partial, performance.now() - started);
      this.stats.tasksDone++;
      // The result is stored; if this ack is lost the task comes back and its duplicate result
      // is refused, so a failed ack is only logged.
      await message.ackAck().catch((error) => log.warn({ err: describeError(error) }, 'ack failed; the task will be redelivered and deduplicated'));
      log.debug({ ms: Math.round(performance.now() - started) }, 'task done');
    } catch (error) {
      const reason = describeError(error);
      const deliveries = message.info.deliveryCount;
      if (error instanceof TaskRejectedError || deliveries >= DELIVERY.maxDeliver) {
        this.stats.tasksFailed++;
        log.error({ input: header.input, deliveries, err: reason }, 'task failed for good');
        const why = error instanceof TaskRejectedError ? reason : `failed ${deliveries} times: ${reason}`;
        await this.publishFailure(header, why, performance.now() - started).catch((e) =>
          log.error({ err: describeError(e) }, 'could not report the failure'),
        );
        message.term();
      } else {
        log.warn({ input: header.input, deliveries, err: reason }, 'task failed; will be retried');
        message.nak(DELIVERY.retryDelayMs);
      }
    } finally {
      clearInterval(heartbeat);
      this.stats.busy = false;
      this.stats.current = null;
    }
  }

  private async publishResult(task: TaskHeader, partial: Uint8Array, ms: number): Promise<void> {
    const header: ResultHeader = { v: 1, job: task.job, task: task.task, worker: this.stats.name, ms: Math.round(ms) };
    let body = partial;
    if (partial.length > INLINE_PARTIAL_LIMIT) {
      // A unique name per attempt: a redelivered copy must never overwrite or delete the object
      // that a first, accepted result points to.
      header.object = `${partialObjectName(task.job, task.task)}.${randomBytes(4).toString('hex')}`;
      await this.options.partials.putBlob({ name: header.object }, partial);
      body = new Uint8Array(0);
    }
    const accepted = await this.publishOnce(header, body);
    if (!accepted && header.object) await this.options.partials.delete(header.object).catch(() => undefined);
  }

  private async publishFailure(task: TaskHeader, reason: string, ms: number): Promise<void> {
    await this.publishOnce({ v: 1, job: task.job, task: task.task, worker: this.stats.name, ms: Math.round(ms), error: reason }, new Uint8Array(0));
  }

  /**
   * Publishes a task's result unless one is already stored. Returns false for a duplicate:
   * another delivery of the same task got there first, which is success, not an error.
   */
  private async publishOnce(header: ResultHeader, body: Uint8Array): Promise<boolean> {
    const payload = encodeEnvelope(header, body);
    try {
      const ack = await withRetry(
        () =>
          this.options.js.publish(resultSubject(header.job, header.task), payload, {
            msgID: `${header.job}.${header.task}`,
            expect: { lastSubjectSequence: 0 },
          }),
        { deadlineMs: DELIVERY.ackWaitMs, onRetry: (error) => this.log.warn({ err: describeError(error) }, 'publishing a result failed; retrying') },
      );
      return !ack.duplicate;
    } catch (error) {
      if (error instanceof JetStreamApiError && error.code === 10071) return false;
      throw error;
    }
  }
}
