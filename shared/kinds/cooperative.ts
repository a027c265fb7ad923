/**
 * CPU-bound maps (a sieve, a product tree) block their process's event loop, and with it the
 * heartbeats that keep a task's lease. They call the pause this returns between steps: it
 * yields to the event loop every 50 ms and tells JetStream the task is alive every 5 s.
 */
import type { MapContext } from './kind.js';

/** Yield the event loop at least this often (ms). */
const YIELD_INTERVAL_MS = 50;
/** Tell JetStream a long task is alive this often (ms), well within any sane ack wait. */
const WORKING_INTERVAL_MS = 5_000;

/** A pause to await between steps of a long map; resolves at once (undefined) most of the time. */
export function cooperativePause(context: MapContext): () => Promise<void> | undefined {
  let lastYield = performance.now();
  let lastWorking = lastYield;
  return () => {
    const now = performance.now();
    if (now - lastWorking >= WORKING_INTERVAL_MS) {
      lastWorking = now;
      context.working();
    }
    if (now - lastYield < YIELD_INTERVAL_MS) return undefined;
    lastYield = now;
    // A superseded copy stops within a yield interval, not after a heavy task nobody needs.
    context.checkWanted?.();
    return new Promise((resolve) => setImmediate(resolve));
  };
}
