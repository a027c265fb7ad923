/** Whether the coordinator of a job still runs (for `tally resume` and `tally jobs --delete`). */
import { hostname } from 'node:os';

/**
 * Whether the coordinator named in a job record ("host:pid") still runs: 'alive' or 'gone' when
 * it ran on this machine, 'unknown' when it ran on another. This very process counts as gone.
 */
export function coordinatorLiveness(coordinator: string): 'alive' | 'gone' | 'unknown' {
  const [host, pid] = coordinator.split(':');
  if (host !== hostname()) return 'unknown';
  if (Number(pid) === process.pid) return 'gone';
  try {
    process.kill(Number(pid), 0);
    return 'alive';
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM' ? 'alive' : 'gone';
  }
}
