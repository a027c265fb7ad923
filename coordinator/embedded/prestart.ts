/**
 * The embedded default's head start: what a command line will need (read from its raw arguments
 * before they are parsed), started first thing by entry.ts (the server, or joining another
 * tally's, and a job's worker processes), handed to the command's session, and stopped when the
 * command does not use it.
 */
import { availableParallelism } from 'node:os';
import { embeddedFleet } from './fleet.js';
import { KIND_NAMES } from '../../shared/kinds/index.js';
import { Supervisor } from '../../worker/supervisor.js';
import { createLogger, type Logger } from '../../shared/log.js';
import { testHooks } from '../../worker/test-hooks.js';
import { SMALL_JOB_HOLD_MS, isSmallJob } from './small-job.js';
import { acquireEmbeddedServer, beforeOwnedServerStops, embeddedConnection, type EmbeddedServer } from './server.js';
import type { PreparedSession } from '../session.js';

/** Commands that run a job: in the embedded default they start the server and workers. */
const JOB_COMMANDS: ReadonlySet<string> = new Set([...KIND_NAMES, 'resume']);

/**
 * Commands that need the server and no worker: they start (or join) the server only. The
 * Object Store commands are among them: the embedded server's store keeps what `put` uploads.
 */
const READ_COMMANDS = new Set(['jobs', 'result', 'workers', 'put', 'ls', 'rm']);

/** What a command line will need from the embedded default. */
export interface EmbeddedPlan {
  /** Worker processes (`--workers`, default one per core); 0 for commands that read. */
  workers: number;
  /** `--log-level` (LOG_LEVEL is for this process only, as with the parsed command line). */
  logLevel: string | undefined;
  /** A job kind's command: its session's connection is set up ahead (see prepareSession). */
  prepare: boolean;
  /** A job the coordinator's stand-in worker is expected to finish alone (small-job.ts). */
  smallJob: boolean;
}

/**
 * What `tally ARGS` will need from the embedded default, read from the raw arguments before the
 * command line is parsed; null for commands that need none, with --server or NATS_URL, and
 * whenever in doubt (--help, a --workers value the parser will refuse). Only a head start:
 * the parsed command line decides everything.
 */
export function embeddedPlanFor(argv: string[], env: NodeJS.ProcessEnv = process.env): EmbeddedPlan | null {
  const args = argv.slice(2);
  const command = args[0] ?? '';
  if ((!JOB_COMMANDS.has(command) && !READ_COMMANDS.has(command)) || env.NATS_URL) return null;
  let workers = JOB_COMMANDS.has(command) ? embeddedFleet(undefined).processes : 0;
  let logLevel: string | undefined;
  for (let i = 1; i < args.length; i++) {
    const arg = args[i]!;
    if (arg === '--') break;
    if (arg === '--server' || arg.startsWith('--server=') || arg === '--help' || arg === '-h') return null;
    const [name, inline] = arg.startsWith('--') && arg.includes('=') ? [arg.slice(0, arg.indexOf('=')), arg.slice(arg.indexOf('=') + 1)] : [arg, undefined];
    if (name === '--log-level') logLevel = inline ?? args[++i];
    if (name !== '--workers') continue;
    const text = (inline ?? args[++i] ?? '').replace(/_/g, '');
    if (!/^\d+$/.test(text) || Number(text) > 1024) return null;
    if (JOB_COMMANDS.has(command)) workers = Number(text);
  }
  const prepare = KIND_NAMES.includes(command);
  return { workers, logLevel, prepare, smallJob: prepare && isSmallJob(args) };
}

interface Prestarted {
  server: Promise<EmbeddedServer> | null;
  workers: Supervisor | null;
  session: Promise<PreparedSession> | null;
}

const prestarted: Prestarted = { server: null, workers: null, session: null };

/** Closes the connection set up ahead, if it was and nobody took it. */
async function discardPreparedSession(): Promise<void> {
  const session = prestarted.session;
  prestarted.session = null;
  await (await session?.catch(() => undefined))?.nc.close().catch(() => undefined);
}

// Workers prestarted for a later session of this command (`tally resume` reads the job record
// first) are connected to the server too: stopped before it, or they would wait for each other.
// So is a connection set up ahead that no session took.
beforeOwnedServerStops(async (url) => {
  await discardPreparedSession();
  if (prestarted.workers?.serverUrl !== url) return;
  const workers = prestarted.workers;
  prestarted.workers = null;
  await workers.stop();
});

/**
 * Starts what the embedded default will need before anything else (coordinator/entry.ts calls this
 * first thing): the server (or joins another tally's), and the job's worker processes, which
 * are told the server's address as soon as it is up. A Node process needs ~120 ms of CPU to
 * start and load the NATS client; this way that overlaps the CLI's own loading and the
 * server's start instead of following them. What the command then does not use is stopped by
 * `discardPrestarted()`.
 */
