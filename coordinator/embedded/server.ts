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
 *
 * The pieces: data-dir.ts, lock.ts (who owns it), orphans.ts (servers whose owner died),
 * monitor.ts (who is connected), compaction.ts; prestart.ts starts all this ahead of the CLI.
 */
import { mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { DEFAULT_SERVER_CONFIG, startNatsServer, type NatsServerProcess } from '../nats-server.js';
import type { ConnectionSettings } from '../../shared/nats/connection-settings.js';
import type { Logger } from '../../shared/log.js';
import { isRunning } from '../liveness.js';
import { dataDirectory, storePaths, type StorePaths } from './data-dir.js';
import { claimStaleLock, createPidFile, readPid } from './lock.js';
import { SERVER_NAME_PREFIX, stopOrphanedServers } from './orphans.js';
import { connectionsOn, serverStatus } from './monitor.js';
import { compactPartials } from './compaction.js';
import { transportLib } from '../../shared/nats/client.js';

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

let beforeStop: ((url: string) => Promise<void>) | undefined;

/**
 * What an owner does first when it stops its server (prestart.ts: stop the worker processes
 * prestarted for a later session of the command, connected to this server too).
 */
export function beforeOwnedServerStops(hook: (url: string) => Promise<void>): void {
  beforeStop = hook;
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
  const { connect } = transportLib();
  const hold = await connect({ servers: file.url, token: file.token, reconnect: false, name: 'tally-embedded-hold' });
  logger.debug({ url: file.url, owner: file.pid }, 'joining the embedded server of a tally process that was killed; its other clients still use it');
  return joined(paths, file, logger, async () => {
    await hold.close().catch(() => undefined);
  });
}

/** The server file, or undefined while there is none (being started, or being stopped). */
function readServerFile(paths: StorePaths): ServerFile | undefined {
  try {
    return JSON.parse(readFileSync(paths.server, 'utf8')) as ServerFile;
  } catch {
    return undefined;
  }
}

/**
 * Joins a live owner's server with a connection held until release, so that the owner, which
 * stops its server once nobody is connected, waits for us. The owner removes the server file
 * before its last look at the connections: when the file is still there once our connection is
 * in, the owner will see it and keep the server up. Null when the owner is stopping (the server
 * refused us, or the file is gone): the caller waits for the lock and starts a server of its own.
 */
async function holdServer(paths: StorePaths, file: ServerFile, logger: Logger): Promise<EmbeddedServer | null> {
  const { connect } = transportLib();
  const hold = await connect({ servers: file.url, token: file.token, reconnect: false, timeout: 2_000, name: 'tally-embedded-hold' }).catch(() => null);
  if (!hold) return null;
  const now = readServerFile(paths);
  if (now?.pid !== file.pid || now.url !== file.url) {
    await hold.close().catch(() => undefined);
    return null;
  }
  logger.debug({ url: file.url }, 'joining the embedded server of another tally process');
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
      const file = readServerFile(paths);
      if (file?.pid === holder) {
        const held = await holdServer(paths, file, logger);
        if (held) return held;
        waitingFor = `the embedded server of process ${holder} was stopping, and its lock was not released`;
      }
      // Else the owner is still starting its server, or is stopping it.
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

function writeServerFile(path: string, file: ServerFile): void {
  writeFileSync(`${path}.tmp`, JSON.stringify(file), { mode: 0o600 });
  renameSync(`${path}.tmp`, path);
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
  writeServerFile(serverPath, file);
  logger.debug({ url: server.url, pid: server.pid }, 'embedded nats-server started');
  let released = false;
  return {
    url: server.url,
    token,
    owned: true,
    release: async () => {
      if (released) return;
      released = true;
      await beforeStop?.(server.url);
      // Other tally processes may still be using the server (and more may join meanwhile):
      // stop it only once nobody is connected, and hold the lock until it is down, so that no
      // second server ever opens the same store directory.
      if (server.monitorUrl) {
        // No new joiner can find the server once its file is gone; one that connected before
        // is counted here (see holdServer) and the server stays up for it: the file is put back
        // for others to join meanwhile. Our own connection may take a moment to be counted
        // out: look again soon, then less often. (One look when nobody is there: each costs
        // ~3 ms of the command's exit. The second look comes after 2 ms, not 10: `tally sum 1
        // 10` ended 15 ms sooner, 15 interleaved runs.)
        for (let wait = 2; ; wait = Math.min(200, wait * 2)) {
          rmSync(serverPath, { force: true });
          const connections = await connectionsOn(server.monitorUrl).catch(() => 0);
          if (connections === 0) break;
          writeServerFile(serverPath, file);
          if (wait >= 32) logger.debug({ connections }, 'another tally process still uses the embedded server');
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
