/**
 * Fault injection for the reliability tests. Enabled only by the TALLY_TEST_HOOKS environment
 * variable of the worker process itself, so nothing arriving on the wire can switch it on:
 * a message can at most match a pattern that a test already armed.
 *
 * TALLY_TEST_HOOKS='{"throwWhenInputIncludes":"poison.txt","crashWhenInputIncludes":"crash.txt","delayMs":0}'
 *
 * With TALLY_TEST_HOOKS unset (any real run), every hook is a no-op.
 */
import { existsSync } from 'node:fs';
import type { TaskHeader } from '../shared/nats/envelope.js';
import { setting } from '../shared/settings.js';

interface HookSettings {
  throwWhenInputIncludes?: string;
  /** Throws on the first `failDeliveries` deliveries (default 1) of each task whose input includes this text, then maps it. */
  failWhenInputIncludes?: string;
  failDeliveries?: number;
  crashWhenInputIncludes?: string;
  /** Busy-waits this long before each map, to make tasks slow without changing them. */
  busyMs?: number;
  /** Busy-waits this long before each reduce task (and not before maps). */
  busyReduceMs?: number;
  /**
   * Writes one JSON line to stderr as each map (or reduce) task starts, before any busy-wait:
   * `{"hook":"map","pid":…,"input":…,"time":…}`, so that a test can act while a task is in hand.
   */
  announceMaps?: boolean;
  /**
   * While this file exists, the worker process exits (code 3) as soon as it starts, before it
   * connects: a crash loop before ready, which the supervisor backs off. Each start writes
   * `{"hook":"start","pid":…,"exiting":…,"time":…}` to stderr.
   */
  exitAtStartWhileFileExists?: string;
  /**
   * Holds the map of each task whose input includes this text, without blocking the event loop
   * (the worker renews its lease on the task as in any long map): for `holdMs`, or while the file
   * `holdWhileFileExists` exists, whichever is given (both: until both are over). As a hold
   * begins the worker writes `{"hook":"hold","pid":…,"input":…,"time":…}` to stderr, so a test
   * knows a task is in hand and cannot finish before the test lets it.
   */
  holdWhenInputIncludes?: string;
  holdMs?: number;
  holdWhileFileExists?: string;
  /**
   * Before it stores a batch's result (and each of its shares), the worker also stores each task
   * of the batch on its own, as a single-task result (share): what differently batched attempts
   * at the same tasks leave on the server. Whoever folds them must fold each task id once.
   */
  duplicateBatchesAsSingles?: boolean;
  /**
   * Lets the embedded coordinator's stand-in worker (coordinator/embedded/stand-in.ts) take
   * tasks under these hooks. Without it, armed hooks (some crash the process they run in) keep
   * the stand-in off: the tests that arm them mean the worker processes.
   */
  standIn?: boolean;
  /** How long a small job's worker processes are held back (see SMALL_JOB_HOLD_MS in prestart.ts). */
  smallJobHoldMs?: number;
  /** The most distinct words a reduce task of the stand-in holds before it gives the task back (see stand-in.ts). */
  standInReduceKeys?: number;
}

const settings = setting('TALLY_TEST_HOOKS') as HookSettings;

export const testHooks = {
  /** Runs first thing in a worker process; a no-op unless a test armed it. */
  atStart(): void {
    const marker = settings.exitAtStartWhileFileExists;
    if (!marker) return;
    const exiting = existsSync(marker);
    // Synchronous on a pipe (Linux), so the line is out before the exit.
    process.stderr.write(JSON.stringify({ hook: 'start', pid: process.pid, exiting, time: Date.now() }) + '\n');
    if (exiting) process.exit(3);
  },

  /**
   * Runs before each map task, after beforeMap: undefined (nothing to wait for) unless a test
   * armed a hold for this task, else a promise that resolves when the hold is over.
   */
  hold(task: TaskHeader): Promise<void> | undefined {
    const pattern = settings.holdWhenInputIncludes;
    if (pattern === undefined || !task.input.includes(pattern)) return undefined;
    const { holdMs, holdWhileFileExists } = settings;
    if (!holdMs && !holdWhileFileExists) return undefined;
    process.stderr.write(JSON.stringify({ hook: 'hold', pid: process.pid, input: task.input, time: Date.now() }) + '\n');
    const until = Date.now() + (holdMs ?? 0);
    return new Promise((resolve) => {
      const check = () => {
        if (Date.now() >= until && !(holdWhileFileExists && existsSync(holdWhileFileExists))) resolve();
        else setTimeout(check, 20);
      };
      check();
    });
  },

  /** False when a test armed hooks for the worker processes only (see HookSettings.standIn). */
  allowStandIn(): boolean {
    return Object.keys(settings).length === 0 || settings.standIn === true;
  },

  /** The hold a test set for a small job's worker processes, if any. */
  smallJobHoldMs(): number | undefined {
    return settings.smallJobHoldMs;
  },

  /** A test's limit on the stand-in's reduce partitions, if any. */
  standInReduceKeys(): number | undefined {
    return settings.standInReduceKeys;
  },

  /** True when a test asked for each batch's tasks to be stored a second time, one by one. */
  duplicateBatchesAsSingles(): boolean {
    return settings.duplicateBatchesAsSingles === true;
  },

  /** Runs before each map (`deliveries`: which delivery of the task message); a no-op unless a test armed it. */
  beforeMap(task: TaskHeader, deliveries = 1): void {
    if (settings.announceMaps) process.stderr.write(JSON.stringify({ hook: 'map', pid: process.pid, input: task.input, time: Date.now() }) + '\n');
    const busy = task.reduce ? (settings.busyReduceMs ?? settings.busyMs) : settings.busyMs;
    if (busy) {
      const until = Date.now() + busy;
      while (Date.now() < until);
    }
    if (settings.crashWhenInputIncludes && task.input.includes(settings.crashWhenInputIncludes)) {
      process.kill(process.pid, 'SIGKILL');
    }
    if (settings.throwWhenInputIncludes && task.input.includes(settings.throwWhenInputIncludes)) {
      throw new Error(`test hook: injected failure on ${task.input}`);
    }
    if (settings.failWhenInputIncludes && task.input.includes(settings.failWhenInputIncludes) && deliveries <= (settings.failDeliveries ?? 1)) {
      throw new Error(`test hook: injected failure of delivery ${deliveries} on ${task.input}`);
    }
  },
};