export function prestartEmbedded(argv: string[]): void {
  const plan = embeddedPlanFor(argv);
  if (!plan || prestarted.server) return;
  let logger: Logger;
  try {
    logger = createLogger({ level: plan.logLevel, fallback: 'warn', bindings: { role: 'coordinator' } });
  } catch {
    return; // a bad --log-level: the command reports it
  }
  // Workers first: their start is the longest, the server needs ~10 ms.
  let workers: Supervisor | null = null;
  if (plan.workers > 0) {
    // This process loads its own modules meanwhile, on one core: the others load one worker
    // each, the rest of the workers follow as soon as one has loaded (the job needs only one).
    // A small job's are held back: the stand-in is expected to finish it first, and a Node
    // process starting meanwhile would take the CPU it needs (~45 ms of `tally sum 1 10`'s
    // ~335). Not when test hooks keep the stand-in off: nobody would take a task.
    const hold = plan.smallJob && testHooks.allowStandIn();
    workers = new Supervisor({ processes: plan.workers, initial: Math.max(1, availableParallelism() - 1), holdMs: hold ? (testHooks.smallJobHoldMs() ?? SMALL_JOB_HOLD_MS) : 0 });
    workers.start();
    prestarted.workers = workers;
  }
  const server = acquireEmbeddedServer(logger);
  server.catch(() => undefined); // reported by the session that takes it
  prestarted.server = server;
  guardSignals();
  if (plan.prepare) {
    // The job's connection, its JetStream handles and buckets, set up while this process loads
    // the command line: their round trips to the server overlap that loading.
    const session = server.then(async (embedded) => (await import('../session.js')).prepareSession(embeddedConnection(embedded), { logger, purpose: 'job' }));
    session.catch(() => undefined); // the session connects anew, and reports what fails then
    prestarted.session = session;
  }
  if (!workers) return;
  void server.then(
    (embedded) => {
      // As the session would: embedded workers are this user's own processes on this machine
      // (they read input files and fetch URLs themselves). The session checks that it is the same server.
      if (prestarted.workers === workers) workers.configure({ connection: embeddedConnection(embedded), logger, logLevel: plan.logLevel ?? 'warn', readFiles: true, fetchUrls: true });
    },
    () => undefined,
  );
}

/** The prestarted server (or the wait for it), for the first session of the command. */
export function takePrestartedServer(): Promise<EmbeddedServer> | undefined {
  const server = prestarted.server ?? undefined;
  prestarted.server = null;
  // From here on the command's own handling of Ctrl-C applies, as without a head start.
  unguardSignals();
  return server;
}

/**
 * The connection set up ahead for a job's session on the prestarted server (see prepareSession),
 * for the first session that runs a job; undefined when none was.
 */
export function takePreparedSession(): Promise<PreparedSession> | undefined {
  const session = prestarted.session ?? undefined;
  prestarted.session = null;
  return session;
}

/**
 * The embedded server this command's session will take (takePrestartedServer), started or
 * joined now when nothing was prestarted: a job over obj:// inputs lists them on the server it
 * then runs on, before its session opens. Left in place, not taken: the session takes it, and
 * `discardPrestarted()` releases it when the command fails before (no such bucket).
 */
export function shareEmbeddedServer(logger: Logger): Promise<EmbeddedServer> {
  if (!prestarted.server) {
    const server = acquireEmbeddedServer(logger);
    server.catch(() => undefined); // reported by whoever awaits it
    prestarted.server = server;
    guardSignals();
  }
  return prestarted.server;
}

let onSignal: (() => void) | null = null;

/**
 * Until the command takes over what was prestarted, SIGINT, SIGTERM or SIGHUP (the terminal
 * closed) stops it (the server is this process's child: left running, it would hold the store
 * with nobody holding the lock) and exits 130, like an interrupted command. Kept in step with
 * INTERRUPT_SIGNALS in commands/common.ts, which this module does not load (it loads first).
 */
const GUARDED_SIGNALS: readonly NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];

function guardSignals(): void {
  if (onSignal) return;
  onSignal = () => {
    unguardSignals();
    // As later in the command: a second Ctrl-C exits at once, a second SIGHUP (a closing
    // terminal sends two) changes nothing.
    const again = (signal: NodeJS.Signals) => {
      if (signal !== 'SIGHUP') process.exit(130);
    };
    for (const signal of GUARDED_SIGNALS) process.on(signal, again);
    void discardPrestarted().finally(() => process.exit(130));
  };
  for (const signal of GUARDED_SIGNALS) process.once(signal, onSignal);
}

function unguardSignals(): void {
  if (!onSignal) return;
  for (const signal of GUARDED_SIGNALS) process.off(signal, onSignal);
  onSignal = null;
}

/**
 * The prestarted worker processes if there are `processes` of them and they know no server
 * other than `url`; any others are stopped.
 */
export async function takePrestartedWorkers(processes: number, url: string): Promise<Supervisor | null> {
  const workers = prestarted.workers;
  prestarted.workers = null;
  if (!workers) return null;
  if (workers.processes !== processes || (workers.serverUrl !== undefined && workers.serverUrl !== url)) {
    await workers.stop();
    return null;
  }
  return workers;
}

/** Stops what was prestarted and not used: the command failed first (bad usage, bad input). */
export async function discardPrestarted(): Promise<void> {
  unguardSignals();
  await discardPreparedSession();
  const { server, workers } = prestarted;
  prestarted.server = null;
  prestarted.workers = null;
  await workers?.stop();
  const embedded = await server?.catch(() => undefined);
  await embedded?.release();
}
