/**
 * Retrying JetStream calls through transient failures: a server restart, a leader election
 * ("no responders", reported as "jetstream is not enabled"), a request timeout. Publishing again
 * with the same message id is safe: the server deduplicates it.
 */
import { describeError } from '../errors.js';
import type { Logger } from '../log.js';
import { isTransient } from './errors.js';

export interface RetryOptions {
  /** Give up after this many milliseconds of failures. Default 120 s. */
  deadlineMs?: number;
  /** Called before each retry, for a log line. */
  onRetry?: (error: unknown, attempt: number) => void;
  /** Stop retrying once this returns true (the job ended meanwhile). */
  cancelled?: () => boolean;
}

/** Runs `fn`, retrying transient failures with capped exponential backoff. */
export async function withRetry<T>(fn: () => Promise<T>, options: RetryOptions = {}): Promise<T> {
  const deadline = Date.now() + (options.deadlineMs ?? 120_000);
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn();
    } catch (error) {
      if (!isTransient(error) || Date.now() > deadline || options.cancelled?.()) throw error;
      options.onRetry?.(error, attempt);
      await new Promise((resolve) => setTimeout(resolve, Math.min(2000, 50 * 2 ** attempt)));
    }
  }
}

/** How long setting up tally's streams and buckets is retried before the command gives up. */
export const SET_UP_DEADLINE_MS = 30_000;

/**
 * Runs one step of setting up tally's streams, buckets or consumer, retrying transient failures
 * for up to 30 s with a warning each time: on the first use of a brand-new cluster on a loaded
 * machine, creating a replicated stream can outlast the 5 s JetStream API timeout, or meet a
 * leader election. Each step is idempotent (it looks before it creates and accepts "already
 * exists"), so a retry after a request that timed out but took effect is harmless.
 */
export function setUpWithRetry<T>(what: string, fn: () => Promise<T>, log: Pick<Logger, 'warn'>): Promise<T> {
  return withRetry(fn, {
    deadlineMs: SET_UP_DEADLINE_MS,
    onRetry: (error, attempt) => log.warn({ err: describeError(error), attempt }, `setting up ${what} failed; retrying`),
  });
}
