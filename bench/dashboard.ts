/**
 * Bench section `dashboard`: what an open `tally dashboard` costs a running job.
 *
 * One nats-server and a warm `tally worker --processes 2` fleet (as the `rss` section), then the
 * same `tally count FILE --server URL` job of the English corpus, interleaved: without a
 * dashboard, with one open, without, with, ... (one untimed job first warms the server's streams
 * and the page cache). "Open" is a `tally dashboard --server URL --port 0` process started
 * before the run, with three pages simulated by three server-sent-event clients in this process
 * (Node's fetch): `/events?view=jobs`, `/events?view=workers`, and `/events?view=job&job=ID`
 * for the job the jobs stream announces (opened on its first sight, as a user would click it),
 * plus a `/metrics` scrape every 5 s (as Prometheus would). It is stopped after the run: the
 * "without" runs have no dashboard process at all.
 *
 * No browser: on a 2-core machine its rendering would take the workers' CPU, which is not the
 * dashboard's cost (a user's browser runs on their own machine). What the dashboard itself
 * costs is in the with-runs' wall time and in its process's CPU, read from /proc around each run.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { availableParallelism } from 'node:os';
import { Interference, TALLY_BIN, median, round, run, say, sleep, startWarmFleet, type ServerSectionOptions } from './lib.js';
import { treeCpuMs } from './procs.js';

export interface DashboardBenchOptions extends ServerSectionOptions {
  /** Pairs of runs (one without, one with the dashboard open). */
  reps: number;
}

/** Prometheus' scrape interval in the simulation. */
const SCRAPE_MS = 5_000;
/** After the pages have their snapshots: let the dashboard's start-up (JIT, GC) die down. */
const SETTLE_MS = 1_000;

/** Counters of what the simulated pages received. */
interface PageStats {
  events: number;
  bytes: number;
}

/** One simulated page: an event stream read to its end (or until closed). */
class EventStreamClient {
  readonly stats: PageStats = { events: 0, bytes: 0 };
  private readonly abort = new AbortController();
  private readonly done: Promise<void>;
  private snapshotSeen!: () => void;
  /** Resolves with the first event (the snapshot every stream starts with). */
  readonly snapshot = new Promise<void>((resolve) => (this.snapshotSeen = resolve));

  constructor(url: string, onEvent: (event: string, data: string) => void = () => undefined) {
    this.done = this.follow(url, onEvent).catch((error: unknown) => {
      if (!this.abort.signal.aborted) say(`dashboard bench: event stream ${url} ended: ${error instanceof Error ? error.message : String(error)}`);
    });
  }

  private async follow(url: string, onEvent: (event: string, data: string) => void): Promise<void> {
    const response = await fetch(url, { signal: this.abort.signal, headers: { accept: 'text/event-stream' } });
    if (!response.ok || !response.body) throw new Error(`HTTP ${response.status}`);
    const reader = response.body.getReader();
    const decoder = new TextDecoder();
    let buffered = '';
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      this.stats.bytes += value.byteLength;
      buffered += decoder.decode(value, { stream: true });
      let end: number;
      while ((end = buffered.indexOf('\n\n')) >= 0) {
        const block = buffered.slice(0, end);
        buffered = buffered.slice(end + 2);
        let event = 'message';
        const data: string[] = [];
        for (const line of block.split('\n')) {
          if (line.startsWith('event:')) event = line.slice(6).trim();
          else if (line.startsWith('data:')) data.push(line.slice(5).trimStart());
        }
        if (data.length === 0) continue; // retry: or a heartbeat comment
        this.stats.events++;
        this.snapshotSeen();
        onEvent(event, data.join('\n'));
      }
    }
  }

  async close(): Promise<void> {
    this.abort.abort();
    await this.done;
  }
}

/** What the bench reads of a job on the jobs stream. */
interface JobSeen {
  id: string;
  created: string;
}

