/**
 * What every command shares: the common options, parsing helpers, and running a job with a
 * progress bar and Ctrl-C handling inside one session.
 */
import { Option, type Command } from '../commander.js';
import type { AnyJobKind } from '../../shared/kinds/kind.js';
import type { Json } from '../../shared/json.js';
import { createLogger, type Logger } from '../../shared/log.js';
import { ServerError, UsageError } from '../../shared/errors.js';
import { redact, resolveConnection, type ConnectionFlags, type ConnectionSettings } from '../../shared/nats/connection-settings.js';
import { permissionDenied } from '../../shared/nats/permissions.js';
import type { Session } from '../session.js';
import { acquireEmbeddedServer } from '../embedded/server.js';
import { takePreparedSession, takePrestartedServer } from '../embedded/prestart.js';
import { ProgressBar } from '../progress.js';
import { DEFAULT_BACKUPS } from '../backup-tasks.js';
import type { Format } from '../output.js';
import type { JobStore, StoredJobRecord } from '../job-store.js';
import { loadKind } from '../../shared/kinds/index.js';
import { inCommandLineTerms, loadKindCli, noteSkipped } from '../kind-cli.js';
import { MAX_SKIPPED_TASKS } from '../../shared/nats/envelope.js';
import { SKIP_FIELD, parseSkipFailed, skipLimitFor, type SkipLimit } from '../skipped-tasks.js';

/** Options every command accepts. */
export interface CommonOptions extends ConnectionFlags {
  server?: string;
  workers?: number;
  logLevel?: string;
  progress: boolean;
  /** Job commands: watch the job in a dashboard this process serves on loopback. */
  dashboard?: boolean;
  /** Job commands: false with --no-backup-tasks. */
  backupTasks?: boolean;
  /** Job commands: --backup-after, a multiple of the median task time. */
  backupAfter?: number;
  /** Job commands: how many tasks that fail on every delivery the job may skip. */
  skipFailed?: SkipLimit;
}

/**
 * Adds the credential and TLS options (each with its NATS_* environment fallback) to a command.
 * Secret options show no default in --help: their values come from the flag or the environment
 * only when the command runs.
 */
export function withConnectionOptions(command: Command): Command {
  return command
    .option('--user <name>', 'NATS user name (env NATS_USER)')
    .option('--password <password>', 'NATS password (env NATS_PASSWORD; prefer the environment: arguments are visible to other local users)')
    .option('--token <token>', 'NATS authentication token (env NATS_TOKEN; prefer the environment)')
    .option('--nkey <file>', 'file holding a user NKey seed (env NATS_NKEY)')
    .option('--creds <file>', 'NATS .creds file: user JWT and NKey seed (env NATS_CREDS)')
    .option('--tls-ca <file>', 'CA certificate (PEM) to verify the server with (env NATS_TLS_CA); tls:// URLs require TLS')
    .option('--tls-cert <file>', 'client certificate (PEM) for mutual TLS (env NATS_TLS_CERT)')
    .option('--tls-key <file>', 'private key (PEM) of the client certificate (env NATS_TLS_KEY)')
    .option('--inbox-prefix <prefix>', 'reply subject prefix (env NATS_INBOX_PREFIX; default _INBOX_<user> with --user, else _INBOX)');
}

/** Adds --server, the credential and TLS options, --workers, --log-level and --no-progress to a command. */
export function withCommonOptions(command: Command): Command {
  command.option('--server <url>', 'NATS server URL(s), comma-separated; nats:// or tls:// (default: $NATS_URL, else an embedded local server)');
  return withConnectionOptions(command)
    .option('--workers <n>', 'embedded mode: worker processes to start (default: one per core but one, and the coordinator maps too)', (v) => parseCount(v, '--workers', 0, 1024))
    .option('--log-level <level>', 'pino log level: trace, debug, info, warn, error, silent (default: $LOG_LEVEL, else warn)')
    .option('--no-progress', 'no progress bar on stderr');
}

/** Adds --dashboard to a command that runs a job (each kind's, and resume). */
export function withDashboardOption(command: Command): Command {
  return command.option('--dashboard', 'serve a live view of the job on 127.0.0.1 (port 8040, else any free port) while it runs; its address goes to stderr');
}

/** Adds the backup-task options to a command that runs a job (each kind's, and resume). */
export function withBackupOptions(command: Command): Command {
  return command
    .option('--no-backup-tasks', 'never back up a straggling task (by default, once every task has started, one running much longer than the median gets a copy on an idle worker)')
    .option('--backup-after <x>', `a task is a straggler after X times the median task time of its phase (and at least ${DEFAULT_BACKUPS.minMs / 1000} s; default ${DEFAULT_BACKUPS.after})`, (v) => parsePositive(v, '--backup-after'));
}

/** A positive number option, or a UsageError naming it. */
function parsePositive(value: string, name: string): number {
  const n = Number(value);
  if (!/^\d+(\.\d+)?$/.test(value) || !(n > 0) || n > 1000) throw new UsageError(`${name}: expected a number above 0 and at most 1000, got '${value}'`);
  return n;
}

