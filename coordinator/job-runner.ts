/**
 * The life of one job of any kind, on its coordinator: its record (written only while the job is
 * ours: job-lease.ts), its phases, and its end.
 *
 *   map:    the kind's tasks are published (task-publisher.ts) and their results folded, each
 *           task id once (result-folder.ts);
 *   reduce: for a partitioned kind (count), once every map result is in, one reduce task per
 *           partition; each stores its sorted part beside the result and reports a summary;
 *   end:    the kind's result is finalized from what was folded and stored; workers are told
 *           the job ended; its tasks, results and map outputs are removed from the server.
 *
 * Delivery is at least once on the wire; exactly once lives in the fold. A job whose server is
 * gone, or that another coordinator took over, ends without touching anything of it.
 */
import { hostname } from 'node:os';
import type { JetStreamClient, JetStreamManager } from '@nats-io/jetstream';
import type { ObjectStore } from '@nats-io/obj';
import type { NatsConnection, Subscription } from '@nats-io/transport-node';
import { watchLink, type LinkWatch } from '../shared/nats/link.js';
import type { AnyJobKind, Plan } from '../shared/kinds/kind.js';
import type { Json } from '../shared/json.js';
import { withRetry } from '../shared/nats/retry.js';
import { isNoMessage, isTransient } from '../shared/nats/errors.js';
import { withQuickList } from '../shared/nats/topology.js';
import {
  PARTIALS_BUCKET,
  RESULT_STREAM,
  SHUFFLE_STREAM,
  TASK_STREAM,
  WORKER_CONSUMER,
  jobCancelSubject,
  jobEndedSubject,
  jobResultSubjects,
  jobShuffleSubjects,
  jobTaskSubjects,
  supersededSubject,
  newJobId,
  parseTaskSubject,
  partObjectName,
  resultConsumerName,
} from '../shared/subjects.js';
import { InterruptedError, JobFailedError, ServerError, describeError } from '../shared/errors.js';
import type { Logger } from '../shared/log.js';
import { JobTakenOverError, type JobRecord, type JobStatus, type JobStore, type StoredJobRecord } from './job-store.js';
import { purgeSubjects } from '../shared/nats/purge.js';
import { JobLease } from './job-lease.js';
import { TaskPublisher, type StandInView } from './task-publisher.js';
import { ResultFolder } from './result-folder.js';
import { FeedPublisher } from './feed-publisher.js';
import { BackupTasks, DEFAULT_BACKUPS, type BackupSettings } from './backup-tasks.js';
import { setting } from '../shared/settings.js';
import { SkippedTasks, skipLimitFor, type FailingJob } from './skipped-tasks.js';
import { objLib } from '../shared/nats/client.js';

/** What progress output and the job record show. */
export interface JobProgress {
  job: string;
  /** Map and reduce tasks with their result in. */
  tasksDone: number;
  /** Null while the input is still being split and the total is not known in advance. */
  tasksTotal: number | null;
  weightDone: number;
  weightTotal: number | null;
  unit: Plan['unit'];
  startedAt: number;
  /** True when tasks are queued but no worker has answered for a while. */
  waitingForWorkers: boolean;
  /** 'reduce' once every map task is in and the reduce tasks of a partitioned job run. */
  phase: 'map' | 'reduce';
  /** Reduce partitions done, and in all (0 for kinds that reduce on the coordinator). */
  partsDone: number;
  partitions: number;
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
  /** The embedded coordinator's stand-in worker, when there is one (see TaskPublisher). */
  standIn?: StandInView;
  /** Tasks published but not yet folded, at most. Default 1024. */
  maxTasksInFlight?: number;
  /** Task body bytes published but not yet folded, at most. Default 64 MiB. */
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
  /** The connection's link to its server, followed by its owner (see watchLink). */
  link?: LinkWatch;
  /** Backup tasks for stragglers. Default DEFAULT_BACKUPS. */
  backups?: BackupSettings;
  /**
   * Called once every result is folded, before the result is finalized and stored: the
   * workers have nothing more to do for this job (the embedded default stops its own then).
   */
  onFolded?: () => void;
  /**
   * Given the clean-up that follows the job (the grace for workers to hear of its end, the
   * purge of its results and partial objects), the job resolves without waiting for it, so
   * that its result can be printed first; the caller must await it before closing the
   * connection. Without this, the job resolves after its clean-up.
   */
  deferCleanup?: (cleanup: Promise<void>) => void;
}

