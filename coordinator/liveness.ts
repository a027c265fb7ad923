/** Whether a process still runs: a job's coordinator (`tally resume`, `tally jobs --delete`), an embedded server's owner. */
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
