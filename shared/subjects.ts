/**
 * Every name both sides of tally must agree on: streams, subjects, consumers, buckets and the
 * service name. Job ids end up inside subjects, so they are validated here and nowhere else.
 */
import { UsageError } from './errors.js';

/** Work-queue stream holding the tasks of every job. */
export const TASK_STREAM = 'TALLY_TASKS';
/** Limits stream holding each task's partial result, one subject per task. */
export const RESULT_STREAM = 'TALLY_RESULTS';
/**
 * Limits stream holding the map outputs of partitioned jobs (count), one subject per task
 * message and partition, kept until the job ends: what a reducer reads, and reads again after
 * a reducer died.
 */
export const SHUFFLE_STREAM = 'TALLY_SHUFFLE';
/** The one durable pull consumer that every worker process shares. */
export const WORKER_CONSUMER = 'tally-workers';
/** KV bucket: one record per job. */
export const JOBS_BUCKET = 'tally-jobs';
/** Object Store bucket: the files `tally put` uploads unless --bucket names another (the only one the shipped permissions allow). */
export const DEFAULT_INPUT_BUCKET = 'tally-inputs';
/** Object Store bucket: the final result of each job. */
export const RESULTS_BUCKET = 'tally-results';
/** Object Store bucket: partial results too large for one message; deleted when the job ends. */
export const PARTIALS_BUCKET = 'tally-partials';
/** Name under which worker processes register with the NATS services protocol. */
export const WORKER_SERVICE = 'tally-worker';
/** Subjects on which a coordinator announces that a job ended (workers drop its leftover tasks). */
const JOB_ENDED_PREFIX = 'tally.event.ended';
export const JOB_ENDED_SUBJECTS = `${JOB_ENDED_PREFIX}.*`;

export function jobEndedSubject(job: string): string {
  return `${JOB_ENDED_PREFIX}.${job}`;
}

/**
 * Subjects on which a coordinator announces that a task message of a job has its result while
 * another copy of it may still run (a backup task, coordinator/backup-tasks.ts): the payload is
 * `{"first":N,"count":C}`; a worker running that message drops it.
 */
const SUPERSEDED_PREFIX = 'tally.event.superseded';
export const SUPERSEDED_SUBJECTS = `${SUPERSEDED_PREFIX}.*`;

export function supersededSubject(job: string): string {
  return `${SUPERSEDED_PREFIX}.${job}`;
}

/**
 * Subject on which a running job's coordinator hears a request to cancel it (the dashboard
 * sends one); it answers and cancels as Ctrl-C would. Who may publish here may cancel jobs.
 */
const JOB_CANCEL_PREFIX = 'tally.cancel';
export const JOB_CANCEL_SUBJECTS = `${JOB_CANCEL_PREFIX}.*`;

export function jobCancelSubject(job: string): string {
  return `${JOB_CANCEL_PREFIX}.${job}`;
}

/**
 * A running job's live progress (shared/job-feed.ts): its coordinator publishes the job's feed on
 * `tally.progress.JOB` at a bounded rate (the dashboard follows `tally.progress.*`); workers
 * report on `tally.progress.JOB.task` what only they see (a delivery that failed, a reducer's
 * progress), which the coordinator folds into the feed.
 */
const FEED_PREFIX = 'tally.progress';
export const JOB_FEED_SUBJECTS = `${FEED_PREFIX}.*`;

export function jobFeedSubject(job: string): string {
  return `${FEED_PREFIX}.${job}`;
}

export function taskReportSubject(job: string): string {
  return `${FEED_PREFIX}.${job}.task`;
}

const TASK_PREFIX = 'tally.task';
const RESULT_PREFIX = 'tally.result';
const SHUFFLE_PREFIX = 'tally.shuffle';

/** The stream behind a KV bucket (the client's convention). */
export function kvStreamName(bucket: string): string {
  return `KV_${bucket}`;
}

/** The stream behind an Object Store bucket (the client's convention). */
export function objectStreamName(bucket: string): string {
  return `OBJ_${bucket}`;
}

/** The subjects of the keys of a KV bucket. */
export function kvSubjects(bucket: string): string {
  return `$KV.${bucket}.>`;
}

/** The subjects of an Object Store bucket: chunks (`$O.<bucket>.C.…`) and metadata (`.M.…`). */
export function objectSubjects(bucket: string): string {
  return `$O.${bucket}.>`;
}

/** The subjects of the chunks of an Object Store bucket's objects. */
export function objectChunkSubjects(bucket: string): string {
  return `$O.${bucket}.C.>`;
}

export const TASK_SUBJECTS = `${TASK_PREFIX}.>`;
export const RESULT_SUBJECTS = `${RESULT_PREFIX}.>`;
export const SHUFFLE_SUBJECTS = `${SHUFFLE_PREFIX}.>`;

const JOB_ID = /^[a-z0-9][a-z0-9-]{2,62}$/;

