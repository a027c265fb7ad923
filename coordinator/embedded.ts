/**
 * The embedded default: with no --server and no NATS_URL, tally starts a nats-server child on a
 * free loopback port, with its JetStream store in the user's data directory (so `tally jobs` and
 * `tally result` work afterwards), and runs jobs on the same code path as a real deployment.
 *
 * Two tally commands at once share one server: the first one owns it (a lock file in the data
 * directory); later ones connect to it. The owner stops the server only when no other client is
 * connected any more. An owner killed outright (SIGKILL) leaves its server running for those
 * still using it; commands that come meanwhile join it, and whoever finds it with no client
 * left stops it (see settleStaleLock). Whatever happens, no two servers open one store.
 */
import { closeSync, existsSync, linkSync, mkdirSync, openSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { PARTIALS_BUCKET, objectChunkSubjects, objectStreamName } from '../shared/subjects.js';
import { KIND_NAMES } from '../shared/kinds/index.js';
import { DEFAULT_SERVER_CONFIG, startNatsServer, type NatsServerProcess } from './nats-server.js';
import type { ConnectionSettings } from '../shared/nats/connection-settings.js';
import { Supervisor } from '../worker/supervisor.js';
import { isProcessAlive } from './liveness.js';
import { createLogger, type Logger } from '../shared/log.js';
import { setting } from '../shared/settings.js';

/** $TALLY_DATA_DIR, else $XDG_DATA_HOME/tally, else ~/.local/share/tally. */
export function dataDirectory(): string {
  return setting('TALLY_DATA_DIR');
}

interface ServerFile {
  pid: number;
  url: string;
  /** The server's client token: only this user's tally processes can read this file. */
  token: string;
  monitorUrl?: string;
}

/** A local server this process either owns or borrows. `release()` exactly once. */
export interface EmbeddedServer {
  url: string;
  /** Client token of the server (see writeEmbeddedConfig). */
  token: string;
  owned: boolean;
  release(): Promise<void>;
}

/** How this user's tally processes connect to an embedded server. */
export function embeddedConnection(server: EmbeddedServer): ConnectionSettings {
  return { servers: [server.url], auth: { token: server.token } };
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** The server name an owner gives its embedded server: it carries the owner's pid. */
const SERVER_NAME_PREFIX = 'tally-embedded-';

/** False once `pid` has exited, also when it lingers as a zombie that nobody reaps. */
function isRunning(pid: number): boolean {
  try {
    // The state follows the command name in parentheses: "1234 (nats-server) S ...".
    const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return existsSync('/proc/self/stat') ? false : isProcessAlive(pid);
  }
}

/**
 * nats-server processes still serving `storeDir` for an owner that died without stopping them
 * (SIGKILL, the out-of-memory killer): the server is the owner's child but outlives it. Found on
 * Linux by their command line, which names the store and, in the server name, the owner's pid;
 * a server whose owner lives is never one of them.
 */
function orphanedServers(storeDir: string): number[] {
  let entries: string[];
  try {
    entries = readdirSync('/proc');
  } catch {
    return [];
  }
  const orphans: number[] = [];
  for (const entry of entries) {
    if (!/^\d+$/.test(entry)) continue;
    let argv: string[];
    try {
      argv = readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0');
    } catch {
      continue;
    }
    const name = argv[argv.indexOf('-n') + 1] ?? '';
    if (argv[argv.indexOf('-sd') + 1] !== storeDir || !name.startsWith(SERVER_NAME_PREFIX)) continue;
    const owner = Number(name.slice(SERVER_NAME_PREFIX.length));
    if (Number.isInteger(owner) && owner > 0 && !isRunning(owner) && isRunning(Number(entry))) orphans.push(Number(entry));
  }
  return orphans;
}

function killQuietly(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(pid, signal);
  } catch {
    // Gone already.
  }
}

/**
 * Stops the servers an owner that died left on our store (see `orphanedServers`), SIGTERM first
 * so that JetStream flushes, so that no two servers ever open the same store directory.
 */
async function stopOrphanedServers(storeDir: string, logger: Logger): Promise<void> {
  const orphans = orphanedServers(storeDir);
  if (orphans.length === 0) return;
  logger.warn({ pids: orphans }, 'stopping the embedded nats-server left running by a tally process that was killed');
  for (const pid of orphans) killQuietly(pid, 'SIGTERM');
  const deadline = Date.now() + 10_000;
  while (orphans.some(isRunning)) {
    if (Date.now() > deadline) for (const pid of orphans.filter(isRunning)) killQuietly(pid, 'SIGKILL');
    await sleep(20);
  }
}

/** What a server's monitoring endpoint says of it (node:http: fetch takes ~20 ms to load). */
async function serverStatus(monitorUrl: string): Promise<{ connections: number; serverName: string }> {
  const { get } = await import('node:http');
  return new Promise((resolve, reject) => {
    const request = get(`${monitorUrl}/varz`, { agent: false }, (response) => {
      let body = '';
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => (body += chunk));
      response.on('end', () => {
        try {
          const varz = JSON.parse(body) as { connections?: number; server_name?: string };
          resolve({ connections: varz.connections ?? 0, serverName: varz.server_name ?? '' });
        } catch (error) {
          reject(error);
        }
      });
      response.on('error', reject);
    });
    request.on('error', reject);
    request.setTimeout(5_000, () => request.destroy(new Error('monitoring endpoint timed out')));
  });
}

