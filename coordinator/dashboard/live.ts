/**
 * What every open dashboard page shows, gathered once: ONE watch of the job records (KV
 * `tally-jobs`) and ONE periodic `$SRV` discovery of the worker processes, fanned out to any
 * number of listeners (the pages' event streams, the metrics). Ten open pages cost the NATS
 * server what one costs.
 *
 * Running jobs' live progress comes from ONE subscription to their coordinators' feeds
 * (`tally.progress.*`, shared/job-feed.ts): each worker's share, redelivered and failed tasks,
 * and what the job has folded so far (the forming top words, a running sum).
 *
 * The connection is owned here: opened in a loop until the server answers, followed through
 * disconnects (the pages are told, the watch restarts on reconnect), and closed by close().
 */
import type { NatsConnection, Status, Subscription } from '@nats-io/transport-node';
import type { JobFeed, TaskIncident } from '../../shared/job-feed.js';
import type { JobRecord, JobStatus, JobStore } from '../job-store.js';
import type { WorkerStats } from '../../worker/task-loop.js';
import { describeError } from '../../shared/errors.js';
import { permissionViolation } from '../../shared/nats/errors.js';
import { JOB_FEED_SUBJECTS, isJobId, jobCancelSubject } from '../../shared/subjects.js';
import type { Logger } from '../../shared/log.js';
import { estimateEta, type Eta, type ProgressSample } from './eta.js';

/** A job as the pages show it: what its record says, nothing secret (no lease, no arguments). */
export interface JobView {
  id: string;
  kind: string;
  argsSummary: string;
  status: JobStatus;
  tasksDone: number;
  tasksTotal: number | null;
  weightDone: number;
  weightTotal: number | null;
  /** What one unit of weight is: "B" (bytes) for the text kinds, "" (numbers) for the others. */
  unit: 'B' | '';
  created: string;
  finished: string | null;
  elapsedMs: number | null;
  error: string | null;
  coordinator: string;
  /** Weight per second: measured lately while running, overall once ended; null before any. */
  throughput: number | null;
  /** Only while running and once a rate was measured. */
  eta: Eta | null;
}

/** A worker process as last discovered; `gone` once it stopped answering. */
export interface WorkerView extends Omit<WorkerStats, 'tasksRejected'> {
  lastSeen: string;
  gone: boolean;
  /** Tasks done per second over the last RECENT_MS of discoveries; null before two of them. */
  recentTasksPerSecond: number | null;
}

/** The dashboard's link to NATS. `error` is what the last attempt said, secrets removed. */
export interface LinkView {
  connected: boolean;
  server: string;
  error: string | null;
  /** Whether this dashboard's NATS user may ask coordinators to cancel jobs (and it is not --read-only); null until known. */
  canCancel: boolean | null;
}

/** What became of a request to cancel a job. */
export type CancelOutcome = 'cancelling' | 'no-coordinator' | 'denied' | 'not-connected' | 'no-answer';

export type LiveEvent =
  | { type: 'link'; link: LinkView }
  | { type: 'job'; job: JobView; sample?: ProgressSample }
  | { type: 'removed'; id: string }
  | { type: 'feed'; feed: JobFeed }
  | { type: 'workers'; workers: WorkerView[] };

export type LiveListener = (event: LiveEvent) => void;

/** What the live state needs of a NATS session (coordinator/session.ts has it). */
export interface LiveSession {
  readonly nc: NatsConnection;
  readonly store: JobStore;
  readonly server: string;
  close(): Promise<void>;
}

export interface LiveOptions {
  /** Opens a session; called again after a failure, every `retryMs`. */
  open: () => Promise<LiveSession>;
  /** Where it connects, for the pages (no credentials). */
  server: string;
  /** Removes secrets from an error message. */
  redact: (text: string) => string;
  logger: Logger;
  /** Discover the workers every this many ms (default 2000). */
  discoverEveryMs?: number;
  retryMs?: number;
  discover: (nc: NatsConnection) => Promise<WorkerStats[]>;
  /** Never offer to cancel, whatever the credentials allow. */
  readOnly?: boolean;
}

/** A job id no job has (ids start with a base-36 time), asked for to learn whether cancelling is allowed. */
const PROBE_JOB = 'cancel-permission-probe';
/** How long a coordinator has to answer a cancel request. */
const CANCEL_TIMEOUT_MS = 5000;

/** Kinds whose weight is bytes of text; the others count numbers. */
const BYTE_KINDS = new Set(['count', 'ngrams']);
/** Samples kept per job, and jobs with samples kept (the most recently updated). */
const MAX_SAMPLES = 600;
const MAX_SAMPLED_JOBS = 64;
/** How long close() waits for a connection attempt under way. */
const CLOSE_WAIT_MS = 5000;
/** A worker gone this long is forgotten. */
const FORGET_GONE_MS = 60 * 60_000;
/** The window of a worker's recent throughput. */
const RECENT_MS = 30_000;

