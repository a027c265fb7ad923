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

/**
 * Whether this process may fetch URLs named by tasks (byte ranges of URL inputs), instead of
 * receiving their text from the coordinator. Off unless the worker process turns it on, as for
 * files: embedded workers do (they fetch from the coordinator's own machine what it would fetch
 * itself); `tally worker` does only with --fetch-urls, because a task that names a URL makes the
 * worker send a GET from wherever it runs (hosts inside its network, cloud metadata addresses)
 * and report what the answer holds as word counts.
 */
let fetchesAllowed = false;

/** Turns URL fetches by tasks on or off for this process. */
export function setUrlFetches(allow: boolean): void {
  fetchesAllowed = allow;
}

/** True when tasks may name URLs for this process to fetch. */
export function urlFetchesAllowed(): boolean {
  return fetchesAllowed;
}