/** Client connections on the server, from its monitoring endpoint. */
async function connectionsOn(monitorUrl: string): Promise<number> {
  return (await serverStatus(monitorUrl)).connections;
}

/** Commands that run a job: in the embedded default they start the server and workers. */
const JOB_COMMANDS: ReadonlySet<string> = new Set([...KIND_NAMES, 'resume']);
/** Commands that only read: they start (or join) the server, and no worker. */
const READ_COMMANDS = new Set(['jobs', 'result', 'workers']);

/** What a command line will need from the embedded default. */
export interface EmbeddedPlan {
  /** Worker processes (`--workers`, default one per core); 0 for commands that read. */
  workers: number;
  /** `--log-level` (LOG_LEVEL is for this process only, as with the parsed command line). */
  logLevel: string | undefined;
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
  let workers = JOB_COMMANDS.has(command) ? availableParallelism() : 0;
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
  return { workers, logLevel };
}

interface Prestarted {
  server: Promise<EmbeddedServer> | null;
  workers: Supervisor | null;
}

const prestarted: Prestarted = { server: null, workers: null };

/**
 * Starts what the embedded default will need before anything else (bin/tally.js calls this
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
    workers = new Supervisor({ processes: plan.workers, initial: Math.max(1, availableParallelism() - 1) });
    workers.start();
    prestarted.workers = workers;
  }
  const server = acquireEmbeddedServer(logger);
  server.catch(() => undefined); // reported by the session that takes it
  prestarted.server = server;
  guardSignals();
  if (!workers) return;
  void server.then(
    (embedded) => {
      // As the session would: embedded workers are this user's own processes on this machine
      // (they read input files themselves). The session checks that it is the same server.
      if (prestarted.workers === workers) workers.configure({ connection: embeddedConnection(embedded), logger, logLevel: plan.logLevel ?? 'warn', readFiles: true });
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
  const { server, workers } = prestarted;
  prestarted.server = null;
  prestarted.workers = null;
  await workers?.stop();
  const embedded = await server?.catch(() => undefined);
  await embedded?.release();
}

/** The files of the embedded server in the data directory. */
interface StorePaths {
  dir: string;
  /** Names the owner: the process that started the server and stops it. */
  lock: string;
  /** How to reach the server (ServerFile), written by the owner once it is up. */
  server: string;
  /** The server's configuration with its token. */
  config: string;
  /** The JetStream store directory. */
  store: string;
}

function storePaths(dir: string): StorePaths {
  return { dir, lock: join(dir, 'server.lock'), server: join(dir, 'server.json'), config: join(dir, 'embedded.conf'), store: join(dir, 'jetstream') };
}

/** The pid a lock file holds: undefined when there is no such file, NaN when it holds none. */
function readPid(path: string): number | undefined {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'ENOENT' ? undefined : NaN;
  }
  return /^\d+$/.test(text) ? Number(text) : NaN;
}

