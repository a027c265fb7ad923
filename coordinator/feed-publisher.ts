/**
 * Publishes one running job's live progress (shared/job-feed.ts) on `tally.progress.JOB`: what
 * the coordinator folds (each worker's share, redelivered tasks, the kind's preview of its
 * result) and what workers report on `tally.progress.JOB.task` (failed deliveries, reducers'
 * progress). At most one message per interval however fast results come, and one when the job
 * ends; nothing at all while nothing changed. Core NATS, fire and forget: nobody listening costs
 * the server nothing, and a role without the permission only loses the feed, never the job.
 */
import type { NatsConnection, Subscription } from '@nats-io/transport-node';
import {
  FEED_EVENTS,
  MAX_INCIDENT_ERROR,
  MAX_INCIDENT_EVENTS,
  MAX_INCIDENT_TASKS,
  parseTaskReport,
  type IncidentOutcome,
  type JobFeed,
  type ReducerProgress,
  type TaskEvent,
  type TaskIncident,
  type WorkerShare,
} from '../shared/job-feed.js';
import type { Json } from '../shared/json.js';
import { describeError } from '../shared/errors.js';
import { jobFeedSubject, taskReportSubject } from '../shared/subjects.js';
import type { Logger } from '../shared/log.js';
import type { JobProgress } from './job-runner.js';

/** Default least time between two feed messages of a job. */
export const FEED_INTERVAL_MS = 1000;

export interface FeedPublisherOptions {
  nc: NatsConnection;
  job: string;
  kind: string;
  logger: Logger;
  /** The kind's preview of what was folded so far (asked for only when a message goes out). */
  preview: () => Json | null;
  /** What a task covers, for the events. */
  inputOf: (task: number) => string | undefined;
  /** Least time between two messages. Default FEED_INTERVAL_MS. */
  intervalMs?: number;
  /** A worker reported starting a task message (for backup tasks). */
  onTaskStarted?: (first: number, count: number, worker: string, deliveries: number) => void;
  /** A worker reported that a delivery of a task failed (it will be retried). */
  onDeliveryFailed?: (task: number) => void;
}

/** Where a folded result came from (its result header). */
export interface ResultSource {
  worker: string;
  /** The delivery of the task message that produced it (1 = the first). */
  deliveries: number;
  /** The worker's time for this task (a batch's time shared among its tasks). */
  ms: number;
}

export class FeedPublisher {
  private readonly workers = new Map<string, WorkerShare>();
  private readonly redelivered: TaskEvent[] = [];
  private redeliveredCount = 0;
  private readonly retried: TaskEvent[] = [];
  private retriedCount = 0;
  private failed: TaskEvent | null = null;
  private readonly backedUp: TaskEvent[] = [];
  private readonly skipped: TaskEvent[] = [];
  /** Dead-letter records by task (MAX_INCIDENT_TASKS at most), and how many tasks were left out. */
  private readonly incidentsByTask = new Map<number, TaskIncident>();
  private incidentsOmitted = 0;
  private skippedCount = 0;
  private backedUpCount = 0;
  private backupsWon = 0;
  private readonly reducers = new Map<number, ReducerProgress>();
  private progress: JobProgress | null = null;
  private reports: Subscription | null = null;
  private timer: NodeJS.Timeout | null = null;
  private lastSent = 0;
  private changed = false;
  private closed = false;
  private readonly intervalMs: number;

  constructor(private readonly o: FeedPublisherOptions) {
    this.intervalMs = o.intervalMs ?? FEED_INTERVAL_MS;
  }

  /** Starts hearing the workers' reports of the job. */
  start(): void {
    try {
      this.reports = this.o.nc.subscribe(taskReportSubject(this.o.job), {
        callback: (error, message) => {
          if (error || this.closed) return;
          let report;
          try {
            report = parseTaskReport(message.json());
          } catch {
            report = null;
          }
          if (!report) return;
          if (report.type === 'start') {
            this.o.onTaskStarted?.(report.task, report.count, report.worker, report.deliveries);
            return;
          }
          if (report.type === 'retry') {
            this.o.onDeliveryFailed?.(report.task);
            this.retriedCount++;
            const input = this.o.inputOf(report.task) ?? '';
            push(this.retried, { task: report.task, input, worker: report.worker, deliveries: report.deliveries, error: report.error, at: Date.now() });
            this.incident(report.task, input, 'retried', { what: 'delivery failed', worker: report.worker, delivery: report.deliveries, error: report.error });
          } else {
            const { type: _type, ...reducer } = report;
            const known = this.reducers.get(reducer.partition);
            // A reducer that is done stays done; a redelivered reduce task starts again.
            if (known?.stage !== 'done') this.reducers.set(reducer.partition, reducer);
          }
          this.touch();
        },
      });
    } catch (error) {
      this.o.logger.debug({ err: describeError(error) }, 'cannot hear task reports');
    }
  }

  /** A map task's result was folded. */
  mapFolded(task: number, weight: number, input: string | undefined, from: ResultSource): void {
    const share = this.workers.get(from.worker) ?? { worker: from.worker, tasks: 0, weight: 0 };
    share.tasks++;
    share.weight += weight;
    this.workers.set(from.worker, share);
    if (from.deliveries > 1) this.noteRedelivered(task, input, from);
    this.touch();
  }

  /** A reduce task's result was folded: its partition is done. */
  partFolded(task: number, partition: number, input: string | undefined, from: ResultSource): void {
    const known = this.reducers.get(partition);
    this.reducers.set(partition, { partition, worker: from.worker, folded: known?.total ?? 0, total: known?.total ?? 0, stage: 'done' });
    if (from.deliveries > 1) this.noteRedelivered(task, input, from);
    this.touch();
  }