/** How often a running job looks for stragglers to back up. */
const BACKUP_CHECK_MS = 250;

const RECORD_INTERVAL_MS = 1000;
const WORKER_CHECK_MS = 5000;

/**
 * How long the connection to the server may stay lost before the job gives up (a restart or a
 * leader change takes seconds). The job record stays "running", so `tally resume` can finish it.
 */
const SERVER_LOST_MS = setting('TALLY_SERVER_LOST_MS');
/** How often a running job looks at its record on the server (see `checkServer`). */
const SERVER_PROBE_MS = Math.min(5_000, Math.max(250, Math.floor(SERVER_LOST_MS / 4)));
/**
 * How long a job interrupted while its link still looks up waits for the server to answer a
 * PING before it takes the server for gone: the client may not have seen the link drop yet when
 * Ctrl-C comes (a server stopped a moment before, a busy machine).
 */
const INTERRUPT_PROBE_MS = 500;

/** True when the server answers a PING within `ms`. */
async function serverAnswers(nc: NatsConnection, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<boolean>((resolve) => (timer = setTimeout(resolve, ms, false)));
  try {
    return await Promise.race([nc.flush().then(() => true, () => false), late]);
  } finally {
    clearTimeout(timer);
  }
}
const WARN_EVERY_MS = 10_000;
const ENDED_GRACE_MS = 25;

/** The server has not answered for SERVER_LOST_MS: the job is left running, for `tally resume`. */
export class ServerLostError extends ServerError {}

