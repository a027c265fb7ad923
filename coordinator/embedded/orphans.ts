/**
 * Embedded servers whose owner died without stopping them, found on Linux through /proc by their
 * command line (the store directory, and the owner's pid in the server name), and stopped.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { isRunning } from '../liveness.js';
import type { Logger } from '../../shared/log.js';

/** The server name an owner gives its embedded server: it carries the owner's pid. */
export const SERVER_NAME_PREFIX = 'tally-embedded-';

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
export async function stopOrphanedServers(storeDir: string, logger: Logger): Promise<void> {
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
