/**
 * Retrying JetStream calls through transient failures: a server restart, a leader election
 * ("no responders", reported as "jetstream is not enabled"), a request timeout. Publishing again
 * with the same message id is safe: the server deduplicates it.
 */
import { describeError } from '../errors.js';

const TRANSIENT = /timeout|timed out|no responders|503|not enabled|disconnect|reconnect|connection lost|stale connection|not ready|leader/i;

/** True for failures that a retry can cure. A closed connection is not one. */
export function isTransient(error: unknown): boolean {
  const text = describeError(error);
  return TRANSIENT.test(text) && !/closed/i.test(text);
}

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
