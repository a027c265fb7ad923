/**
 * What every command shares: the common options, parsing helpers, and running a job with a
 * progress bar and Ctrl-C handling inside one session.
 */
import { Option, type Command } from 'commander';
import type { AnyJobKind, Json } from '../../shared/kinds/kind.js';
import { createLogger, type Logger } from '../../shared/log.js';
import { UsageError } from '../../shared/errors.js';
import { Session } from '../session.js';
import { runJob } from '../job-runner.js';
import { ProgressBar } from '../progress.js';
import type { Format } from '../output.js';
import type { JobRecord } from '../job-store.js';

/** Options every command accepts. */
export interface CommonOptions {
  server?: string;
  workers?: number;
  logLevel?: string;
  progress: boolean;
}

/** Adds --server, --workers, --log-level and --no-progress to a command. */
export function withCommonOptions(command: Command): Command {
  return command
    .option('--server <url>', 'NATS server URL(s), comma-separated (default: $NATS_URL, else an embedded local server)')
    .option('--workers <n>', 'embedded mode: worker processes to start (default: number of cores)', (v) => parseCount(v, '--workers', 0, 1024))
    .option('--log-level <level>', 'pino log level: trace, debug, info, warn, error, silent (default: $LOG_LEVEL, else warn)')
    .option('--no-progress', 'no progress bar on stderr');
}

/** A --format option limited to `choices`. */
export function formatOption(choices: Format[], fallback: Format = 'table'): Option {
  return new Option('--format <format>', 'output format').choices(choices).default(fallback);
}

/** Parses a whole number option within [min, max], or throws a UsageError naming it. */
export function parseCount(value: string, name: string, min: number, max: number): number {
  const text = value.replace(/_/g, '');
  if (!/^\d+$/.test(text)) throw new UsageError(`${name}: '${value}' is not a whole number`);
  const n = Number(text);
  if (!Number.isSafeInteger(n) || n < min || n > max) throw new UsageError(`${name}: ${value} is out of range (${min}..${max})`);
  return n;
}

const SIZE_UNITS: Record<string, number> = { '': 1, b: 1, k: 1024, kb: 1000, kib: 1024, m: 1024 ** 2, mb: 1e6, mib: 1024 ** 2 };

/** Parses a byte size such as 65536, 64K, 64KiB, 1M, 1MiB, 1MB within [min, max]. */
export function parseByteSize(value: string, name: string, min: number, max: number): number {
  const match = /^(\d+(?:\.\d+)?)\s*([a-z]*)$/i.exec(value.trim().replace(/_/g, ''));
  const unit = match ? SIZE_UNITS[match[2]!.toLowerCase()] : undefined;
  if (!match || unit === undefined) throw new UsageError(`${name}: '${value}' is not a byte size (examples: 65536, 64K, 1M)`);
  const n = Math.round(Number(match[1]) * unit);
  if (n < min || n > max) throw new UsageError(`${name}: ${value} is out of range (${min}..${max} bytes)`);
  return n;
}

export function commandLogger(options: CommonOptions): Logger {
  return createLogger({ level: options.logLevel, fallback: 'warn', bindings: { role: 'coordinator' } });
}

/** Opens a session for a command, runs `body`, and always closes the session. */
export async function withSession<T>(options: CommonOptions & { workers?: number }, body: (session: Session, logger: Logger) => Promise<T>, workers?: number): Promise<T> {
  const logger = commandLogger(options);
  const session = await Session.open({ server: options.server, workers: workers ?? options.workers, logger, logLevel: options.logLevel });
  try {
    return await body(session, logger);
  } finally {
    await session.close();
  }
}

/** Aborted on the first SIGINT/SIGTERM; a second one exits at once with 130. */
export function interruptSignal(): { signal: AbortSignal; dispose(): void } {
  const controller = new AbortController();
  const onSignal = () => {
    if (controller.signal.aborted) process.exit(130);
    controller.abort();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  return {
    signal: controller.signal,
    dispose: () => {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    },
  };
}

/**
 * Runs a job of `kind` with a progress bar; the result is printed by the caller with `print`
 * before the session closes (an embedded owner may wait for other users of its server).
 */
export async function runKindJob(
  kind: AnyJobKind,
  jobOptions: Json,
  options: CommonOptions,
  print: (result: Json) => void,
  extra: { resume?: JobRecord } = {},
): Promise<Json> {
  // Bad arguments fail here, before any server or worker is started.
  await kind.plan(jobOptions);
  const interrupt = interruptSignal();
  try {
    return await withSession(
      options,
      async (session, logger) => {
        const bar = new ProgressBar({ enabled: options.progress });
        try {
          const { result } = await runJob({
            nc: session.nc,
            js: session.js,
            jsm: session.jsm,
            store: session.store,
            partials: session.partials,
            logger,
            kind,
            options: jobOptions,
            maxBodyBytes: session.maxBodyBytes,
            onProgress: (p) => bar.update(p),
            signal: interrupt.signal,
            resume: extra.resume,
          });
          bar.finish();
          print(result);
          return result;
        } finally {
          bar.finish();
        }
      },
    );
  } finally {
    interrupt.dispose();
  }
}
