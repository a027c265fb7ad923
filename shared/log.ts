/**
 * Structured logs: pino JSON on stderr, so stdout carries only results. CLI commands are quiet
 * by default (level "warn"); `tally worker` logs at "info".
 */
import { pino, type Logger } from 'pino';

export type { Logger };

/** Keys whose values must never reach a log line, at the top level or up to two levels down. */
const SECRET_KEYS = ['password', 'pass', 'token', 'auth_token', 'nkey', 'seed', 'creds', 'secret', 'secrets', 'TALLY_WORKER_SECRETS', 'NATS_PASSWORD', 'NATS_TOKEN'];
export const REDACT = SECRET_KEYS.flatMap((key) => [key, `*.${key}`, `*.*.${key}`]);

/** A logger writing JSON lines to stderr. `level` falls back to LOG_LEVEL, then to `fallback`. */
export function createLogger(options: { level?: string; fallback?: string; bindings?: Record<string, unknown> } = {}): Logger {
  const level = options.level ?? process.env.LOG_LEVEL ?? options.fallback ?? 'warn';
  return pino(
    { level, base: { pid: process.pid, ...options.bindings }, redact: { paths: REDACT, censor: '[redacted]' } },
    pino.destination({ fd: 2, sync: true }),
  );
}
