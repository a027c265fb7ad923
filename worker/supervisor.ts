/**
 * The worker supervisor: forks one OS process per core (JavaScript is single-threaded, so CPU
 * parallelism means processes, the seed lesson's point), restarts any that die, and on stop
 * asks each to finish its task in hand before exiting.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { availableParallelism } from 'node:os';
import type { Logger } from '../shared/log.js';
import { connectionSecrets, withoutSecrets, type ConnectionSettings } from '../shared/nats/connection.js';
import type { WorkerProcessSettings } from './process-main.js';

const PROCESS_MAIN = fileURLToPath(new URL('./process-main.js', import.meta.url));

export interface SupervisorOptions {
  connection: ConnectionSettings;
  /** Worker processes to keep running. Default: available parallelism. */
  processes?: number;
  logger: Logger;
  logLevel?: string;
  /** Extra environment for the children (test hooks). */
  env?: NodeJS.ProcessEnv;
  /** Milliseconds a child may take to finish its task after SIGTERM before it is killed. Default 60 s. */
  stopTimeoutMs?: number;
}

interface Slot {
  index: number;
  child: ChildProcess | null;
  restarts: number;
  startedAt: number;
}

/** Owns the worker child processes: starts, restarts and stops them. */
export class Supervisor {
  readonly processes: number;
  private readonly slots: Slot[] = [];
  private stopping = false;
  private readonly options: SupervisorOptions;
  private readyCount = 0;
  private readyWaiters: Array<() => void> = [];

  constructor(options: SupervisorOptions) {
    this.options = options;
    this.processes = Math.max(1, options.processes ?? availableParallelism());
  }

  /** Forks every process; resolves at once (see `ready()`). */
  start(): void {
    for (let index = 0; index < this.processes; index++) {
      const slot: Slot = { index, child: null, restarts: 0, startedAt: 0 };
      this.slots.push(slot);
      this.spawn(slot);
    }
  }

  /** Resolves once every process has connected and is pulling tasks (at least once each). */
  ready(): Promise<void> {
    if (this.readyCount >= this.processes) return Promise.resolve();
    return new Promise((resolve) => this.readyWaiters.push(resolve));
  }

  /** The process ids of the live children (tests kill them). */
  pids(): number[] {
    return this.slots.flatMap((slot) => (slot.child?.pid && slot.child.exitCode === null ? [slot.child.pid] : []));
  }

  private spawn(slot: Slot): void {
    // Secrets travel in the child's environment, apart from the settings, never on its argv.
    const settings: WorkerProcessSettings = {
      connection: withoutSecrets(this.options.connection),
      logLevel: this.options.logLevel,
      index: slot.index,
    };
    const secrets = connectionSecrets(this.options.connection);
    const env: NodeJS.ProcessEnv = { ...process.env, ...this.options.env, TALLY_WORKER_SETTINGS: JSON.stringify(settings) };
    if (Object.keys(secrets).length > 0) env.TALLY_WORKER_SECRETS = JSON.stringify(secrets);
    else delete env.TALLY_WORKER_SECRETS;
    const child = fork(PROCESS_MAIN, [], {
      env,
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    slot.child = child;
    slot.startedAt = Date.now();
    let counted = false;
    child.on('message', (message: { type?: string }) => {
      if (message?.type === 'ready' && !counted) {
        counted = true;
        this.readyCount++;
        if (this.readyCount >= this.processes) for (const resolve of this.readyWaiters.splice(0)) resolve();
      }
    });
    child.on('exit', (code, signal) => {
      if (slot.child === child) slot.child = null;
      if (this.stopping) return;
      // A child that lived a while gets restarted at once; one that keeps dying backs off.
      if (Date.now() - slot.startedAt > 30_000) slot.restarts = 0;
      const delay = Math.min(5_000, 100 * 2 ** slot.restarts);
      slot.restarts++;
      this.options.logger.warn({ index: slot.index, pid: child.pid, code, signal, restartInMs: delay }, 'worker process died; restarting');
      // Not unref'd: with every child dead, this timer is what keeps the supervisor alive.
      setTimeout(() => {
        if (!this.stopping) this.spawn(slot);
      }, delay);
    });
  }

  /** Asks every child to finish its task in hand and exit; kills stragglers after the timeout. */
  async stop(): Promise<void> {
    this.stopping = true;
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