class JobRun {
  readonly job: string;
  private readonly o: RunJobOptions;
  private readonly log: Logger;
  /** Reduce partitions of the job (0: the coordinator reduces every partial). */
  private partitions = 0;
  private publisher!: TaskPublisher;
  private folder!: ResultFolder;
  private feed!: FeedPublisher;
  private backups!: BackupTasks;
  /** Map tasks that failed for good and were skipped (`--skip-failed`). */
  private skips!: SkippedTasks;
  private splitDone = false;
  private reducePublished = false;
  private progress!: JobProgress;
  private record!: JobRecord;
  private lease!: JobLease;
  /** The connection to the server as last reported (see watchLink); set when the job starts. */
  private link!: LinkWatch;
  private lastRecordWrite = 0;
  private lastResultAt = Date.now();
  private settled = false;
  /**
   * True once the job ended in a way that leaves it on the server as it is: taken over by
   * another coordinator, or stopped by a server that is gone or failing (then resumable).
   */
  private leftAsIs = false;
  private resolveDone!: () => void;
  private rejectDone!: (error: Error) => void;
  readonly done: Promise<void>;

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
    this.skips = new SkippedTasks(this.job, skipLimitFor(kind, options));
    this.partitions = kind.partitioned?.partitions(options) ?? 0;
    const now = Date.now();
    this.progress = {
      job: this.job,
      tasksDone: 0,
      tasksTotal: plan.totalTasks === undefined ? null : plan.totalTasks + this.partitions,
      weightDone: 0,
      weightTotal: plan.totalWeight ?? null,
      unit: plan.unit,
      startedAt: now,
      waitingForWorkers: false,
      phase: 'map',
      partsDone: 0,
      partitions: this.partitions,
    };
    // A resumed job keeps its record's arguments as they are (inline or stored beside the results).
    const { args, argsObject, argsSummary } = this.o.resume?.record ?? (await this.o.store.placeArgs(this.job, options, kind.describe(options)));
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
    this.publisher = new TaskPublisher({
      js: this.o.js,
      job: this.job,
      kind,
      options,
      maxBodyBytes: this.o.maxBodyBytes,
      maxTasksInFlight: this.o.maxTasksInFlight,
      maxBytesInFlight: this.o.maxBytesInFlight,
      partitions: this.partitions,
      standIn: this.o.standIn,
      ended: () => this.settled,
      folded: (id) => this.folder.folded.has(id),
      onSkipped: (weight) => (this.progress.weightDone += weight),
      warn: (key, fields, message) => this.warnOnce(key, fields, message),
      onMessage: (first, count, phase) => this.backups.published(first, count, phase),
      readTask: async (seq) => {
        try {
          return (await this.o.jsm.streams.getMessage(TASK_STREAM, { seq }))?.data ?? null;
        } catch (error) {
          if (isNoMessage(error)) return null;
          throw error;
        }
      },
    });
    this.backups = new BackupTasks({
      settings: this.o.backups ?? DEFAULT_BACKUPS,
      logger: this.log,
      publishCopy: (first) => this.publisher.publishCopy(first),
      queueDrained: async () => ((await this.o.jsm.consumers.info(TASK_STREAM, WORKER_CONSUMER)).num_pending ?? 0) === 0,
      announceSuperseded: (first, count) => {
        try {
          this.o.nc.publish(supersededSubject(this.job), JSON.stringify({ first, count }));
        } catch (error) {
          this.log.debug({ err: describeError(error) }, 'could not announce a superseded task');
        }
      },
      onBackup: (event) => this.feed.backedUpTask(event.first, this.publisher.inputOf(event.first), event.workers, event.ranMs, event.thresholdMs),
    });
    this.folder = new ResultFolder({
      js: this.o.js,
      jsm: this.o.jsm,
      job: this.job,
      kind,
      options,
      partials: this.o.partials,
      logger: this.log,
      replicas: this.o.replicas,
      ended: () => this.settled,
      onMapFolded: (id, from) => {
        const task = this.publisher.release(id);
        this.backups.folded(id, 'map', from.worker, from.ms);
        this.feed.backupsWin(this.backups.won);
        this.feed.mapFolded(id, task?.weight ?? 0, task?.input, from);
        this.onFolded(task?.weight ?? 0);
      },
      onMapTime: (ms, tasks) => this.publisher.noteMapTime(ms, tasks),
      onPart: (id, partition, from) => {
        if (partition >= this.partitions) return;
        const task = this.publisher.release(id);
        this.backups.folded(id, 'reduce', from.worker, from.ms);
        this.feed.backupsWin(this.backups.won);
        this.feed.partFolded(id, partition, task?.input, from);
        this.progress.partsDone = this.folder.parts.size;
        this.onFolded(0);
      },
      onFailure: (error) => this.fail(error),
      onTaskFailed: (failure) => this.skips.taskFailed(this.failingJob(), failure.task, failure.error, failure.first, failure.count),
      inputOf: (id) => this.publisher.inputOf(id),
    });
    this.feed = new FeedPublisher({
      nc: this.o.nc,
      job: this.job,
      kind: kind.name,
      logger: this.log,
      preview: () => kind.preview?.(this.folder.acc, options) ?? null,
      inputOf: (id) => this.publisher.inputOf(id),
      onTaskStarted: (first, _count, worker) => this.backups.started(first, worker),
      onDeliveryFailed: (task) => this.backups.deliveryFailed(task),
    });

