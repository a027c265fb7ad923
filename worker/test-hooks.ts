/**
 * Fault injection for the reliability tests. Enabled only by the TALLY_TEST_HOOKS environment
 * variable of the worker process itself, so nothing arriving on the wire can switch it on:
 * a message can at most match a pattern that a test already armed.
 *
 * TALLY_TEST_HOOKS='{"throwWhenInputIncludes":"poison.txt","crashWhenInputIncludes":"crash.txt","delayMs":0}'
 */
import { existsSync } from 'node:fs';
import type { TaskHeader } from '../shared/nats/envelope.js';

interface HookSettings {
  throwWhenInputIncludes?: string;
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
   * Map tasks whose input includes `holdWhenInputIncludes` wait (without blocking the event
   * loop, so the task stays acknowledged as in progress) while the file `holdWhileFileExists`
   * exists: a test holds a job part way, looks at it, and lets it go by deleting the file.
   */
  holdWhenInputIncludes?: string;
  holdWhileFileExists?: string;
}

function load(): HookSettings {
  const raw = process.env.TALLY_TEST_HOOKS;
  if (!raw) return {};
  try {
    return JSON.parse(raw) as HookSettings;
  } catch {
    return {};
  }
}

const settings = load();

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

  /** A wait before a held map task (see holdWhenInputIncludes); undefined unless a test armed it. */
  holdMap(task: TaskHeader): Promise<void> | undefined {
    const gate = settings.holdWhileFileExists;
    if (!gate || !settings.holdWhenInputIncludes || task.reduce || !task.input.includes(settings.holdWhenInputIncludes) || !existsSync(gate)) return undefined;
    return new Promise((resolve) => {
      const timer = setInterval(() => {
        if (existsSync(gate)) return;
        clearInterval(timer);
        resolve();
      }, 50);
    });
  },

  /** Runs before each map; a no-op unless a test armed it. */
  beforeMap(task: TaskHeader): void {
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
  },
};
