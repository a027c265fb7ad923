/**
 * The worker supervisor: forks one OS process per core (JavaScript is single-threaded, so CPU
 * parallelism means processes, the seed lesson's point), restarts any that die, and on stop
 * asks each to finish its task in hand before exiting.
 *
 * The processes may be forked before the server's address is known (`start()` without a
 * connection): they load their modules meanwhile and get their settings over IPC from
 * `configure()`. A Node process takes ~120 ms of CPU to start and load the NATS client, which
 * is most of the embedded default's start-up when it waits for the server first.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { availableParallelism } from 'node:os';
import type { Logger } from '../shared/log.js';
import { connectionSecrets, withoutSecrets, type ConnectionSettings } from '../shared/nats/connection-settings.js';
import type { SettingsMessage, WorkerProcessSettings } from './process-main.js';

/**
 * The path of a worker process's program: process-main.ts and what it imports, bundled by
 * `npm run build` (scripts/bundle.mjs), loaded by this launcher through the code cache. Worker
 * processes have it on their command line.
 */
export const WORKER_PROGRAM = fileURLToPath(new URL('../bundle/worker-main.cjs', import.meta.url));

export interface SupervisorOptions {
  /** Where the children connect; when missing, they wait for `configure()`. */
  connection?: ConnectionSettings;
  /** Worker processes to keep running. Default: available parallelism. */
  processes?: number;
  /** For the supervisor's own lines (a child died); none until `configure()` gives one. */
  logger?: Logger;
  logLevel?: string;
  /** Extra environment for the children (test hooks). */
  env?: NodeJS.ProcessEnv;
  /** Let tasks name input files for the children to read (see shared/kinds/file-reads.ts). Default false. */
  readFiles?: boolean;
  /** Let tasks name URLs for the children to fetch (see shared/kinds/file-reads.ts). Default false. */
  fetchUrls?: boolean;
  /**
   * Processes to fork at once; the others follow as soon as one of these has loaded its
   * modules. Default: all. Starting a Node process is CPU-bound (~120 ms), so forking more of
   * them than there are idle cores only makes the first one ready later.
   */
  initial?: number;
  /**
   * Milliseconds to wait before forking any process. Default 0. The embedded default holds back
   * the processes of a job it expects the coordinator's stand-in to finish alone
   * (coordinator/embedded/small-job.ts); a job that outlasts the hold gets them then.
   */
  holdMs?: number;
  /** Milliseconds a child may take to finish its task after SIGTERM before it is killed. Default 60 s. */
  stopTimeoutMs?: number;
}

interface Slot {
  index: number;
  child: ChildProcess | null;
  restarts: number;
  startedAt: number;
  /** The child was forked without settings, and they were not sent yet. */
  needsSettings: boolean;
}

/** What `configure()` may supply after the processes were forked. */
export type SupervisorSettings = Pick<SupervisorOptions, 'connection' | 'logger' | 'logLevel' | 'readFiles' | 'fetchUrls'>;

/** Owns the worker child processes: starts, restarts and stops them. */
export class Supervisor {
  /** Processes asked for at construction; `start()` makes a slot for each. */
  private readonly initialCount: number;
  private readonly slots: Slot[] = [];
  private stopping = false;
  private options: SupervisorOptions;
  private readyCount = 0;
  private readyWaiters: Array<{ processes: number; resolve: () => void }> = [];
  private holdTimer: NodeJS.Timeout | undefined;

  constructor(options: SupervisorOptions) {
    this.options = options;
    this.initialCount = Math.max(1, options.processes ?? availableParallelism());
  }

  /** The worker processes this supervisor keeps running (one more after each `addProcess()`). */
  get processes(): number {
    return Math.max(this.initialCount, this.slots.length);
  }

  /** Forks every process (after `holdMs`, if given); resolves at once (see `ready()`). */
  start(): void {
    for (let index = 0; index < this.initialCount; index++) this.slots.push({ index, child: null, restarts: 0, startedAt: 0, needsSettings: false });
    const holdMs = this.options.holdMs ?? 0;
    // Unref'd: a command that is done exits without waiting for it.
    if (holdMs > 0) this.holdTimer = setTimeout(() => this.spawnInitial(), holdMs).unref();
    else this.spawnInitial();
  }

  /** Forks the first processes (see SupervisorOptions.initial). */
  private spawnInitial(): void {
    this.holdTimer = undefined;
    if (this.stopping) return;
    for (const slot of this.slots) if (slot.index < (this.options.initial ?? this.processes)) this.spawn(slot);
  }

  /** Forks the processes `start()` held back (see SupervisorOptions.initial). */
  private spawnDeferred(): void {
    if (this.stopping) return;
    for (const slot of this.slots) if (!slot.child && slot.startedAt === 0) this.spawn(slot);
  }

  /**
   * Supplies what was not known at `start()`: where to connect, the log level and logger, the
   * file-read permission. Processes forked without their settings get them at once; processes
   * forked from now on (restarts) get them in their environment as usual.
   */
  configure(settings: SupervisorSettings): void {
    this.options = { ...this.options, ...settings };
    for (const slot of this.slots) this.sendSettings(slot);
  }

  /** The (first) server the children connect to, once known. */
  get serverUrl(): string | undefined {
    return this.options.connection?.servers[0];
  }