/** A `tally dashboard` process with its three pages and a Prometheus-like scraper. */
class OpenDashboard {
  private pages: EventStreamClient[] = [];
  private jobPage: EventStreamClient | null = null;
  private jobPageId: string | null = null;
  private scraper: NodeJS.Timeout | null = null;
  private scrapes: Promise<void>[] = [];
  private readonly exited: Promise<number | null>;
  /**
   * When the pages opened: the first job created after it is the run's. (The jobs stream's
   * snapshot may not hold every stored job yet: the watch's history can follow as job events.)
   */
  private readonly openedAt = Date.now();
  scrapeCount = 0;
  metricsBytes = 0;

  private constructor(
    private readonly child: ChildProcess,
    readonly base: string,
  ) {
    this.exited = new Promise((resolve) => {
      if (child.exitCode !== null || child.signalCode !== null) resolve(child.exitCode);
      else child.once('exit', (code) => resolve(code));
    });
  }

  get pid(): number {
    return this.child.pid ?? -1;
  }

  /** Starts `tally dashboard --port 0`, waits for its address, opens the pages and the scraper. */
  static async open(serverUrl: string, env: NodeJS.ProcessEnv): Promise<OpenDashboard> {
    const child = spawn(process.execPath, [TALLY_BIN, 'dashboard', '--server', serverUrl, '--port', '0', '--log-level', 'warn'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stderr!.on('data', (d: Buffer) => (stderr = (stderr + d.toString('utf8')).slice(-8192)));
    const base = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`tally dashboard printed no address in 30 s: ${stderr.trim()}`)), 30_000);
      child.stdout!.on('data', (d: Buffer) => {
        stdout += d.toString('utf8');
        const match = /tally dashboard: (http:\/\/[^\s/]+)\//.exec(stdout);
        if (match) {
          clearTimeout(timer);
          resolve(match[1]);
        }
      });
      child.once('exit', (code, signal) => {
        clearTimeout(timer);
        reject(new Error(`tally dashboard exited with ${code ?? signal} before printing its address: ${stderr.trim()}`));
      });
    }).catch(async (error: unknown) => {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGKILL');
        await new Promise((resolve) => child.once('exit', resolve));
      }
      throw error;
    });
    const dashboard = new OpenDashboard(child, base);
    try {
      await dashboard.openPages();
    } catch (error) {
      await dashboard.close();
      throw error;
    }
    return dashboard;
  }

  private async openPages(): Promise<void> {
    const jobs = new EventStreamClient(`${this.base}/events?view=jobs`, (event, data) => this.onJobsEvent(event, data));
    const workers = new EventStreamClient(`${this.base}/events?view=workers`);
    this.pages.push(jobs, workers);
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error('the dashboard sent no snapshot in 30 s')), 30_000)));
    try {
      await Promise.race([Promise.all([jobs.snapshot, workers.snapshot]), timeout]);
    } finally {
      clearTimeout(timer);
    }
    // One scrape now, to know /metrics answers before anything is timed.
    const response = await fetch(`${this.base}/metrics`);
    const text = await response.text();
    if (!response.ok || !/^# HELP tally_/m.test(text)) throw new Error(`/metrics: HTTP ${response.status}, ${text.slice(0, 200)}`);
  }

  /**
   * Scrapes /metrics now and every SCRAPE_MS: started with the job, so that a job of T seconds
   * has ceil(T / 5) scrapes, the most a 5 s Prometheus could land in it, whatever its phase.
   */
  startScraping(): void {
    this.scrape();
    this.scraper = setInterval(() => this.scrape(), SCRAPE_MS);
  }

  /** The jobs page's stream: the first job created since the pages opened gets a job page of its own. */
  private onJobsEvent(event: string, data: string): void {
    if (this.jobPage) return;
    const jobs = event === 'snapshot' ? (JSON.parse(data) as { jobs: JobSeen[] }).jobs : event === 'job' ? [(JSON.parse(data) as { job: JobSeen }).job] : [];
    const id = jobs.find((job) => Date.parse(job.created) >= this.openedAt)?.id;
    if (id === undefined) return;
    this.jobPageId = id;
    this.jobPage = new EventStreamClient(`${this.base}/events?view=job&job=${encodeURIComponent(id)}`);
  }

  private scrape(): void {
    const one = fetch(`${this.base}/metrics`)
      .then(async (response) => {
        const text = await response.text();
        if (!response.ok) throw new Error(`HTTP ${response.status}`);
        this.scrapeCount++;
        this.metricsBytes += text.length;
      })
      .catch((error: unknown) => say(`dashboard bench: /metrics scrape failed: ${error instanceof Error ? error.message : String(error)}`));
    this.scrapes.push(one);
  }

  /** What the pages received: jobs, workers, the job page. */
  pageStats(): { jobs: PageStats; workers: PageStats; job: PageStats | null; jobId: string | null } {
    return { jobs: this.pages[0].stats, workers: this.pages[1].stats, job: this.jobPage?.stats ?? null, jobId: this.jobPageId };
  }

  /** Closes the pages and the scraper, then stops the process (SIGTERM; SIGKILL after 10 s). */
  async close(): Promise<number | null> {
    if (this.scraper) clearInterval(this.scraper);
    this.scraper = null;
    await Promise.all([...this.pages, ...(this.jobPage ? [this.jobPage] : [])].map((p) => p.close()));
    await Promise.all(this.scrapes);
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGTERM');
    const killer = setTimeout(() => this.child.kill('SIGKILL'), 10_000);
    const code = await this.exited;
    clearTimeout(killer);
    return code;
  }
}

