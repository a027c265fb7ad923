/**
 * Backup tasks for stragglers (the MapReduce paper, §3.6): near the end of a phase, a task that
 * runs much longer than the phase's typical task gets a copy, which an idle worker runs. Both
 * copies publish to the same result subject under the same message id, so the server keeps the
 * first result and the fold stays exactly once; the copy that loses is told to stop (workers
 * hear `tally.event.superseded.JOB`), and a frozen one's late result is refused as a duplicate.
 *
 * When: every task message of the phase is published and the queue has drained (the workers'
 * consumer has nothing left to deliver), and a message's latest attempt has run for more than
 * `after` times the median time of the phase's finished tasks (as their workers measured them),
 * and at least `minMs`. Workers
 * report each start on `tally.progress.JOB.task`; a message whose start was never heard of (its
 * worker froze before the report left, or it waits in a worker's prefetch) counts as started
 * when the queue was first seen drained.
 * Bounded: one backup per message at a time, a message is backed up at most twice, and after
 * MAX_LOSING backups in a row that the original won, none more for the job.
 */
import type { Logger } from '../shared/log.js';

/** How a job backs up its stragglers. */
export interface BackupSettings {
  /** False: never (`--no-backup-tasks`). */
  enabled: boolean;
  /** A task is a straggler after this many times the median task time of its phase. */
  after: number;
  /** ... and after at least this many ms (short tasks vary more than their median says). */
  minMs: number;
}

/** Measured defaults (docs/RELIABILITY.md): see the frozen-worker and slow-worker runs there. */
export const DEFAULT_BACKUPS: BackupSettings = { enabled: true, after: 4, minMs: 1000 };

/** Backups in a row that the original beat: then the job stops making them. */
const MAX_LOSING = 3;
/** Backups of one message, at most. */
const MAX_PER_MESSAGE = 2;
/** Finished tasks of a phase needed before its median means anything (fewer when the phase has fewer). */
const MIN_SAMPLES = 3;
/** How often the workers' consumer is asked whether the queue has drained. */
const DRAIN_PROBE_MS = 500;

/** One start of a task message, as its worker reported it. */
interface Attempt {
  worker: string;
  at: number;
  backup: boolean;
}

interface Message {
  first: number;
  count: number;
  phase: 'map' | 'reduce';
  /** Task ids of the message not folded yet. */
  left: number;
  attempts: Attempt[];
  backups: number;
  /** The time the newest backup was published (a new one waits for it to start and run). */
  backupAt: number;
  /** A delivery failed and the server holds it back for its retry: not a straggler until it starts again. */
  retrying: boolean;
}

/** What became of a backup, for the feed and the job's record. */
export interface BackupEvent {
  first: number;
  count: number;
  /** The worker(s) of the attempt(s) it backs up. */
  workers: string[];
  /** How long the straggler had run when the copy was made. */
  ranMs: number;
  /** The threshold it crossed. */
  thresholdMs: number;
}

export interface BackupTasksOptions {
  settings: BackupSettings;
  logger: Logger;
  /** True when the workers' consumer has no message left to deliver (any job's). */
  queueDrained: () => Promise<boolean>;
  /** Publishes a copy of the task message starting at `first`; false when it has none to copy. */
  publishCopy: (first: number) => Promise<boolean>;
  /** Tells workers that the message starting at `first` has its result (they drop their copy). */
  announceSuperseded: (first: number, count: number) => void;
  onBackup: (event: BackupEvent) => void;
}

export class BackupTasks {
  private readonly messages = new Map<number, Message>();
  /** The message each unfolded task id belongs to. */
  private readonly messageOf = new Map<number, number>();
  private readonly durations = { map: [] as number[], reduce: [] as number[] };
  private readonly phaseTasks = { map: 0, reduce: 0 };
  private phaseComplete = { map: false, reduce: false };
  private losing = 0;
  private stopped = false;
  /** When the queue was first seen drained in the current phase; null before. */
  private drainedAt: number | null = null;
  private drainedPhase: 'map' | 'reduce' | null = null;
  private lastProbe = 0;
  /** Backups made, and how many of them produced the result that was folded. */
  fired = 0;
  won = 0;

  constructor(private readonly o: BackupTasksOptions) {}

  /** A task message went out (ids first .. first + count - 1). */
  published(first: number, count: number, phase: 'map' | 'reduce'): void {
    const before = this.messages.get(first);
    if (before?.count === count) return;
    // A batch sent again one task per message (it never completed): its tasks are those messages' now.
    if (before) {
      this.messages.delete(first);
      this.phaseTasks[phase] -= before.count;
    }
    this.messages.set(first, { first, count, phase, left: count, attempts: [], backups: 0, backupAt: 0, retrying: false });
    for (let id = first; id < first + count; id++) this.messageOf.set(id, first);
    this.phaseTasks[phase] += count;
  }