/** True when `id` is safe to put in a subject token: no dots, wildcards or spaces. */
export function isJobId(id: string): boolean {
  return JOB_ID.test(id);
}

/** Throws a UsageError naming the id when it is not a valid job id. */
export function assertJobId(id: string): string {
  if (!isJobId(id)) throw new UsageError(`invalid job id '${id}': expected lowercase letters, digits and '-'`);
  return id;
}

/** A new job id: sortable by creation time, unique across machines. */
export function newJobId(now = Date.now()): string {
  const random = Math.floor(Math.random() * 36 ** 6).toString(36).padStart(6, '0');
  return `${now.toString(36)}-${random}`;
}

/**
 * Most tasks one message may carry. A message carries one task (`<task>` in its subject) or a
 * batch of consecutive task ids (`<first>-<last>`); the coordinator batches tiny tasks only.
 */
export const MAX_BATCH_TASKS = 256;

/**
 * The last subject token (and message-id suffix) of a message carrying tasks `first` ..
 * `first + count - 1`: the task id alone for one task, `<first>-<last>` for a batch. Two
 * batches that differ in extent never share a subject or a message id.
 */
export function taskLabel(first: number, count = 1): string {
  return count === 1 ? String(first) : `${first}-${first + count - 1}`;
}

export function taskSubject(job: string, task: number, count = 1): string {
  return `${TASK_PREFIX}.${job}.${taskLabel(task, count)}`;
}

export function jobTaskSubjects(job: string): string {
  return `${TASK_PREFIX}.${job}.>`;
}

export function resultSubject(job: string, task: number, count = 1): string {
  return `${RESULT_PREFIX}.${job}.${taskLabel(task, count)}`;
}

/** Message id of a task message and of its result: the server drops a repeat within its window. */
export function messageId(job: string, task: number, count = 1): string {
  return `${job}.${taskLabel(task, count)}`;
}

export function jobResultSubjects(job: string): string {
  return `${RESULT_PREFIX}.${job}.>`;
}

/** Where the map output of tasks `task` .. `task + count - 1` for one partition is stored. */
export function shuffleSubject(job: string, partition: number, task: number, count = 1): string {
  return `${SHUFFLE_PREFIX}.${job}.${partition}.${taskLabel(task, count)}`;
}

/** Every map output of one partition of a job. */
export function partitionShuffleSubjects(job: string, partition: number): string {
  return `${SHUFFLE_PREFIX}.${job}.${partition}.>`;
}

/** Every map output of a job. */
export function jobShuffleSubjects(job: string): string {
  return `${SHUFFLE_PREFIX}.${job}.>`;
}

/** Message id of one partition's map output of a task message. */
export function shuffleMessageId(job: string, partition: number, task: number, count = 1): string {
  return `${job}.${taskLabel(task, count)}.p${partition}`;
}

/** Object name of a partition's map output too big for a message (partials bucket). */
export function shuffleObjectName(job: string, partition: number, task: number, count = 1): string {
  return `${job}.${taskLabel(task, count)}.p${partition}`;
}

/** Name of the consumer through which the reducer of a job's partition reads its map outputs. */
export function reduceConsumerName(job: string, partition: number): string {
  return `tally-reduce-${job}-${partition}`;
}

/** Object name of a reducer's sorted part of a job's result (results bucket). */
export function partObjectName(job: string, partition: number): string {
  return `${job}.part-${partition}`;
}

/** Most reduce partitions a job may have. */
export const MAX_PARTITIONS = 256;

const LABEL = /^(0|[1-9]\d{0,15})(?:-(0|[1-9]\d{0,15}))?$/;

/**
 * Parses `tally.task.<job>.<task>` or `tally.task.<job>.<first>-<last>` (or the result
 * subjects); undefined when the subject is not one of ours. `count` is 1 for a single task.
 */
export function parseTaskSubject(subject: string): { job: string; task: number; count: number } | undefined {
  const parts = subject.split('.');
  if (parts.length !== 4 || parts[0] !== 'tally') return undefined;
  const job = parts[2]!;
  const label = LABEL.exec(parts[3]!);
  if (!isJobId(job) || !label) return undefined;
  const task = Number(label[1]);
  if (!Number.isSafeInteger(task)) return undefined;
  if (label[2] === undefined) return { job, task, count: 1 };
  const last = Number(label[2]);
  const count = last - task + 1;
  if (!Number.isSafeInteger(last) || count < 2 || count > MAX_BATCH_TASKS) return undefined;
  return { job, task, count };
}

/** Name of the consumer through which a job's coordinator reads its results. */
export function resultConsumerName(job: string): string {
  return `tally-job-${job}`;
}

/** Object name of a partial result (of one task, or of a batch) kept in the partials bucket. */
export function partialObjectName(job: string, task: number, count = 1): string {
  return `${job}.${taskLabel(task, count)}`;
}