interface JobRun {
  ms: number;
  totalWords: number;
  /** The job's id (`job` of the JSON result). */
  jobId: string;
  /** CPU ms this (the harness) process used during the run: the simulated pages' reading, among others. */
  harnessCpuMs: number;
}

export async function dashboardSection(o: DashboardBenchOptions): Promise<void> {
  const { file, reps, env } = o;
  const section = `dashboard open vs not (tally count --server, ${(file.bytes / 1e6).toFixed(0)} MB English)`;
  const fleet = await startWarmFleet(o.storeDir, env);
  const serverUrl = fleet.server.url;
  const job = async (): Promise<JobRun> => {
    const cpu0 = process.cpuUsage();
    const r = await run(process.execPath, [TALLY_BIN, 'count', file.path, '--server', serverUrl, '--no-progress', '--format', 'json', '--top', '20'], { env });
    const cpu = process.cpuUsage(cpu0);
    const json = JSON.parse(r.stdout.trim().split('\n').pop() ?? '{}') as { totalWords?: number; job?: string };
    if (typeof json.totalWords !== 'number') throw new Error(`tally count --server: no totalWords in ${r.stdout.slice(0, 200)}`);
    return { ms: r.ms, totalWords: json.totalWords, jobId: String(json.job), harnessCpuMs: (cpu.user + cpu.system) / 1000 };
  };
  const without: JobRun[] = [];
  const withOpen: JobRun[] = [];
  const dashCpuMs: number[] = [];
  const pages: Array<ReturnType<OpenDashboard['pageStats']> & { scrapes: number }> = [];
  const meterWithout = new Interference();
  const meterWith = new Interference();
  let dashboard: OpenDashboard | null = null;
  try {
    say('dashboard: one untimed job first (the server makes its streams, the page cache fills)');
    const reference = (await job()).totalWords;
    const check = (r: JobRun) => {
      if (r.totalWords !== reference) throw new Error(`tally count --server: ${r.totalWords} words, the first run counted ${reference}`);
      return r;
    };
    const runWithout = async (rep: number) => {
      say(`dashboard: without a dashboard (run ${rep + 1}/${reps})`);
      // The same pause as before a with-run, so that neither follows the previous job closer.
      await sleep(SETTLE_MS);
      await o.quiet();
      meterWithout.start();
      try {
        without.push(check(await job()));
      } finally {
        meterWithout.stop();
      }
    };
    const runWith = async (rep: number) => {
      say(`dashboard: with the dashboard open, 3 pages + /metrics every ${SCRAPE_MS / 1000} s (run ${rep + 1}/${reps})`);
      dashboard = await OpenDashboard.open(serverUrl, env);
      await sleep(SETTLE_MS);
      await o.quiet();
      const cpu0 = treeCpuMs(dashboard.pid);
      meterWith.start();
      try {
        dashboard.startScraping();
        withOpen.push(check(await job()));
      } finally {
        meterWith.stop();
      }
      dashCpuMs.push(treeCpuMs(dashboard.pid) - cpu0);
      const seen = dashboard.pageStats();
      const ran = withOpen[withOpen.length - 1].jobId;
      if (seen.jobId === null) say(`dashboard: the jobs stream never showed job ${ran}: no job page was open during this run`);
      else if (seen.jobId !== ran) throw new Error(`dashboard bench: the job page followed ${seen.jobId}, not the run's job ${ran}`);
      const code = await dashboard.close();
      // The scrapes of the run (the one before it, at opening, is not counted).
      pages.push({ ...seen, scrapes: dashboard.scrapeCount });
      dashboard = null;
      if (code !== 0) throw new Error(`tally dashboard exited with ${code} on SIGTERM (expected 0)`);
    };
    // ABBA: each pair's two runs swap order every repetition, so drift and whatever one job
    // leaves the next (the server's clean-up, the page cache) fall on both alike.
    for (let rep = 0; rep < reps; rep++) {
      if (rep % 2 === 0) {
        await runWithout(rep);
        await runWith(rep);
      } else {
        await runWith(rep);
        await runWithout(rep);
      }
    }
  } finally {
    // Set inside runWith, which TypeScript's narrowing does not follow.
    const open = dashboard as OpenDashboard | null;
    if (open) await open.close();
    await fleet.stop();
  }

  const msWithout = without.map((r) => r.ms);
  const msWith = withOpen.map((r) => r.ms);
  const common = { section, reps, bytes: file.bytes };
  const harness = (runs: JobRun[]) => round(median(runs.map((r) => r.harnessCpuMs)) / 1000, 3);
  o.record({
    ...common,
    id: 'dashboard.without',
    label: 'tally count --server, 2 warm worker processes, no dashboard',
    runs: msWithout.map((ms) => ms / 1000),
    unit: 's',
    wallMs: msWithout,
    extra: { totalWords: without[0]?.totalWords, harnessCpuS: harness(without) },
    interference: meterWithout.take(),
  });
  o.record({
    ...common,
    id: 'dashboard.with',
    label: `  the same with tally dashboard open (3 event-stream pages, /metrics every ${SCRAPE_MS / 1000} s)`,
    runs: msWith.map((ms) => ms / 1000),
    unit: 's',
    wallMs: msWith,
    notes: 'pages simulated by Node fetch clients in the harness (no browser); the dashboard started before and stopped after each run',
    extra: { harnessCpuS: harness(withOpen), pages },
    interference: meterWith.take(),
  });
  o.record({
    ...common,
    id: 'dashboard.ratio',
    label: '  with the dashboard open / without (median of the pairs; goal <= 1.02)',
    runs: [median(msWith.map((ms, i) => ms / msWithout[i]!))],
    unit: 'x',
    notes: 'median over the repetitions of (with-run wall / without-run wall), the two runs of a repetition back to back, in ABBA order; ratioOfMedians: median wall with / median wall without',
    extra: { pairRatios: msWith.map((ms, i) => round(ms / msWithout[i]!, 3)), ratioOfMedians: round(median(msWith) / median(msWithout), 3) },
    interference: 0,
  });
  o.record({
    ...common,
    id: 'dashboard.cpu',
    label: '  tally dashboard process CPU during a with-run',
    runs: dashCpuMs.map((ms) => ms / 1000),
    unit: 'CPU s',
    notes: 'user + system of the dashboard process (and any children) from /proc, read at the start and end of each with-run',
    extra: { totalCpuS: round(dashCpuMs.reduce((a, b) => a + b, 0) / 1000, 3), coresWhileRunning: dashCpuMs.map((ms, i) => round(ms / msWith[i], 4)) },
    interference: 0,
  });
  o.record({
    ...common,
    id: 'dashboard.cpuShare',
    label: "  the dashboard's CPU as a share of the machine during a with-run",
    runs: dashCpuMs.map((ms, i) => (100 * ms) / (msWith[i]! * availableParallelism())),
    unit: '%',
    notes: 'dashboard CPU / (wall x cores): what it takes from the job, wherever the wall time noise lands',
    interference: 0,
  });
}