/**
 * Creates `path` holding this process's pid, or returns false if it exists. The pid is written
 * to a private file first and linked into place, so that nobody ever reads the lock empty (a
 * process killed between creating and writing it would leave a lock no one could clear).
 */
function createPidFile(path: string): boolean {
  const temp = `${path}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  writeFileSync(temp, String(process.pid), { mode: 0o600 });
  try {
    linkSync(temp, path);
    return true;
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'EEXIST') return false;
    // A filesystem without hard links: an exclusive create, with the short window it has.
    if (code !== 'EPERM' && code !== 'ENOTSUP' && code !== 'EOPNOTSUPP') throw error;
    let fd: number;
    try {
      fd = openSync(path, 'wx', 0o600);
    } catch (fallback) {
      if ((fallback as NodeJS.ErrnoException).code === 'EEXIST') return false;
      throw fallback;
    }
    writeFileSync(fd, String(process.pid));
    closeSync(fd);
    return true;
  } finally {
    rmSync(temp, { force: true });
  }
}

/**
 * Makes this process the only one that may act on the lock `path` while it names `holder`, a
 * process that died: the claim is the file `path.holder`, which one process at a time creates.
 * Only a claimant changes a lock that names a dead process, so once the claim is made the lock
 * is checked to still name `holder` (a slower process may find the lock already cleared and
 * taken by a new owner, which it must leave alone). A claimant that died too (SIGKILL while
 * reaping) is cleared the same way, through a claim on its claim.
 * @returns the release of the claim, or null when another live process holds it or the lock
 *   no longer names `holder` (look again)
 */
function claimStaleLock(path: string, holder: number, depth = 0): (() => void) | null {
  const claim = `${path}.${holder}`;
  for (let attempt = 0; attempt < 2; attempt++) {
    if (createPidFile(claim)) {
      if (readPid(path) === holder) return () => rmSync(claim, { force: true });
      rmSync(claim, { force: true });
      return null;
    }
    const claimant = readPid(claim);
    if (claimant === undefined) continue;
    if (Number.isNaN(claimant) || isRunning(claimant) || depth >= 4) return null;
    const release = claimStaleLock(claim, claimant, depth + 1);
    if (!release) return null;
    rmSync(claim, { force: true });
    release();
  }
  return null;
}

/** What became of a lock whose owner died (see settleStaleLock). */
type StaleOutcome = EmbeddedServer | 'cleared' | 'in use' | 'busy';

/**
 * Deals with the lock of an owner that died (SIGKILL, the out-of-memory killer) while its server
 * may live on, still serving the tally processes that had joined it. Only a server nobody uses
 * is stopped: one with clients is joined (`join`) or left alone (`leave`) and stopped later by
 * whoever finds it idle, so that a job that joined it finishes. Deciding happens under a claim
 * on the lock (claimStaleLock), and a process that joins connects before it lets go of the
 * claim, so that no one finds the server idle between its decision and its connection.
 * @returns the joined server; 'cleared' when the lock is gone (the server stopped, or it had
 *   none); 'in use' when left to its clients; 'busy' when another process deals with it
 */
async function settleStaleLock(paths: StorePaths, holder: number, logger: Logger, mode: 'join' | 'leave'): Promise<StaleOutcome> {
  const release = claimStaleLock(paths.lock, holder);
  if (!release) return 'busy';
  try {
    let file: ServerFile | undefined;
    try {
      file = JSON.parse(readFileSync(paths.server, 'utf8')) as ServerFile;
    } catch {
      // The owner died before its server was up: nobody can have joined it.
    }
    if (file?.pid === holder && file.monitorUrl) {
      const status = await serverStatus(file.monitorUrl).catch(() => null);
      // The name checks that the port still belongs to that server.
      if (status?.serverName === `${SERVER_NAME_PREFIX}${holder}`) {
        let connections = status.connections;
        // Leaving, our own connections (this process's, its workers') may take a moment to be
        // counted out; a client still there after that is someone else's.
        for (let wait = 10, waited = 0; mode === 'leave' && connections > 0 && waited < 1_500; waited += wait, wait = Math.min(200, wait * 2)) {
          await sleep(wait);
          connections = await connectionsOn(file.monitorUrl).catch(() => 0);
        }
        if (connections > 0) {
          if (mode === 'leave') return 'in use';
          const joined = await joinOrphan(paths, file, logger).catch(() => null);
          if (joined) return joined;
        }
      }
    }
    await stopOrphanedServers(paths.store, logger);
    rmSync(paths.server, { force: true });
    rmSync(paths.config, { force: true });
    rmSync(paths.lock, { force: true });
    return 'cleared';
  } finally {
    release();
  }
}

/**
 * Joins the server of an owner that died, with a connection of our own held until release: the
 * server counts it, so nobody stops the server between our leaving the claim and our session
 * connecting.
 */
async function joinOrphan(paths: StorePaths, file: ServerFile, logger: Logger): Promise<EmbeddedServer> {
  const { connect } = await import('@nats-io/transport-node');
  const hold = await connect({ servers: file.url, token: file.token, reconnect: false, name: 'tally-embedded-hold' });
  logger.debug({ url: file.url, owner: file.pid }, 'joining the embedded server of a tally process that was killed; its other clients still use it');
  return joined(paths, file, logger, async () => {
    await hold.close().catch(() => undefined);
  });
}

/**
 * A server this process joined. Its release stops the server when the owner died meanwhile and
 * nobody else uses it any more: the last one out turns off the light.
 */
function joined(paths: StorePaths, file: ServerFile, logger: Logger, close?: () => Promise<void>): EmbeddedServer {
  let released = false;
  return {
    url: file.url,
    token: file.token,
    owned: false,
    release: async () => {
      if (released) return;
      released = true;
      await close?.();
      const holder = readPid(paths.lock);
      if (holder === undefined || !(holder > 0) || isRunning(holder)) return;
      await settleStaleLock(paths, holder, logger, 'leave').catch((error: unknown) => {
        logger.debug({ err: error instanceof Error ? error.message : String(error) }, 'could not stop the embedded server of a tally process that was killed');
      });
    },
  };
}

/** Starts (or joins) the embedded server for this user. */
export async function acquireEmbeddedServer(logger: Logger): Promise<EmbeddedServer> {
  const paths = storePaths(dataDirectory());
  mkdirSync(paths.dir, { recursive: true, mode: 0o700 });
  const deadline = Date.now() + 15_000;
  for (;;) {
    if (createPidFile(paths.lock)) return startOwned(paths, logger);
    // Someone holds the lock: join their server, or deal with a stale lock.
    const holder = readPid(paths.lock);
    if (holder === undefined) continue;
    let waitingFor = `the embedded server of process ${holder} did not come up`;
    if (holder > 0 && !isRunning(holder)) {
      const outcome = await settleStaleLock(paths, holder, logger, 'join');
      if (typeof outcome === 'object') return outcome;
      if (outcome === 'cleared') continue;
      waitingFor = `another tally process is still stopping the embedded server of process ${holder}, which was killed`;
    } else {
      try {
        const file = JSON.parse(readFileSync(paths.server, 'utf8')) as ServerFile;
        if (file.pid === holder) {
          logger.debug({ url: file.url }, 'joining the embedded server of another tally process');
          return joined(paths, file, logger);
        }
      } catch {
        // The owner is still starting its server.
      }
    }
    if (Date.now() > deadline) throw new Error(`${waitingFor} (lock ${paths.lock})`);
    await sleep(50);
  }
}

/**
 * The embedded server's configuration: tally.conf plus a client token made for this run, in a
 * file only this user can read (a token on nats-server's command line would show in `ps`).
 * Without it any local user could connect while a job runs, read its inputs and results, and
 * make its workers, which read input files themselves, count any file this user can read.
 */
function writeEmbeddedConfig(dir: string, token: string): string {
  const path = join(dir, 'embedded.conf');
  const base = readFileSync(DEFAULT_SERVER_CONFIG, 'utf8');
  writeFileSync(`${path}.tmp`, `${base}\n# Written by tally for its embedded server; the token changes every run.\nauthorization {\n  token: "${token}"\n}\n`, { mode: 0o600 });
  renameSync(`${path}.tmp`, path);
  return path;
}

