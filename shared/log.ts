/**
 * Structured logs: pino JSON on stderr, so stdout carries only results. CLI commands are quiet
 * by default (level "warn"); `tally worker` logs at "info".
 *
 * pino itself is loaded by the first line actually written: loading it costs ~10 ms of CPU per
 * process, and a command at its default level, like an embedded worker, usually writes none.
 */
import { createRequire } from 'node:module';
import type { LogFn, Logger as PinoLogger } from 'pino';
import { UsageError } from './errors.js';

/** The part of pino's logger tally uses; lines are pino's JSON either way. */
export interface Logger {
  readonly level: string;
  isLevelEnabled(level: string): boolean;
  child(bindings: Record<string, unknown>): Logger;
  fatal: LogFn;
  error: LogFn;
  warn: LogFn;
  info: LogFn;
  debug: LogFn;
  trace: LogFn;
}

/** Keys whose values must never reach a log line, at the top level or up to two levels down. */
const SECRET_KEYS = ['password', 'pass', 'token', 'auth_token', 'nkey', 'seed', 'creds', 'secret', 'secrets', 'TALLY_WORKER_SECRETS', 'NATS_PASSWORD', 'NATS_TOKEN'];
export const REDACT = SECRET_KEYS.flatMap((key) => [key, `*.${key}`, `*.*.${key}`]);

/** pino's levels; anything else is a usage error. */
const LEVELS: Record<string, number> = { trace: 10, debug: 20, info: 30, warn: 40, error: 50, fatal: 60, silent: Infinity };

type Pino = typeof import('pino').pino;
let loadedPino: Pino | undefined;
function loadPino(): Pino {
  // pino is CommonJS: required synchronously, so that logging stays a synchronous call.
  return (loadedPino ??= (createRequire(import.meta.url)('pino') as { pino: Pino }).pino);
}

/** Writes through a pino logger made on the first line at an enabled level. */
class LazyLogger implements Logger {
  private real: PinoLogger | undefined;

  constructor(
    readonly level: string,
    private readonly threshold: number,
    private readonly make: () => PinoLogger,
  ) {}

  private get pino(): PinoLogger {
    return (this.real ??= this.make());
  }

  isLevelEnabled(level: string): boolean {
    return (LEVELS[level] ?? 0) >= this.threshold;
  }

  child(bindings: Record<string, unknown>): Logger {
    return new LazyLogger(this.level, this.threshold, () => this.pino.child(bindings));
  }

  private at(level: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace'): LogFn {
    const value = LEVELS[level]!;
    return ((...args: unknown[]) => {
      if (value >= this.threshold) (this.pino[level] as (...a: unknown[]) => void)(...args);
    }) as LogFn;
  }

  readonly fatal = this.at('fatal');
  readonly error = this.at('error');
  readonly warn = this.at('warn');
  readonly info = this.at('info');
  readonly debug = this.at('debug');
  readonly trace = this.at('trace');
}

/** A line drawn on stderr that log lines must not be written into (the progress bar). */
export interface StatusLine {
  /** Erases the line, leaving the cursor at its start. */
  clear(): void;
  /** Draws it again below what was written. */
  redraw(): void;
}

let statusLine: StatusLine | null = null;

/**
 * Registers the line being drawn on stderr (null: none). While one is, log lines erase it, are
 * written, and let it be drawn again under them, instead of landing in the middle of it.
 */
export function setStatusLine(line: StatusLine | null): void {
  statusLine = line;
}

/** pino's stderr destination, wrapped so that a status line is cleared around each log line. */
function stderrDestination(pino: Pino): { write(text: string): void } {
  const direct = pino.destination({ fd: 2, sync: true });
  return {
    write(text: string): void {
      const line = statusLine;
      if (!line) {
        direct.write(text);
        return;
      }
      line.clear();
      // A status line is drawn only on a terminal, written synchronously like this.
      process.stderr.write(text);
      line.redraw();
    },
  };
}

/** A logger writing JSON lines to stderr. `level` falls back to LOG_LEVEL, then to `fallback`. */
export function createLogger(options: { level?: string; fallback?: string; bindings?: Record<string, unknown> } = {}): Logger {
  const level = options.level ?? process.env.LOG_LEVEL ?? options.fallback ?? 'warn';
  const make = (): PinoLogger => {
    const pino = loadPino();
    return pino(
      { level, base: { pid: process.pid, ...options.bindings }, redact: { paths: REDACT, censor: '[redacted]' } },
      stderrDestination(pino),
    );
  };
  const threshold = LEVELS[level];
  if (threshold === undefined) {
    const source = options.level !== undefined ? '--log-level' : process.env.LOG_LEVEL !== undefined ? 'LOG_LEVEL' : 'log level';
    throw new UsageError(`${source}: unknown level '${level}' (one of ${Object.keys(LEVELS).join(', ')})`);
  }
  return new LazyLogger(level, threshold, make);
}