    let advisories: Subscription | undefined;
    let cancels: Subscription | undefined;
    const workerWatch = setInterval(() => void this.checkWorkers(), WORKER_CHECK_MS);
    const serverWatch = setInterval(() => void this.checkServer(), SERVER_PROBE_MS);
    const stragglerWatch = setInterval(() => {
      // Not while the server is away: the server watch decides about that, and says it once.
      if (this.settled || this.link.disconnectedSince !== null) return;
      this.backups.check().catch((e) => this.log.debug({ err: describeError(e) }, 'could not back up a straggling task'));
    }, BACKUP_CHECK_MS);
    // The session's watch when it has one; a job run on a bare connection (tests) follows its own.
    const ownLink = this.o.link ? undefined : watchLink(this.o.nc);
    this.link = this.o.link ?? ownLink!;
    const onAbort = () => this.fail(new InterruptedError(`job ${this.job} cancelled`));
    this.o.signal?.addEventListener('abort', onAbort, { once: true });
    try {
      await this.folder.start();
      this.feed.start();
      advisories = this.watchPoisonTasks();
      cancels = this.hearCancel();
      if (this.o.signal?.aborted) onAbort();
      if (this.o.resume) await this.folder.catchUp();
      await Promise.race([this.publishMap(plan), this.done]);
      await this.done;
      this.o.onFolded?.();
      // Nothing of the job is written once another coordinator holds it.
      await this.lease.check(this.job);
      // Workers stop taking this job's tasks now; the grace before the purge runs meanwhile.
      this.announceEnd();
      const summary = { job: this.job, tasks: this.publisher.published };
      const kindResult =
        this.partitions > 0
          ? await kind.partitioned!.finalize(this.folder.acc, Array.from({ length: this.partitions }, (_, p) => this.folder.parts.get(p)!), summary, options)
          : await kind.finalize(this.folder.acc, summary, options);
      const result = this.skips.annotate(kindResult);
      // A leader election (a node lost) can refuse these writes for a few seconds: retry.
      await withRetry(() => this.o.store.putResult(this.job, result), { deadlineMs: 30_000, onRetry: (e) => this.log.warn({ err: describeError(e) }, 'storing the result failed; retrying') });
      await this.finish('done', null);
      return result;
    } catch (caught) {
      let error = caught;
      // Interrupted while the server is gone (the client knows, or the server does not answer
      // at once): each call below would only wait out its timeouts (~55 s), where the user
      // asked to stop now. The job is left as it is, `running` and resumable, and the line says so.
      const interruptedOffline = error instanceof InterruptedError && (this.link.disconnectedSince !== null || !(await serverAnswers(this.o.nc, INTERRUPT_PROBE_MS)));
      if (interruptedOffline) {
        error = new InterruptedError(`job ${this.job} interrupted while the server is unreachable; its record still says running: once the server is back, \`tally resume ${this.job}\` finishes it`);
      }
      this.leftAsIs = error instanceof JobTakenOverError || error instanceof ServerLostError || isTransient(error) || interruptedOffline;
      if (!this.leftAsIs) {
        const status: JobStatus = error instanceof InterruptedError ? 'cancelled' : 'failed';
        await this.withdrawTasks();
        await this.finish(status, describeError(error)).catch((e) => this.log.error({ err: describeError(e) }, 'could not store the job record'));
      }
      if (this.leftAsIs && !(error instanceof JobTakenOverError) && !(error instanceof ServerLostError) && !interruptedOffline) {
        throw new ServerError(`nats://${this.o.nc.getServer()}`, `${describeError(error)}; once the server answers again, \`tally resume ${this.job}\` finishes the job`, { cause: error });
      }
      throw error;
    } finally {
      this.o.signal?.removeEventListener('abort', onAbort);
      clearInterval(workerWatch);
      clearInterval(serverWatch);
      clearInterval(stragglerWatch);
      ownLink?.stop();
      advisories?.unsubscribe();
      cancels?.unsubscribe();
      // A job that another coordinator took over, or that is left for `tally resume` (the
      // server is gone or failing), keeps its tasks and results on the server, untouched.
      if (!this.leftAsIs) {
        const cleanup = this.stopAndCleanUp();
        if (this.o.deferCleanup) this.o.deferCleanup(cleanup);
        else await cleanup;
      }
    }
  }

  /** The map phase's publishing; the job completes once every result is folded. */
  private async publishMap(plan: Plan): Promise<void> {
    if (!(await this.publisher.publishMap(plan))) return;
    this.splitDone = true;
    this.backups.phasePublished('map');
    this.progress.tasksTotal = this.publisher.published + this.partitions;
    // A fraction of a job whose size was not known up front is judged now.
    const over = this.skips.overLimit(this.publisher.published);
    if (over) return this.fail(over);
    this.report(true);
    this.checkComplete();
  }

  /** A task's result is folded (`weight`: what it covered). */
  private onFolded(weight: number): void {
    this.progress.tasksDone++;
    this.progress.weightDone += weight;
    this.lastResultAt = Date.now();
    this.progress.waitingForWorkers = false;
    this.report(false);
    this.checkComplete();
  }

  /**
   * Once every map task is in: a partitioned job's reduce tasks go out (once); the job is done
   * when every partition's part is in too.
   */
  private checkComplete(): void {
    if (!this.splitDone || this.folder.folded.size !== this.publisher.published || this.settled) return;
    if (this.folder.parts.size < this.partitions) {
      if (!this.reducePublished) {
        this.reducePublished = true;
        this.progress.phase = 'reduce';
        this.report(true);
        this.publisher
          .publishReduce((p) => this.folder.parts.has(p), (p) => this.o.kind.partitioned!.reduceSpec(this.o.options, p, this.folder.acc), this.skips.ids())
          .then(() => this.backups.phasePublished('reduce'))
          .catch((error: unknown) => this.fail(error instanceof Error ? error : new Error(String(error))));
      }
      return;
    }
    this.settled = true;
    this.publisher.wake();
    this.resolveDone();
  }

  private fail(error: Error): void {
    if (this.settled) return;
    if (error instanceof JobFailedError) this.feed?.taskFailed(error.task, error.input ?? '', error.reason);
    this.settled = true;
    this.publisher?.wake();
    this.rejectDone(error);
  }

  /**
   * A request to cancel the job (`tally dashboard` sends one): answered, then the job is
   * cancelled as Ctrl-C would cancel it. A role that may not subscribe here just never hears one.
   */
  private hearCancel(): Subscription {
    return this.o.nc.subscribe(jobCancelSubject(this.job), {
      callback: (error, msg) => {
        if (error) return;
        msg.respond(JSON.stringify({ cancelling: !this.settled }));
        this.log.info({ job: this.job }, 'cancel requested');
        this.fail(new InterruptedError(`job ${this.job} cancelled from the dashboard`));
      },
    });
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
            await this.publisher.resendSingly(where.task, where.count);
            return;
          }
          this.skips.taskFailed(this.failingJob(), where.task, `task ${where.task} was delivered ${advisory.deliveries} times and never completed`);
        })().catch((e) => this.log.warn({ err: describeError(e) }, 'could not handle a max-deliveries advisory'));
      },
    });
  }

  /** The job as skipped-tasks.ts sees it when one of its tasks fails for good. */
  private failingJob(): FailingJob {
    return {
      inputOf: (id) => this.publisher.inputOf(id),
      mapTasks: () => (this.progress.tasksTotal === null ? null : this.progress.tasksTotal - this.partitions),
      isFolded: (id) => this.folder.has(id),
      isReduceTask: (id) => this.reducePublished && id >= this.publisher.published,
      resendSingly: (first, count) => this.publisher.resendSingly(first, count),
      skip: (id, input, error) => {
        this.folder.skip(id, this.publisher.inFlight.get(id)?.task?.spec ?? this.publisher.inFlight.get(id)?.spec);
        const task = this.publisher.release(id);
        this.backups.folded(id, 'map', '', null);
        this.log.warn({ task: id, input, err: error }, 'a task failed for good; skipped (--skip-failed)');
        this.feed.taskSkipped(id, input, error);
        this.onFolded(task?.weight ?? 0);
      },
      fail: (error) => this.fail(error),
    };
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
    if (this.settled || Date.now() - this.lastResultAt < WORKER_CHECK_MS || this.publisher.inFlight.size === 0) return;
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

  /** A record write put off by the interval, so that the latest progress is stored even when no more comes. */
  private trailingWrite: NodeJS.Timeout | null = null;

  private report(force: boolean): void {
    this.o.onProgress?.({ ...this.progress });
    this.feed.update({ ...this.progress });
    const now = Date.now();
    if (!force && now - this.lastRecordWrite < RECORD_INTERVAL_MS) {
      // Without it, the record (what `tally jobs` and the dashboard show) would keep older
      // progress until the next fold, which a stalled job may not have for a long time.
      this.trailingWrite ??= setTimeout(() => {
        this.trailingWrite = null;
        if (!this.settled) this.report(true);
      }, RECORD_INTERVAL_MS - (now - this.lastRecordWrite));
      this.trailingWrite.unref();
      return;
    }
    if (this.trailingWrite) {
      clearTimeout(this.trailingWrite);
      this.trailingWrite = null;
    }
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
    if (this.trailingWrite) clearTimeout(this.trailingWrite);
    this.trailingWrite = null;
    const now = Date.now();
    this.record.status = status;
    this.record.error = error;
    if (this.skips?.list.length) this.record.skipped = this.skips.list.length;
    const { incidents, omitted } = this.feed?.incidents() ?? { incidents: [], omitted: 0 };
    if (incidents.length > 0) this.record.incidents = incidents;
    if (omitted > 0) this.record.incidentsOmitted = omitted;
    this.record.finished = new Date(now).toISOString();
    this.record.elapsedMs = now - this.progress.startedAt;
    this.record.progress = {
      tasksDone: this.progress.tasksDone,
      tasksTotal: this.splitDone ? this.publisher.published + this.partitions : this.progress.tasksTotal,
      weightDone: this.progress.weightDone,
      weightTotal: this.progress.weightTotal,
    };
    this.o.onProgress?.({ ...this.progress });
    this.feed?.update({ ...this.progress });
    if (status !== 'running') this.feed?.close(status);
    await withRetry(() => this.lease.write(this.record), { deadlineMs: 30_000, onRetry: (e) => this.log.warn({ err: describeError(e) }, 'storing the job record failed; retrying') });
  }

  /** Removes the job's queued tasks so workers move on. */
  private async withdrawTasks(): Promise<void> {
    await purgeSubjects(this.o.jsm, TASK_STREAM, jobTaskSubjects(this.job), this.o.nc.info?.version).catch((e) =>
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

  /** Stops reading results, then cleans up (see cleanUp). */
  private async stopAndCleanUp(): Promise<void> {
    await this.folder?.stop();
    await this.cleanUp();
  }

  /** Leaves nothing of the job on the server but its record and result (and its parts, when done). */
  private async cleanUp(): Promise<void> {
    await this.folder?.drained();
    // A straggler's copy (or the straggler) may still wait in the queue or in a frozen worker's hands.
    if (this.record.status === 'done' && this.publisher?.copiesSent) await this.withdrawTasks();
    // Workers still holding a task of this job drop its result instead of publishing it after
    // the purge below; the pause lets the announcement reach them first. When no worker holds
    // or awaits any task, there is nobody to tell.
    try {
      this.announceEnd();
      await this.o.nc.flush();
      const left = ENDED_GRACE_MS - (performance.now() - this.endAnnouncedAt);
      if (left > 0 && !(await workersIdle(this.o.jsm))) await new Promise((resolve) => setTimeout(resolve, left));
    } catch (error) {
      this.log.debug({ err: describeError(error) }, 'could not announce the end of the job');
    }
    // The three are independent: at once (on an old server each purge is many round trips).
    const results = purgeSubjects(this.o.jsm, RESULT_STREAM, jobResultSubjects(this.job), this.o.nc.info?.version).catch((e) =>
      this.log.warn({ err: describeError(e) }, 'could not purge results'),
    );
    const shuffle = async (): Promise<void> => {
      if (this.partitions === 0) return;
      await purgeSubjects(this.o.jsm, SHUFFLE_STREAM, jobShuffleSubjects(this.job), this.o.nc.info?.version).catch((e) =>
        this.log.warn({ err: describeError(e) }, 'could not purge the map outputs'),
      );
      // A job that did not finish has no result to read its parts through.
      if (this.record.status !== 'done') await this.o.store.deleteParts(Array.from({ length: this.partitions }, (_, p) => partObjectName(this.job, p)));
    };
    const partials = deletePartialsOf(this.o.partials, this.job).catch((error: unknown) =>
      this.log.warn({ bucket: PARTIALS_BUCKET, err: describeError(error) }, 'could not sweep partial objects'),
    );
    await Promise.all([results, shuffle(), partials]);
  }
}

/** Runs a job to completion and returns its result (also stored under its id). */
export async function runJob(options: RunJobOptions): Promise<{ job: string; result: Json }> {
  const run = new JobRun(options);
  const result = await run.run();
  return { job: run.job, result };
}

/**
 * True when the workers' consumer has no task queued and none delivered and unacked, of any
 * job: then no result can be published after this. A worker stores a task's result before it
 * acks the task, and a task counts as pending an ack from its delivery on.
 */
async function workersIdle(jsm: JetStreamManager, queued = true): Promise<boolean> {
  try {
    const info = await jsm.consumers.info(TASK_STREAM, WORKER_CONSUMER);
    return info.num_ack_pending === 0 && (!queued || info.num_pending === 0);
  } catch {
    return false; // not known: wait
  }
}

/** How long `tally jobs --delete` waits for workers to put down the tasks they hold. */
const DISCARD_SETTLE_MS = 2_000;

/**
 * Removes what a job whose coordinator died left on the server (`tally jobs --delete` of such a
 * job): workers are told it ended, so they drop its tasks in hand; its queued tasks, partial
 * results, map outputs, result consumer and partial objects go. Its record, result and parts
 * are the job store's.
 */
export async function discardAbandonedJob(nc: NatsConnection, jsm: JetStreamManager, job: string): Promise<void> {
  nc.publish(jobEndedSubject(job));
  await nc.flush();
  const version = nc.info?.version;
  await purgeSubjects(jsm, TASK_STREAM, jobTaskSubjects(job), version);
  await new Promise((resolve) => setTimeout(resolve, ENDED_GRACE_MS));
  await purgeSubjects(jsm, RESULT_STREAM, jobResultSubjects(job), version);
  // A worker that held one of its tasks and had not heard of the end yet (a loaded machine can
  // take longer than the grace) stores its result after that purge: once no task is in any
  // worker's hands (or after a while), its results are looked for again.
  for (const settle = performance.now() + DISCARD_SETTLE_MS; performance.now() < settle && !(await workersIdle(jsm, false)); ) {
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  await purgeSubjects(jsm, RESULT_STREAM, jobResultSubjects(job), version);
  await purgeSubjects(jsm, SHUFFLE_STREAM, jobShuffleSubjects(job), version).catch(() => undefined);
  // The consumer through which its coordinator read results (absent if it never got that far).
  await jsm.consumers.delete(RESULT_STREAM, resultConsumerName(job)).catch(() => false);
  const { Objm } = objLib();
  const partials = await new Objm(nc).open(PARTIALS_BUCKET).catch(() => null);
  if (partials) await deletePartialsOf(withQuickList(partials, jsm, PARTIALS_BUCKET), job);
}

/** Deletes the partial objects of `job` left in the partials bucket (every name starts "JOB."). */
async function deletePartialsOf(partials: ObjectStore, job: string): Promise<void> {
  for (const info of await partials.list()) {
    if (info.name.startsWith(`${job}.`)) await partials.delete(info.name).catch(() => undefined);
  }
}
