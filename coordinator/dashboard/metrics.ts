/**
 * `GET /metrics`: what the live state sees, in the Prometheus text format (prom-client, on a
 * registry of its own). Counters count over every job this dashboard has seen, from first
 * sight: a job already in the bucket when the dashboard started adds what it had done then.
 * Nothing here carries a secret: job ids, kinds and statuses only.
 */
import { createRequire } from 'node:module';
import type * as PromClient from 'prom-client';
import type { JobView, LiveEvent, LiveState } from './live.js';
import { TABLE_KINDS } from './top-words.js';
import type { JobFeed } from '../../shared/job-feed.js';

// Loaded with require(): a package imported statically would load with every bundled tally command (scripts/bundle.mjs).
const { Counter, Gauge, Histogram, Registry } = createRequire(import.meta.url)('prom-client') as typeof PromClient;
type Counter<Label extends string> = PromClient.Counter<Label>;
type Histogram<Label extends string> = PromClient.Histogram<Label>;

const STATUSES = ['running', 'done', 'failed', 'cancelled'] as const;

export class DashboardMetrics {
  readonly registry = new Registry();
  /** Per job: what was counted already, and whether its duration was observed. */
  private readonly seen = new Map<string, { tasksDone: number; weightDone: number; timed: boolean; status: string }>();
  private readonly tasksDone: Counter<'kind'>;
  private readonly bytes: Counter<'kind'>;
  private readonly numbers: Counter<'kind'>;
  private readonly words: Counter<'kind'>;
  private readonly durations: Histogram<'kind' | 'status'>;
  private readonly redelivered: Counter<'kind'>;
  private readonly retried: Counter<'kind'>;
  /** Per job: the redelivered and retried counts its feed said last. */
  private readonly feedsSeen = new Map<string, { redelivered: number; retried: number }>();
  private readonly unsubscribe: () => void;

  constructor(private readonly live: LiveState) {
    const registers = [this.registry];
    new Gauge({
      name: 'tally_jobs',
      help: 'Jobs in the tally-jobs bucket, by status',
      labelNames: ['status'],
      registers,
      collect() {
        const counts = new Map<string, number>(STATUSES.map((s) => [s, 0]));
        for (const job of live.jobViews()) counts.set(job.status, (counts.get(job.status) ?? 0) + 1);
        for (const [status, n] of counts) this.set({ status }, n);
      },
    });
    this.tasksDone = new Counter({ name: 'tally_tasks_done_total', help: 'Tasks done, over every job seen (map and reduce tasks)', labelNames: ['kind'], registers });
    this.bytes = new Counter({ name: 'tally_counted_bytes_total', help: 'Bytes of input counted by text jobs (count, ngrams)', labelNames: ['kind'], registers });
    this.numbers = new Counter({ name: 'tally_counted_numbers_total', help: 'Numbers covered by number jobs (sum, primes, factorial)', labelNames: ['kind'], registers });
    this.words = new Counter({
      name: 'tally_counted_words_total',
      help: 'Words (or n-grams) counted by count and ngrams jobs that ended while the dashboard watched them run',
      labelNames: ['kind'],
      registers,
    });
    this.redelivered = new Counter({ name: 'tally_tasks_redelivered_total', help: 'Tasks whose result came from a second or later delivery, over the jobs seen running', labelNames: ['kind'], registers });
    this.retried = new Counter({ name: 'tally_task_retries_total', help: 'Deliveries of tasks that failed and were handed back for another try, over the jobs seen running', labelNames: ['kind'], registers });
    this.durations = new Histogram({
      name: 'tally_job_duration_seconds',
      help: 'Wall time of ended jobs, from creation to the end',
      labelNames: ['kind', 'status'],
      buckets: [0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600],
      registers,
    });
    new Gauge({
      name: 'tally_workers_alive',
      help: 'Worker processes that answered the last $SRV discovery',
      registers,
      collect() {
        this.set(live.workerViews().filter((w) => !w.gone).length);
      },
    });
    new Gauge({
      name: 'tally_worker_tasks_failed',
      help: 'Tasks failed, summed over the worker processes alive (each counts since it started)',
      registers,
      collect() {
        this.set(live.workerViews().reduce((sum, w) => sum + (w.gone ? 0 : w.tasksFailed), 0));
      },
    });
    new Gauge({
      name: 'tally_nats_connected',
      help: '1 while the dashboard is connected to the NATS server, else 0',
      registers,
      collect() {
        this.set(live.linkView.connected ? 1 : 0);
      },
    });
    new Gauge({
      name: 'tally_dashboard_clients',
      help: 'Pages following the live event stream',
      registers,
      collect() {
        // The metrics themselves listen too.
        this.set(Math.max(0, live.listenerCount - 1));
      },
    });
    this.unsubscribe = live.subscribe((event) => this.onEvent(event));
  }

  private onEvent(event: LiveEvent): void {
    if (event.type === 'job') this.onJob(event.job);
    else if (event.type === 'feed') this.onFeed(event.feed);
    else if (event.type === 'removed') this.feedsSeen.delete(event.id);
  }

  private onFeed(feed: JobFeed): void {
    const before = this.feedsSeen.get(feed.job) ?? { redelivered: 0, retried: 0 };
    const redelivered = Math.max(0, feed.redelivered.count - before.redelivered);
    const retried = Math.max(0, feed.retried.count - before.retried);
    if (redelivered > 0) this.redelivered.inc({ kind: feed.kind }, redelivered);
    if (retried > 0) this.retried.inc({ kind: feed.kind }, retried);
    this.feedsSeen.set(feed.job, { redelivered: Math.max(before.redelivered, feed.redelivered.count), retried: Math.max(before.retried, feed.retried.count) });
  }

  private onJob(job: JobView): void {
    const before = this.seen.get(job.id) ?? { tasksDone: 0, weightDone: 0, timed: false, status: '' };
    // Words are in the result, read once for a job seen to end (not for each stored job at start).
    if (before.status === 'running' && job.status === 'done' && TABLE_KINDS.has(job.kind)) void this.countWords(job);
    // A resumed job may start its count again: only growth is counted.
    const tasks = Math.max(0, job.tasksDone - before.tasksDone);
    const weight = Math.max(0, job.weightDone - before.weightDone);
    if (tasks > 0) this.tasksDone.inc({ kind: job.kind }, tasks);
    if (weight > 0) (job.unit === 'B' ? this.bytes : this.numbers).inc({ kind: job.kind }, weight);
    let timed = before.timed;
    if (!timed && job.status !== 'running' && job.elapsedMs !== null) {
      this.durations.observe({ kind: job.kind, status: job.status }, job.elapsedMs / 1000);
      timed = true;
    }
    this.seen.set(job.id, { tasksDone: Math.max(before.tasksDone, job.tasksDone), weightDone: Math.max(before.weightDone, job.weightDone), timed, status: job.status });
  }

  private async countWords(job: JobView): Promise<void> {
    try {
      const result = (await this.live.store?.getResult(job.id)) as { totalWords?: unknown } | null | undefined;
      if (typeof result?.totalWords === 'number' && result.totalWords > 0) this.words.inc({ kind: job.kind }, result.totalWords);
    } catch {
      // The result is gone already, or the server: the words of that job go uncounted.
    }
  }

  /** The text Prometheus scrapes, and its content type. */
  async render(): Promise<{ text: string; contentType: string }> {
    return { text: await this.registry.metrics(), contentType: this.registry.contentType };
  }

  close(): void {
    this.unsubscribe();
  }
}