interface JobEntry {
  record: JobRecord;
  view: JobView;
  samples: ProgressSample[];
}

export class LiveState {
  private readonly jobs = new Map<string, JobEntry>();
  private readonly workers = new Map<string, WorkerView>();
  /** Per worker: (time, tasks done) at each discovery within RECENT_MS, oldest first. */
  private readonly workerHistory = new Map<string, Array<[number, number]>>();
  /** The latest feed of the jobs seen running lately (MAX_SAMPLED_JOBS at most). */
  private readonly feeds = new Map<string, JobFeed>();
  private feedSubscription: Subscription | null = null;
  private readonly listeners = new Set<LiveListener>();
  private link: LinkView;
  private session: LiveSession | null = null;
  private watchStop: (() => void) | null = null;
  private closed = false;
  /** Wakes every pause() under way (the connect loop's and the discovery's) when closing. */
  private readonly wakers = new Set<() => void>();
  private running: Promise<void> | null = null;
  private discovering: Promise<void> | null = null;
  private lastError: string | null = null;

  constructor(private readonly o: LiveOptions) {
    this.link = { connected: false, server: o.server, error: null, canCancel: null };
  }

  /** Starts connecting (in the background: the dashboard serves pages meanwhile). */
  start(): void {
    this.running ??= this.run();
  }

  /** The job store while connected (results are read through it), else null. */
  get store(): JobStore | null {
    return this.link.connected ? (this.session?.store ?? null) : null;
  }

  get linkView(): LinkView {
    return { ...this.link };
  }

  jobViews(): JobView[] {
    return [...this.jobs.values()].map((e) => e.view).sort((a, b) => (a.created < b.created ? 1 : a.created > b.created ? -1 : a.id < b.id ? 1 : -1));
  }

  job(id: string): { view: JobView; samples: ProgressSample[]; feed: JobFeed | null; incidents: TaskIncident[] | null } | undefined {
    const entry = this.jobs.get(id);
    return entry && { view: entry.view, samples: [...entry.samples], feed: this.feeds.get(id) ?? null, incidents: entry.record.incidents ?? null };
  }

  workerViews(): WorkerView[] {
    return [...this.workers.values()].sort((a, b) => (a.host === b.host ? a.pid - b.pid : a.host < b.host ? -1 : 1));
  }