/** Bytes of the partials bucket's stream files above which an idle server compacts them. */
const PARTIALS_COMPACT_BYTES = 4 * 1024 * 1024;

/**
 * Deleted partials (big factorial partials go through the Object Store) stay in the stream's
 * block files on disk: nats-server 2.9 does not compact interior deletes, and reads those blocks
 * at every start (measured: 30 MB of them made each embedded start ~50 ms slower). With nobody
 * else connected and no object left in the bucket (no chunk message: a crashed job that
 * `tally resume` may finish keeps its objects, and then nothing is touched), the stream is
 * purged, which drops its blocks. Best effort: any failure leaves the store as it was.
 */
async function compactPartials(storeDir: string, url: string, token: string, logger: Logger): Promise<void> {
  const stream = objectStreamName(PARTIALS_BUCKET);
  const blocks = join(storeDir, 'jetstream', '$G', 'streams', stream, 'msgs');
  let onDisk = 0;
  try {
    for (const name of readdirSync(blocks)) if (name.endsWith('.blk')) onDisk += statSync(join(blocks, name)).size;
  } catch {
    return;
  }
  if (onDisk < PARTIALS_COMPACT_BYTES) return;
  try {
    const { connect } = await import('@nats-io/transport-node');
    const { jetstreamManager } = await import('@nats-io/jetstream');
    const nc = await connect({ servers: url, token, reconnect: false, name: 'tally-compact' });
    try {
      const jsm = await jetstreamManager(nc);
      const info = await jsm.streams.info(stream, { subjects_filter: objectChunkSubjects(PARTIALS_BUCKET) });
      if (info.state.messages > 0 && Object.keys(info.state.subjects ?? {}).length === 0) {
        await jsm.streams.purge(stream);
        logger.debug({ bytes: onDisk }, 'compacted the deleted partials of ended jobs');
      }
    } finally {
      await nc.close();
    }
  } catch (error) {
    logger.debug({ err: error instanceof Error ? error.message : String(error) }, 'could not compact the partials bucket');
  }
}