/** Adds --skip-failed to a command that submits a job (each kind's; resume keeps the job's own). */
export function withSkipFailedOption(command: Command): Command {
  return command.option(
    '--skip-failed <n>',
    `finish the job when at most N tasks fail on every delivery, leaving their inputs out of the result (which lists them); N tasks (0..${MAX_SKIPPED_TASKS}), or a fraction of the tasks: 0.01, 1%`,
    parseSkipFailed,
  );
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

const SIZE_UNITS: Record<string, number> = { '': 1, b: 1, k: 1024, kb: 1000, kib: 1024, m: 1024 ** 2, mb: 1e6, mib: 1024 ** 2, g: 1024 ** 3, gb: 1e9, gib: 1024 ** 3 };

/** Parses a byte size such as 65536, 64K, 64KiB, 1M, 1MiB, 1MB within [min, max]. */
export function parseByteSize(value: string, name: string, min: number, max: number): number {
  const match = /^(\d+(?:\.\d+)?)\s*([a-z]*)$/i.exec(value.trim().replace(/_/g, ''));
  const unit = match ? SIZE_UNITS[match[2]!.toLowerCase()] : undefined;
  if (!match || unit === undefined) throw new UsageError(`${name}: '${value}' is not a byte size (examples: 65536, 64K, 1M)`);
  const n = Math.round(Number(match[1]) * unit);
  if (n < min || n > max) throw new UsageError(`${name}: ${value} is out of range (${min}..${max} bytes)`);
  return n;
}

/**
 * The files a stored job read, located as `tally resume` reads them (from the directory the job
 * was submitted in); stdin, another process's, is left out. Empty for kinds that read no files.
 */
export async function storedInputFiles(kindName: string, jobArgs: Json): Promise<string[]> {
  const kind = await loadKind(kindName);
  if (!kind?.files || jobArgs === null || typeof jobArgs !== 'object') return [];
  return kind.files(jobArgs).filter((input) => input.path !== '-').map((input) => input.location);
}

/** A path option that may not be empty (an empty --output would quietly mean stdout). */
export function parsePath(value: string, name: string): string {
  if (value === '') throw new UsageError(`${name}: the path is empty`);
  return value;
}

export function commandLogger(options: CommonOptions): Logger {
  return createLogger({ level: options.logLevel, fallback: 'warn', bindings: { role: 'coordinator' } });
}

/**
 * Opens a session for a command, runs `body`, and always closes the session. A permissions
 * violation anywhere becomes a ServerError saying which subject was denied; no error message
 * carries a password or token.
 */
export async function withSession<T>(options: CommonOptions & { workers?: number }, body: (session: Session, logger: Logger) => Promise<T>, workers?: number): Promise<T> {
  const logger = commandLogger(options);
  const connection = resolveConnection(options);
  // Nobody else can join an embedded server (it takes this run's token): a job there needs its own workers.
  if (!connection && workers === undefined && options.workers === 0) {
    throw new UsageError('--workers: an embedded run needs at least 1 worker process (or give --server and start `tally worker` there)');
  }
  // The NATS client modules load (tens of ms) while an embedded server starts.
  const loading = import('../session.js');
  const embedded = connection ? undefined : (takePrestartedServer() ?? acquireEmbeddedServer(logger));
  embedded?.catch(() => undefined);
  let session: Session | undefined;
  try {
    const { Session } = await loading.catch(async (error: unknown) => {
      await (await embedded?.catch(() => undefined))?.release();
      throw error;
    });
    // Commands that start no embedded workers only read (jobs, result, workers).
    const purpose = workers === 0 ? 'read' : 'job';
    // Set up ahead for a job only (see prestartEmbedded).
    const prepared = embedded && purpose === 'job' ? takePreparedSession() : undefined;
    session = await Session.open({ connection, embedded, prepared, workers: workers ?? options.workers, logger, logLevel: options.logLevel, purpose });
    return await body(session, logger);
  } catch (error) {
    throw explainNatsError(error, connection, session?.server);
  } finally {
    await session?.close();
  }
}

/**
 * A permissions violation (possibly wrapped) becomes a ServerError naming the server and the
 * denied subject; other errors pass through with any secret removed from their message.
 */
export function explainNatsError(error: unknown, connection: ConnectionSettings | undefined, server?: string): unknown {
  const where = server ?? (connection ? connection.servers.join(',') : 'embedded nats-server');
  const denied = permissionDenied(error);
  if (denied && !(error instanceof ServerError && /permission denied/.test(error.message))) return new ServerError(where, denied, { cause: error });
  if (error instanceof Error && connection) {
    const clean = redact(error.message, connection);
    if (clean !== error.message) error.message = clean;
  }
  return error;
}

/** The signals that cancel a job: Ctrl-C, a polite kill, the terminal closing (guardSignals in embedded/prestart.ts lists them too). */
const INTERRUPT_SIGNALS: readonly NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];

let terminalMayVanish = false;