  /** A straggler was backed up (`won`: how many backups so far produced the folded result). */
  backedUpTask(first: number, input: string | undefined, workers: string[], ranMs: number, thresholdMs: number): void {
    this.backedUpCount++;
    const why = `ran ${(ranMs / 1000).toFixed(1)} s (threshold ${(thresholdMs / 1000).toFixed(1)} s)`;
    push(this.backedUp, { task: first, input: input ?? '', worker: workers.join(', '), deliveries: 0, error: why, at: Date.now() });
    this.incident(first, input ?? '', 'backed-up', { what: 'backed up', ...(workers.length > 0 ? { worker: workers.join(', ') } : {}), error: why });
    this.touch();
  }

  /** How many backups produced the folded result so far. */
  backupsWin(won: number): void {
    if (won === this.backupsWon) return;
    this.backupsWon = won;
    this.touch();
  }

  /** A task failed on every delivery and was left out of the result (--skip-failed). */
  taskSkipped(task: number, input: string, error: string): void {
    this.skippedCount++;
    push(this.skipped, { task, input, worker: '', deliveries: 0, error, at: Date.now() });
    this.incident(task, input, 'skipped', { what: 'skipped', error });
    this.touch();
  }

  /** The task whose failure ended the job. */
  taskFailed(task: number | undefined, input: string, error: string): void {
    this.failed = { task: task ?? -1, input, worker: '', deliveries: 0, error, at: Date.now() };
    if (task !== undefined) this.incident(task, input, 'failed', { what: 'failed the job', error });
    this.touch();
  }

  /** The job's progress changed. */
  update(progress: JobProgress): void {
    this.progress = progress;
    this.touch();
  }

  private noteRedelivered(task: number, input: string | undefined, from: ResultSource): void {
    this.redeliveredCount++;
    push(this.redelivered, { task, input: input ?? '', worker: from.worker, deliveries: from.deliveries, at: Date.now() });
    this.incident(task, input ?? '', 'redelivered', { what: 'done', worker: from.worker, delivery: from.deliveries });
  }

  /** Adds to a task's dead-letter record (bounded: see MAX_INCIDENT_*). */
  private incident(task: number, input: string, outcome: IncidentOutcome, event: Omit<TaskIncident['events'][number], 'at'>): void {
    let record = this.incidentsByTask.get(task);
    if (!record) {
      if (this.incidentsByTask.size >= MAX_INCIDENT_TASKS) {
        this.incidentsOmitted++;
        return;
      }
      record = { task, input, outcomes: [], events: [] };
      this.incidentsByTask.set(task, record);
    }
    if (!record.input && input) record.input = input;
    if (!record.outcomes.includes(outcome)) record.outcomes.push(outcome);
    if (record.events.length < MAX_INCIDENT_EVENTS) {
      const error = event.error === undefined ? undefined : event.error.replace(/\s+/g, ' ').slice(0, MAX_INCIDENT_ERROR);
      record.events.push({ at: new Date().toISOString(), ...event, ...(error !== undefined ? { error } : {}) });
    }
  }

  /** The job's dead-letter records, by task id, and how many tasks had one that was not kept. */
  incidents(): { incidents: TaskIncident[]; omitted: number } {
    return { incidents: [...this.incidentsByTask.values()].sort((a, b) => a.task - b.task), omitted: this.incidentsOmitted };
  }

  /** Something changed: a message goes out now, or when the interval is over. */
  private touch(): void {
    this.changed = true;
    if (this.closed || this.timer) return;
    const wait = this.lastSent + this.intervalMs - Date.now();
    if (wait <= 0) this.send('running');
    else {
      this.timer = setTimeout(() => {
        this.timer = null;
        if (this.changed && !this.closed) this.send('running');
      }, wait);
      this.timer.unref();
    }
  }

  private send(status: JobFeed['status']): void {
    const progress = this.progress;
    if (!progress) return;
    this.changed = false;
    this.lastSent = Date.now();
    let preview: Json | null = null;
    try {
      preview = this.o.preview();
    } catch (error) {
      this.o.logger.debug({ err: describeError(error) }, 'no preview of the job');
    }
    const feed: JobFeed = {
      v: 1,
      job: this.o.job,
      kind: this.o.kind,
      at: this.lastSent,
      status,
      phase: progress.phase,
      tasksDone: progress.tasksDone,
      tasksTotal: progress.tasksTotal,
      weightDone: progress.weightDone,
      weightTotal: progress.weightTotal,
      partsDone: progress.partsDone,
      partitions: progress.partitions,
      workers: [...this.workers.values()].sort((a, b) => b.weight - a.weight || b.tasks - a.tasks),
      redelivered: { count: this.redeliveredCount, recent: [...this.redelivered] },
      retried: { count: this.retriedCount, recent: [...this.retried] },
      failed: this.failed,
      backedUp: { count: this.backedUpCount, won: this.backupsWon, recent: [...this.backedUp] },
      skipped: { count: this.skippedCount, recent: [...this.skipped] },
      reducers: [...this.reducers.values()].sort((a, b) => a.partition - b.partition),
      preview,
    };
    try {
      this.o.nc.publish(jobFeedSubject(this.o.job), JSON.stringify(feed));
    } catch (error) {
      this.o.logger.debug({ err: describeError(error) }, 'could not publish the job feed');
    }
  }

  /** The job ended: its last message (with how it ended), then nothing more. */
  close(status: Exclude<JobFeed['status'], 'running'>): void {
    if (this.closed) return;
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.send(status);
    this.reports?.unsubscribe();
    this.reports = null;
  }
}

/** Keeps the newest FEED_EVENTS events. */
function push(events: TaskEvent[], event: TaskEvent): void {
  events.push(event);
  if (events.length > FEED_EVENTS) events.splice(0, events.length - FEED_EVENTS);
}
