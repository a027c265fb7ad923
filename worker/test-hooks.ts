/**
 * Fault injection for the reliability tests. Enabled only by the TALLY_TEST_HOOKS environment
 * variable of the worker process itself, so nothing arriving on the wire can switch it on:
 * a message can at most match a pattern that a test already armed.
 *
 * TALLY_TEST_HOOKS='{"throwWhenInputIncludes":"poison.txt","crashWhenInputIncludes":"crash.txt","delayMs":0}'
 */
import type { TaskHeader } from '../shared/nats/envelope.js';

interface HookSettings {
  throwWhenInputIncludes?: string;
  crashWhenInputIncludes?: string;
  /** Busy-waits this long before each map, to make tasks slow without changing them. */
  busyMs?: number;
  /** Busy-waits this long before each reduce task (and not before maps). */
  busyReduceMs?: number;
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
  /** Runs before each map; a no-op unless a test armed it. */
  beforeMap(task: TaskHeader): void {
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