/**
 * A closed terminal fails every write to it (EIO), possibly before its SIGHUP arrives. Unheard,
 * such an error on stderr (the progress bar, the closing message) would crash the process half
 * way through cancelling its job, leaving the record `running` and the embedded server orphaned.
 * stdout has its own listener (cli.ts). Never removed: the process's last words fail as well.
 */
function surviveLostTerminal(): void {
  if (terminalMayVanish) return;
  terminalMayVanish = true;
  process.stderr.on('error', () => undefined);
}

/**
 * Aborted on the first SIGINT, SIGTERM or SIGHUP (exit 130 follows once the job is cancelled);
 * a second SIGINT or SIGTERM exits at once with 130. A second SIGHUP does not: when a terminal
 * closes, the kernel and the shell each send one.
 */
export function interruptSignal(): { signal: AbortSignal; dispose(): void } {
  const controller = new AbortController();
  surviveLostTerminal();
  const onSignal = (signal: NodeJS.Signals) => {
    if (!controller.signal.aborted) controller.abort();
    else if (signal !== 'SIGHUP') process.exit(130);
  };
  for (const signal of INTERRUPT_SIGNALS) process.on(signal, onSignal);
  return {
    signal: controller.signal,
    dispose: () => {
      for (const signal of INTERRUPT_SIGNALS) process.off(signal, onSignal);
    },
  };
}

/**
 * Runs a job of the kind called `kindName` with a progress bar; the result is printed by the
 * caller with `print` before the session closes (an embedded owner may wait for other users of
 * its server). The kind's OptionErrors name the command line's flags.
 */
export async function runKindJob(
  kindName: string,
  jobOptions: Json,
  options: CommonOptions,
  print: (result: Json, store: JobStore) => void | Promise<void>,
  extra: { resume?: StoredJobRecord } = {},
): Promise<Json> {
  // Job kinds load with the command that runs them, not with the CLI.
  const [kind, cli] = await Promise.all([loadKind(kindName), loadKindCli(kindName)]);
  if (!kind) throw new UsageError(`unknown job kind '${kindName}'`);
  const flags = { ...cli.flags, [SKIP_FIELD]: '--skip-failed' };
  // In the job's options, so that `tally resume` (which has no such flag) keeps the job's.
  const withSkip = options.skipFailed === undefined || jobOptions === null || typeof jobOptions !== 'object' || Array.isArray(jobOptions) ? jobOptions : { ...jobOptions, [SKIP_FIELD]: options.skipFailed };
  // The note goes with the printed result; resume prints through printResult, which says it.
  const printed = extra.resume ? print : async (result: Json, store: JobStore) => {
    await print(result, store);
    noteSkipped(result, options as { format?: Format; output?: string });
  };
  try {
    skipLimitFor(kind, withSkip);
    return await runLoadedKindJob(kind, withSkip, options, printed, extra);
  } catch (error) {
    throw inCommandLineTerms(error, flags);
  }
}

async function runLoadedKindJob(
  kind: AnyJobKind,
  jobOptions: Json,
  options: CommonOptions,
  print: (result: Json, store: JobStore) => void | Promise<void>,
  extra: { resume?: StoredJobRecord },
): Promise<Json> {
  // Bad arguments fail here, before any server is started (and prestarted workers are let go).
  await kind.plan(jobOptions);
  const runner = import('../job-runner.js');
  runner.catch(() => undefined);
  // Only with the flag: without it, start-up loads nothing of the web server.
  const attaching = options.dashboard ? import('../dashboard/attached.js') : undefined;
  attaching?.catch(() => undefined);
  const interrupt = interruptSignal();
  try {
    return await withSession(
      options,
      async (session, logger) => {
        const bar = new ProgressBar({ enabled: options.progress });
        // Listening before the job starts, so the address it announces answers at once.
        const view = attaching && (await (await attaching).attachDashboard(session, logger, options.logLevel));
        try {
          const { runJob } = await runner;
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
            standIn: session.standInView,
            onStart: view && ((job) => view.announce(job)),
            onProgress: (p) => bar.update(p),
            // On a terminal the bar says it; elsewhere a line does.
            onNote: (text) => {
              if (!bar.active) process.stderr.write(`tally: ${text}\n`);
            },
            signal: interrupt.signal,
            link: session.link,
            // The embedded workers stop as soon as the results are in, and the job's clean-up
            // runs after the result is printed (the session waits for it before closing).
            onFolded: () => void session.stopWorkers(),
            deferCleanup: (cleanup) => session.defer(cleanup, logger),
            resume: extra.resume,
            backups: { ...DEFAULT_BACKUPS, enabled: options.backupTasks !== false, after: options.backupAfter ?? DEFAULT_BACKUPS.after },
          });
          bar.finish();
          // Inside the session: a result may be read from its parts on the server.
          await print(result, session.store);
          return result;
        } finally {
          bar.finish();
          // Before the session closes: in the embedded default its server goes with it.
          await view?.close();
        }
      },
    );
  } finally {
    interrupt.dispose();
  }
}