async function startOwned(paths: StorePaths, logger: Logger): Promise<EmbeddedServer> {
  const { dir, lock: lockPath, server: serverPath } = paths;
  const token = randomBytes(24).toString('base64url');
  let server: NatsServerProcess;
  try {
    server = await startNatsServer({
      storeDir: paths.store,
      monitor: true,
      configFile: writeEmbeddedConfig(dir, token),
      // Names this process as its owner, so that a later run can stop it if we die first.
      extraArgs: ['-n', `${SERVER_NAME_PREFIX}${process.pid}`],
    });
  } catch (error) {
    rmSync(lockPath, { force: true });
    throw error;
  }
  const file: ServerFile = { pid: process.pid, url: server.url, token, monitorUrl: server.monitorUrl };
  writeFileSync(`${serverPath}.tmp`, JSON.stringify(file), { mode: 0o600 });
  renameSync(`${serverPath}.tmp`, serverPath);
  logger.debug({ url: server.url, pid: server.pid }, 'embedded nats-server started');
  let released = false;
  return {
    url: server.url,
    token,
    owned: true,
    release: async () => {
      if (released) return;
      released = true;
      // Workers prestarted for a later session of this command (`tally resume` reads the job
      // record first) are connected to this server too: they would wait for each other.
      if (prestarted.workers?.serverUrl === server.url) {
        const workers = prestarted.workers;
        prestarted.workers = null;
        await workers.stop();
      }
      // Other tally processes may still be using the server (and more may join meanwhile):
      // stop it only once nobody is connected, and hold the lock until it is down, so that no
      // second server ever opens the same store directory.
      if (server.monitorUrl) {
        // Our own connection may take a moment to be counted out: look again soon, then less often.
        for (let wait = 10; ; wait = Math.min(200, wait * 2)) {
          const connections = await connectionsOn(server.monitorUrl).catch(() => 0);
          if (connections === 0) break;
          if (wait >= 40) logger.debug({ connections }, 'another tally process still uses the embedded server');
          await sleep(wait);
        }
      }
      await compactPartials(paths.store, server.url, token, logger);
      await server.stop();
      rmSync(serverPath, { force: true });
      rmSync(paths.config, { force: true });
      rmSync(lockPath, { force: true });
    },
  };
}