  /** Every message of the phase is published (its tasks may all be running now). */
  phasePublished(phase: 'map' | 'reduce'): void {
    this.phaseComplete[phase] = true;
  }

  /** A worker started the message starting at `first`. */
  started(first: number, worker: string, at = Date.now()): void {
    const message = this.messages.get(first);
    if (!message) return;
    message.retrying = false;
    // A start after a copy went out is the copy's (a frozen worker may never have reported its own).
    message.attempts.push({ worker, at, backup: message.backups > 0 && at >= message.backupAt });
  }

  /** A delivery of the message holding task `id` failed; it waits out its retry delay. */
  deliveryFailed(id: number): void {
    const first = this.messageOf.get(id);
    const message = first === undefined ? undefined : this.messages.get(first);
    if (message) message.retrying = true;
  }

  /**
   * Task `id` of `phase` was folded from `worker`'s result ('' for a task skipped without one),
   * which took the worker `ms` (null when unknown). Results folded when a job is resumed count
   * towards the typical time too, though their messages were sent by another coordinator.
   */
  folded(id: number, phase: 'map' | 'reduce', worker: string, ms: number | null): void {
    if (ms !== null && worker !== '') this.durations[phase].push(ms);
    const first = this.messageOf.get(id);
    if (first === undefined) return;
    this.messageOf.delete(id);
    const message = this.messages.get(first);
    if (!message) return;
    if (--message.left > 0) return;
    this.messages.delete(first);
    const attempt = [...message.attempts].reverse().find((a) => a.worker === worker);
    if (message.backups === 0) return;
    this.o.announceSuperseded(message.first, message.count);
    if (attempt?.backup) {
      this.won++;
      this.losing = 0;
    } else if (++this.losing >= MAX_LOSING && !this.stopped) {
      this.stopped = true;
      this.o.logger.info({ fired: this.fired, won: this.won }, 'backup tasks did not help; no more for this job');
    }
  }

  /** The median task time of a phase, once enough of its tasks finished; else null. */
  typicalMs(phase: 'map' | 'reduce'): number | null {
    const samples = this.durations[phase];
    const needed = Math.max(1, Math.min(MIN_SAMPLES, Math.floor(Math.max(this.phaseTasks[phase], samples.length) / 2)));
    if (samples.length < needed) return null;
    const sorted = [...samples].sort((a, b) => a - b);
    return sorted[Math.floor(sorted.length / 2)]!;
  }

  /** Looks for stragglers and backs them up; call it every fraction of a second. */
  async check(now = Date.now()): Promise<void> {
    if (!this.o.settings.enabled || this.stopped || this.messages.size === 0) return;
    const waiting = [...this.messages.values()];
    const phase = waiting[0]!.phase;
    if (!this.phaseComplete[phase]) return;
    const typical = this.typicalMs(phase);
    if (typical === null) return;
    const threshold = (message: Message) => Math.max(this.o.settings.minMs, this.o.settings.after * typical * message.count);
    // Nothing can be late before it could have run for the threshold since the phase went out.
    if (this.drainedPhase !== phase) {
      if (now - this.lastProbe < DRAIN_PROBE_MS) return;
      this.lastProbe = now;
      if (!(await this.o.queueDrained())) return;
      this.drainedAt = now;
      this.drainedPhase = phase;
    }
    for (const message of waiting) {
      if (message.backups >= MAX_PER_MESSAGE || message.retrying || this.stopped) continue;
      const latest = message.attempts[message.attempts.length - 1];
      const since = latest ? latest.at : this.drainedAt!;
      // One backup at a time: a copy not yet started, or started less than the threshold ago, is given its chance.
      if (message.backups > 0 && (since < message.backupAt || now - since < threshold(message))) continue;
      const ran = now - since;
      if (ran < threshold(message)) continue;
      message.backups++;
      message.backupAt = now;
      this.fired++;
      const workers = [...new Set(message.attempts.map((a) => a.worker))];
      this.o.logger.info({ tasks: `${message.first}-${message.first + message.count - 1}`, ranMs: ran, thresholdMs: Math.round(threshold(message)), workers }, 'backing up a straggling task');
      this.o.onBackup({ first: message.first, count: message.count, workers, ranMs: ran, thresholdMs: Math.round(threshold(message)) });
      if (!(await this.o.publishCopy(message.first))) message.backups = MAX_PER_MESSAGE;
    }
  }
}
