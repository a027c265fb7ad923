/**
 * The live progress of a running job, as its coordinator publishes it (coordinator/job-feed.ts)
 * and the dashboard shows it: a whole snapshot each time (a page that opens late needs no
 * history), at most about once a second, and once more when the job ends. Workers add what only
 * they see through {@link TaskReport}s. Subjects: shared/subjects.ts (jobFeedSubject).
 */
import type { Json } from './json.js';

/** One worker process's share of a job: the tasks whose results were folded from it. */
export interface WorkerShare {
  /** "host:pid", as the worker names itself in its results. */
  worker: string;
  /** Map tasks folded from it (reduce tasks are in `reducers`). */
  tasks: number;
  /** Weight of those tasks (bytes for the text kinds). */
  weight: number;
}

/** A task that needed more than one delivery, or a delivery of it that failed. */
export interface TaskEvent {
  task: number;
  /** What the task covers ("books/a.txt bytes 0-1048575", "range 1..1000"); "" when unknown. */
  input: string;
  worker: string;
  /** Which delivery (1 = the first). */
  deliveries: number;
  /** Why the delivery failed; absent for a redelivered task that then succeeded. */
  error?: string;
  /** When the coordinator heard of it (ms since the epoch). */
  at: number;
}

/** A reduce task's progress, as its reducer reports it. */
export interface ReducerProgress {
  partition: number;
  worker: string;
  /** Map tasks' shares folded, of `total`. */
  folded: number;
  total: number;
  stage: 'reading' | 'sorting' | 'storing' | 'done';
}

/** Most task events a feed carries of each kind (the newest); `count` says how many there were. */
export const FEED_EVENTS = 50;

export interface JobFeed {
  v: 1;
  job: string;
  kind: string;
  /** When it was published (ms since the epoch). */
  at: number;
  status: 'running' | 'done' | 'failed' | 'cancelled';
  phase: 'map' | 'reduce';
  tasksDone: number;
  tasksTotal: number | null;
  weightDone: number;
  weightTotal: number | null;
  partsDone: number;
  partitions: number;
  workers: WorkerShare[];
  /** Tasks whose result came from a second or later delivery. */
  redelivered: { count: number; recent: TaskEvent[] };
  /** Deliveries that failed and were handed back for another try (reported by the workers). */
  retried: { count: number; recent: TaskEvent[] };
  /** The task that failed the job, when one did. */
  failed: TaskEvent | null;
  /**
   * Stragglers backed up (coordinator/backup-tasks.ts): each event's `worker` is the straggling
   * worker(s), `error` says how long it had run; `won`: backups whose result was the one folded.
   */
  backedUp: { count: number; won: number; recent: TaskEvent[] };
  /** Tasks that failed on every delivery and were left out of the result (`--skip-failed`). */
  skipped: { count: number; recent: TaskEvent[] };
  reducers: ReducerProgress[];
  /** What the kind's folded results say so far (JobKind.preview), or null. */
  preview: Json | null;
}

/** What happened to one task that did not simply succeed on its first delivery. */
export type IncidentOutcome = 'retried' | 'redelivered' | 'backed-up' | 'skipped' | 'failed';

/**
 * A task's dead-letter record: kept with the job's record (`tally jobs JOB` shows it) for the
 * job's retention time. Events are in the order the coordinator heard of them.
 */
export interface TaskIncident {
  task: number;
  input: string;
  outcomes: IncidentOutcome[];
  events: Array<{
    at: string;
    /** 'delivery failed', 'done', 'backed up', 'skipped', 'failed the job'. */
    what: string;
    worker?: string;
    /** Which delivery of the task (1 = the first), when known. */
    delivery?: number;
    error?: string;
  }>;
}

/** Tasks a job's record keeps incidents for, and events per task (the rest are counted, not kept). */
export const MAX_INCIDENT_TASKS = 100;
export const MAX_INCIDENT_EVENTS = 8;
export const MAX_INCIDENT_ERROR = 300;

/** What a worker tells a job's coordinator (on taskReportSubject). */
export type TaskReport =
  | { type: 'retry'; task: number; worker: string; deliveries: number; error: string }
  /** A worker started the task message whose first task is `task` (`count` tasks). */
  | { type: 'start'; task: number; count: number; worker: string; deliveries: number }
  | ({ type: 'reduce' } & ReducerProgress);

/** A task report from the wire, or null when it is not one. */
export function parseTaskReport(data: unknown): TaskReport | null {
  if (typeof data !== 'object' || data === null) return null;
  const r = data as Record<string, unknown>;
  const count = (v: unknown) => Number.isSafeInteger(v) && (v as number) >= 0;
  if (typeof r.worker !== 'string' || r.worker.length > 300) return null;
  if (r.type === 'retry' && count(r.task) && count(r.deliveries) && typeof r.error === 'string') {
    return { type: 'retry', task: r.task as number, worker: r.worker, deliveries: r.deliveries as number, error: r.error.slice(0, 1000) };
  }
  if (r.type === 'start' && count(r.task) && count(r.count) && (r.count as number) >= 1 && count(r.deliveries)) {
    return { type: 'start', task: r.task as number, count: r.count as number, worker: r.worker, deliveries: r.deliveries as number };
  }
  if (r.type === 'reduce' && count(r.partition) && count(r.folded) && count(r.total) && ['reading', 'sorting', 'storing', 'done'].includes(r.stage as string)) {
    return { type: 'reduce', partition: r.partition as number, worker: r.worker, folded: r.folded as number, total: r.total as number, stage: r.stage as ReducerProgress['stage'] };
  }
  return null;
}
