/**
 * Whether this process may read input files named by tasks, instead of receiving the bytes in
 * the task. A process-wide capability, off unless the worker process turns it on: embedded
 * workers (children of the coordinator, on its machine) do; `tally worker` does only with
 * --read-files, because a task that names a path makes the worker read that path as its own
 * user, and only someone who trusts everyone able to publish tasks should allow that.
 */
let allowed = false;

/** Turns file reads by tasks on or off for this process. */
export function setFileReads(allow: boolean): void {
  allowed = allow;
}

/** True when tasks may name files for this process to read. */
export function fileReadsAllowed(): boolean {
  return allowed;
}