  private settingsFor(slot: Slot, connection: ConnectionSettings): WorkerProcessSettings {
    return {
      connection: withoutSecrets(connection),
      logLevel: this.options.logLevel,
      index: slot.index,
      readFiles: this.options.readFiles === true,
      fetchUrls: this.options.fetchUrls === true,
    };
  }

  /**
   * Sends a child forked without settings its settings, once they are known. Node keeps the
   * message until the child listens, so it need not ask first and finds them when it has loaded.
   */
  private sendSettings(slot: Slot): void {
    const connection = this.options.connection;
    const child = slot.child;
    if (!slot.needsSettings || !connection || !child?.connected) return;
    slot.needsSettings = false;
    const secrets = connectionSecrets(connection);
    // Over the private IPC channel, like the environment never visible to other users.
    const message: SettingsMessage = { type: 'settings', settings: this.settingsFor(slot, connection), ...(Object.keys(secrets).length > 0 ? { secrets } : {}) };
    child.send(message, (error) => {
      if (error) this.options.logger?.warn({ index: slot.index, err: error.message }, 'could not send a worker process its settings');
    });
  }

  /**
   * Resolves once `processes` of the processes (default: every one) have connected and are
   * pulling tasks, at least once each.
   */
  ready(processes = this.processes): Promise<void> {
    if (this.readyCount >= processes) return Promise.resolve();
    return new Promise((resolve) => this.readyWaiters.push({ processes, resolve }));
  }

  /** True while `start()`'s hold keeps every process back (none forked yet). */
  get holding(): boolean {
    return this.holdTimer !== undefined;
  }

  /** True once any process has been ready. */
  get anyReady(): boolean {
    return this.readyCount > 0;
  }

  /** The process ids of the live children (tests kill them). */
  pids(): number[] {
    return this.slots.flatMap((slot) => (slot.child?.pid && slot.child.exitCode === null ? [slot.child.pid] : []));
  }

  private spawn(slot: Slot): void {
    const env: NodeJS.ProcessEnv = { ...process.env, ...this.options.env };
    delete env.TALLY_WORKER_SETTINGS;
    delete env.TALLY_WORKER_SECRETS;
    const connection = this.options.connection;
    if (connection) {
      // Secrets travel in the child's environment, apart from the settings, never on its argv.
      env.TALLY_WORKER_SETTINGS = JSON.stringify(this.settingsFor(slot, connection));
      const secrets = connectionSecrets(connection);
      if (Object.keys(secrets).length > 0) env.TALLY_WORKER_SECRETS = JSON.stringify(secrets);
    }
    const child = fork(WORKER_PROGRAM, [], {
      env,
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      // In its own process group: a terminal's Ctrl-C reaches only the supervisor, which stops
      // each child in turn (and does not mistake a child stopped by the terminal for a crash).
      detached: true,
    });
    slot.child = child;
    slot.startedAt = Date.now();
    slot.needsSettings = !connection;
    let counted = false;
    child.on('message', (message: { type?: string }) => {
      if (message?.type === 'waiting' || message?.type === 'ready') this.spawnDeferred();
      // A child that says it waits for its settings has them already, or will once known.
      if (message?.type === 'waiting' && slot.child === child) this.sendSettings(slot);
      if (message?.type === 'ready' && !counted) {
        counted = true;
        this.readyCount++;
        const waiting = this.readyWaiters;
        this.readyWaiters = waiting.filter((waiter) => waiter.processes > this.readyCount);
        for (const waiter of waiting) if (waiter.processes <= this.readyCount) waiter.resolve();
      }
    });
    child.on('exit', (code, signal) => {
      if (slot.child === child) slot.child = null;
      if (this.stopping) return;
      this.spawnDeferred();
      // A child that got to work (or lived a while) and was then killed comes back at once; one
      // that keeps dying before it is ready (a crash loop) backs off.
      if (counted || Date.now() - slot.startedAt > 30_000) slot.restarts = 0;
      const delay = Math.min(5_000, 100 * 2 ** slot.restarts);
      slot.restarts++;
      this.options.logger?.warn({ index: slot.index, pid: child.pid, code, signal, restartInMs: delay }, 'worker process died; restarting');
      // Not unref'd: with every child dead, this timer is what keeps the supervisor alive.
      setTimeout(() => {
        if (!this.stopping) this.spawn(slot);
      }, delay);
    });
  }

  /**
   * Starts one more process: the embedded coordinator's stand-in gives its place back to one
   * (coordinator/embedded/stand-in.ts). Forked at once, or when the hold ends; kept running and
   * stopped like the others. Not once stopping.
   */
  addProcess(): void {
    if (this.stopping) return;
    const slot: Slot = { index: this.slots.length, child: null, restarts: 0, startedAt: 0, needsSettings: false };
    this.slots.push(slot);
    // While held, it starts with the deferred ones (spawnDeferred) once the hold is over.
    if (this.holdTimer === undefined) this.spawn(slot);
  }

  /** Asks every child to finish its task in hand and exit; kills stragglers after the timeout. */
  async stop(): Promise<void> {
    this.stopping = true;
    clearTimeout(this.holdTimer);
    this.holdTimer = undefined;
    const timeoutMs = this.options.stopTimeoutMs ?? 60_000;
    await Promise.all(
      this.slots.map(async (slot) => {
        const child = slot.child;
        if (!child || child.exitCode !== null || child.signalCode !== null) return;
        const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
        await exited;
        clearTimeout(timer);
      }),
    );
  }
}
