/**
 * The lock that names the owner of the embedded server (a pid file), and the claim through which
 * one process at a time deals with the lock of an owner that died.
 */
import { closeSync, linkSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { isRunning } from '../liveness.js';

/** The pid a lock file holds: undefined when there is no such file, NaN when it holds none. */
export function readPid(path: string): number | undefined {
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
export function createPidFile(path: string): boolean {
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
export function claimStaleLock(path: string, holder: number, depth = 0): (() => void) | null {
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