  /** Adds a listener; returns the function that removes it. */
  subscribe(listener: LiveListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  get listenerCount(): number {
    return this.listeners.size;
  }

  private emit(event: LiveEvent): void {
    for (const listener of this.listeners) {
      try {
        listener(event);
      } catch (error) {
        this.o.logger.warn({ err: describeError(error) }, 'dashboard listener failed');
      }
    }
  }

  private setLink(connected: boolean, error: string | null, canCancel: boolean | null = this.link.canCancel): void {
    if (this.link.connected === connected && this.link.error === error && this.link.canCancel === canCancel) return;
    this.link = { connected, server: this.o.server, error, canCancel };
    this.emit({ type: 'link', link: this.linkView });
  }

  /**
   * Asks the coordinator running job `id` to cancel it (it answers, then cancels as Ctrl-C
   * would). 'denied' when this dashboard's NATS user may not; 'no-coordinator' when nobody
   * runs the job (ended, or its coordinator died).
   */
  async cancel(id: string): Promise<CancelOutcome> {
    const nc = this.session?.nc;
    if (!nc || !this.link.connected) return 'not-connected';
    if (this.o.readOnly) return 'denied';
    try {
      await nc.request(jobCancelSubject(id), '', { timeout: CANCEL_TIMEOUT_MS });
      return 'cancelling';
    } catch (error) {
      if (permissionViolation(error)) return 'denied';
      if (/no responders|503/i.test(describeError(error))) return 'no-coordinator';
      return 'no-answer';
    }
  }

  /** Learns once per connection whether its user may cancel jobs: a request nobody answers is allowed. */
  private async probeCancel(): Promise<void> {
    const outcome = this.o.readOnly ? 'denied' : await this.cancel(PROBE_JOB);
    if (this.link.connected) this.setLink(true, null, outcome === 'no-coordinator' || outcome === 'cancelling');
  }

  /** Waits `ms`, or less when closed. */
  private pause(ms: number): Promise<void> {
    if (this.closed) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const timer = setTimeout(done, ms);
      const wakers = this.wakers;
      function done() {
        clearTimeout(timer);
        wakers.delete(done);
        resolve();
      }
      wakers.add(done);
    });
  }

  private async run(): Promise<void> {
    while (!this.closed) {
      let session: LiveSession;
      try {
        session = await this.o.open();
      } catch (error) {
        const message = this.o.redact(describeError(error));
        // Said once per different reason, not every retry.
        if (message !== this.lastError) this.o.logger.warn({ server: this.o.server, err: message }, 'dashboard: NATS server not reachable; retrying');
        this.lastError = message;
        this.setLink(false, message);
        await this.pause(this.o.retryMs ?? 2000);
        continue;
      }
      if (this.closed) {
        await session.close().catch(() => undefined);
        return;
      }
      this.session = session;
      this.lastError = null;
      this.setLink(true, null);
      void this.probeCancel();
      this.followStatus(session.nc);
      this.followFeeds(session.nc);
      void this.startWatch(session);
      const discovery = this.discoverLoop(session);
      // Closed for good (a rejected credential, or close()): start over unless closing.
      await session.nc.closed();
      this.stopWatch();
      this.feedSubscription = null;
      await discovery;
      this.session = null;
      if (!this.closed) {
        this.setLink(false, 'connection closed');
        await session.close().catch(() => undefined);
        await this.pause(this.o.retryMs ?? 2000);
      }
    }
  }

  /** Disconnects are shown; a reconnect restarts the watch (it re-reads every record). */
  private followStatus(nc: NatsConnection): void {
    void (async () => {
      for await (const status of nc.status() as AsyncIterable<Status>) {
        if (status.type === 'disconnect') this.setLink(false, 'disconnected from the NATS server; reconnecting');
        else if (status.type === 'reconnect' && this.session?.nc === nc) {
          this.setLink(true, null);
          this.stopWatch();
          void this.startWatch(this.session);
        }
      }
    })().catch(() => undefined);
  }

  /**
   * Follows every running job's feed through one subscription (kept by the client across
   * reconnects). A NATS user without the permission sees jobs without their live detail.
   */
  private followFeeds(nc: NatsConnection): void {
    try {
      this.feedSubscription = nc.subscribe(JOB_FEED_SUBJECTS, {
        callback: (error, message) => {
          if (error) {
            this.o.logger.debug({ err: this.o.redact(describeError(error)) }, 'dashboard: cannot follow job feeds');
            return;
          }
          let feed: JobFeed;
          try {
            feed = message.json<JobFeed>();
          } catch {
            return;
          }
          if (feed?.v !== 1 || typeof feed.job !== 'string' || !isJobId(feed.job) || message.subject.split('.').pop() !== feed.job) return;
          this.applyFeed(feed);
        },
      });
    } catch (error) {
      this.o.logger.debug({ err: this.o.redact(describeError(error)) }, 'dashboard: cannot follow job feeds');
    }
  }

  private applyFeed(feed: JobFeed): void {
    // An older message overtaken by a newer one is dropped.
    const known = this.feeds.get(feed.job);
    if (known && known.at > feed.at) return;
    this.feeds.delete(feed.job);
    this.feeds.set(feed.job, feed);
    if (this.feeds.size > MAX_SAMPLED_JOBS) this.feeds.delete(this.feeds.keys().next().value!);
    this.emit({ type: 'feed', feed });
  }

  private async startWatch(session: LiveSession): Promise<void> {
    let stop: (() => void) | null = null;
    try {
      const watch = await session.store.watch();
      stop = watch.stop;
      if (this.closed || this.session !== session) {
        stop();
        return;
      }
      this.watchStop = stop;
      for await (const { id, record } of watch.updates) {
        if (record === null) this.remove(id);
        else this.apply(record);
      }
    } catch (error) {
      this.o.logger.debug({ err: this.o.redact(describeError(error)) }, 'dashboard: job watch ended');
    } finally {
      if (this.watchStop === stop) this.watchStop = null;
    }
  }

  private stopWatch(): void {
    this.watchStop?.();
    this.watchStop = null;
  }

  private remove(id: string): void {
    this.feeds.delete(id);
    if (!this.jobs.delete(id)) return;
    this.emit({ type: 'removed', id });
  }

  private apply(record: JobRecord): void {
    const now = Date.now();
    const previous = this.jobs.get(record.id);
    const samples = previous?.samples ?? [];
    let sample: ProgressSample | undefined;
    const last = samples[samples.length - 1];
    const moved = !last || last.tasksDone !== record.progress.tasksDone || last.weightDone !== record.progress.weightDone;
    // Samples of what the dashboard saw run: a finished job seen first has none.
    if ((record.status === 'running' || previous?.view.status === 'running') && moved) {
      const rate = last && now > last.t ? ((record.progress.weightDone - last.weightDone) * 1000) / (now - last.t) : null;
      sample = { t: now, tasksDone: record.progress.tasksDone, weightDone: record.progress.weightDone, rate };
      samples.push(sample);
      if (samples.length > MAX_SAMPLES) samples.splice(0, samples.length - MAX_SAMPLES);
    }
    const view = toView(record, samples, now);
    this.jobs.delete(record.id);
    this.jobs.set(record.id, { record, view, samples });
    // Only a job that gained a sample can push another out (the replay of thousands of ended jobs adds none).
    if (sample) this.trimSamples();
    this.emit({ type: 'job', job: view, sample });
  }

  /** Keeps samples for the most recently updated jobs only (thousands of jobs stay small). */
  private trimSamples(): void {
    let withSamples = 0;
    const entries = [...this.jobs.values()];
    for (let i = entries.length - 1; i >= 0; i--) {
      const entry = entries[i]!;
      if (entry.samples.length === 0) continue;
      if (++withSamples > MAX_SAMPLED_JOBS) entry.samples = [];
    }
  }

  private async discoverLoop(session: LiveSession): Promise<void> {
    while (!this.closed && this.session === session && !session.nc.isClosed()) {
      if (this.link.connected) {
        try {
          this.discovering = this.discoverOnce(session.nc);
          await this.discovering;
        } catch (error) {
          this.o.logger.debug({ err: this.o.redact(describeError(error)) }, 'dashboard: worker discovery failed');
        } finally {
          this.discovering = null;
        }
      }
      await this.pause(this.o.discoverEveryMs ?? 2000);
    }
  }

  private async discoverOnce(nc: NatsConnection): Promise<void> {
    const found = await this.o.discover(nc);
    if (this.closed) return;
    const now = new Date();
    const seen = new Set<string>();
    for (const w of found) {
      const key = `${w.host}\u0000${w.pid}\u0000${w.name}`;
      seen.add(key);
      const history = this.workerHistory.get(key) ?? [];
      history.push([now.getTime(), w.tasksDone]);
      while (history.length > 2 && now.getTime() - history[0]![0] > RECENT_MS) history.shift();
      this.workerHistory.set(key, history);
      const [t0, done0] = history[0]!;
      const recentTasksPerSecond = history.length >= 2 && now.getTime() > t0 ? ((w.tasksDone - done0) * 1000) / (now.getTime() - t0) : null;
      this.workers.set(key, {
        name: w.name,
        host: w.host,
        pid: w.pid,
        started: w.started,
        tasksDone: w.tasksDone,
        tasksFailed: w.tasksFailed,
        busy: w.busy,
        current: w.current,
        lastSeen: now.toISOString(),
        gone: false,
        recentTasksPerSecond,
      });
    }
    for (const [key, worker] of this.workers) {
      if (seen.has(key)) continue;
      worker.gone = true;
      worker.busy = false;
      worker.current = null;
      worker.recentTasksPerSecond = null;
      this.workerHistory.delete(key);
      if (now.getTime() - Date.parse(worker.lastSeen) > FORGET_GONE_MS) this.workers.delete(key);
    }
    this.emit({ type: 'workers', workers: this.workerViews() });
  }

  /** Stops the watch and the discovery, and closes the connection (once). */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const wake of [...this.wakers]) wake();
    this.stopWatch();
    this.feedSubscription?.unsubscribe();
    this.feedSubscription = null;
    await this.discovering?.catch(() => undefined);
    const session = this.session;
    this.session = null;
    await session?.close().catch(() => undefined);
    // A connection attempt under way ends within its own timeout and is closed by run(); not
    // waited for longer than this.
    await Promise.race([this.running, new Promise((resolve) => setTimeout(resolve, CLOSE_WAIT_MS).unref())]);
    this.listeners.clear();
  }
}

/** The page's view of a record, with its throughput and (while running) its ETA. */
export function toView(record: JobRecord, samples: readonly ProgressSample[], now = Date.now()): JobView {
  const eta = record.status === 'running' ? (estimateEta(samples, record.progress.weightTotal) ?? null) : null;
  const elapsedMs = record.elapsedMs ?? (record.status === 'running' ? now - Date.parse(record.created) : null);
  const overall = elapsedMs !== null && elapsedMs > 0 ? (record.progress.weightDone * 1000) / elapsedMs : null;
  return {
    id: record.id,
    kind: record.kind,
    argsSummary: record.argsSummary ?? '',
    status: record.status,
    tasksDone: record.progress.tasksDone,
    tasksTotal: record.progress.tasksTotal,
    weightDone: record.progress.weightDone,
    weightTotal: record.progress.weightTotal,
    unit: BYTE_KINDS.has(record.kind) ? 'B' : '',
    created: record.created,
    finished: record.finished,
    elapsedMs: record.elapsedMs,
    error: record.error,
    coordinator: record.coordinator,
    throughput: eta?.rate ?? overall,
    eta,
  };
}
