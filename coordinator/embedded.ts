/**
 * The embedded default: with no --server and no NATS_URL, tally starts a nats-server child on a
 * free loopback port, with its JetStream store in the user's data directory (so `tally jobs` and
 * `tally result` work afterwards), and runs jobs on the same code path as a real deployment.
 *
 * Two tally commands at once share one server: the first one owns it (a lock file in the data
 * directory); later ones connect to it. The owner stops the server only when no other client is
 * connected any more.
 */
import { closeSync, mkdirSync, openSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { startNatsServer, type NatsServerProcess } from './nats-server.js';
import type { Logger } from '../shared/log.js';

/** $TALLY_DATA_DIR, else $XDG_DATA_HOME/tally, else ~/.local/share/tally. */
export function dataDirectory(): string {
  if (process.env.TALLY_DATA_DIR) return process.env.TALLY_DATA_DIR;
  const base = process.env.XDG_DATA_HOME || join(homedir(), '.local', 'share');
  return join(base, 'tally');
}

interface ServerFile {
  pid: number;
  url: string;
  monitorUrl?: string;
}

/** A local server this process either owns or borrows. `release()` exactly once. */
export interface EmbeddedServer {
  url: string;
  owned: boolean;
  release(): Promise<void>;
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function connectionsOn(monitorUrl: string): Promise<number> {
  const response = await fetch(`${monitorUrl}/varz`);
  const varz = (await response.json()) as { connections?: number };
  return varz.connections ?? 0;
}

/** Starts (or joins) the embedded server for this user. */
export async function acquireEmbeddedServer(logger: Logger): Promise<EmbeddedServer> {
  const dir = dataDirectory();
  mkdirSync(dir, { recursive: true });
  const lockPath = join(dir, 'server.lock');
  const serverPath = join(dir, 'server.json');
  const deadline = Date.now() + 15_000;
  for (;;) {
    let fd: number | undefined;
    try {
      fd = openSync(lockPath, 'wx');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    }
    if (fd !== undefined) {
      writeFileSync(fd, String(process.pid));
      closeSync(fd);
      return startOwned(dir, lockPath, serverPath, logger);
    }
    // Someone holds the lock: join their server, or clear a stale lock.
    let holder = NaN;
    try {
      holder = Number(readFileSync(lockPath, 'utf8'));
    } catch {
      continue;
    }
    if (Number.isInteger(holder) && holder > 0 && !isAlive(holder)) {
      logger.debug({ holder }, 'removing a stale embedded-server lock');
      rmSync(lockPath, { force: true });
      rmSync(serverPath, { force: true });
      continue;
    }
    try {
      const file = JSON.parse(readFileSync(serverPath, 'utf8')) as ServerFile;
      if (file.pid === holder) {
        logger.debug({ url: file.url }, 'joining the embedded server of another tally process');
        return { url: file.url, owned: false, release: async () => undefined };
      }
    } catch {
      // The owner is still starting its server.
    }
    if (Date.now() > deadline) throw new Error(`the embedded server of process ${holder} did not come up (lock ${lockPath})`);
    await sleep(50);
  }
}

async function startOwned(dir: string, lockPath: string, serverPath: string, logger: Logger): Promise<EmbeddedServer> {
  let server: NatsServerProcess;
  try {
    server = await startNatsServer({ storeDir: join(dir, 'jetstream'), monitor: true });
  } catch (error) {
    rmSync(lockPath, { force: true });
    throw error;
  }
  const file: ServerFile = { pid: process.pid, url: server.url, monitorUrl: server.monitorUrl };
  writeFileSync(`${serverPath}.tmp`, JSON.stringify(file));
  renameSync(`${serverPath}.tmp`, serverPath);
  logger.debug({ url: server.url, pid: server.pid }, 'embedded nats-server started');
  let released = false;
  return {
    url: server.url,
    owned: true,
    release: async () => {
      if (released) return;
      released = true;
      // Other tally processes may still be using the server (and more may join meanwhile):
      // stop it only once nobody is connected, and hold the lock until it is down, so that no
      // second server ever opens the same store directory.
      if (server.monitorUrl) {
        for (;;) {
          const connections = await connectionsOn(server.monitorUrl).catch(() => 0);
          if (connections === 0) break;
          logger.debug({ connections }, 'another tally process still uses the embedded server');
          await sleep(200);
        }
      }
      await server.stop();
      rmSync(serverPath, { force: true });
      rmSync(lockPath, { force: true });
    },
  };
}
