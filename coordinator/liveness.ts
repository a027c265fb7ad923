/** Whether a process still runs: a job's coordinator (`tally resume`, `tally jobs --delete`), an embedded server's owner. */
import { existsSync, readFileSync } from 'node:fs';
import { hostname } from 'node:os';

/** True while `pid` exists on this machine (also when it belongs to another user). */
export function isProcessAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Whether the coordinator named in a job record ("host:pid") still runs: 'alive' or 'gone' when
 * it ran on this machine, 'unknown' when it ran on another. This very process counts as gone.
 */
export function coordinatorLiveness(coordinator: string): 'alive' | 'gone' | 'unknown' {
  const [host, pid] = coordinator.split(':');
  if (host !== hostname()) return 'unknown';
  if (Number(pid) === process.pid) return 'gone';
  return isProcessAlive(Number(pid)) ? 'alive' : 'gone';
}

/** False once `pid` has exited, also when it lingers as a zombie that nobody reaps. */
export function isRunning(pid: number): boolean {
  try {
    // The state follows the command name in parentheses: "1234 (nats-server) S ...".
    const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return existsSync('/proc/self/stat') ? false : isProcessAlive(pid);
  }
}
