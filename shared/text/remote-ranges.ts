/**
 * How a worker counts ranges whose bytes are not in a local file but fetched from a server:
 * objects (obj://BUCKET/NAME, object-input.ts) and URLs served in byte ranges (url-input.ts).
 * Counting (shared/text/ranges.ts) reads synchronously, so each such range's bytes are fetched
 * first, as a window: the range, HISTORY bytes before it and the word reach after it (what
 * ranges.ts looks at to decide a range's exact edges), and counting reads from that window.
 */
import { TaskRejectedError } from '../errors.js';
import type { ByteSource } from './ranges.js';
import { isPiece, type RangeEntry } from './file-input.js';
import { HISTORY, LOOKAHEAD } from './cuts.js';
import { WORD_SLACK } from './chunker.js';
import { isObjectUrl, readObjectRange } from './object-input.js';
import { isUrl, readUrlRange } from './url-input.js';
import { urlFetchesAllowed } from '../kinds/file-reads.js';

/** Remote ranges of one task fetched at once, at most. */
const FETCHES_IN_FLIGHT = 8;

/** True for a range path whose bytes a worker fetches from a server (an object or a URL). */
export function isRemote(path: string): boolean {
  return isObjectUrl(path) || isUrl(path);
}

/** A remote range read as it is: a compressed object's piece is fetched whole by compressed-pieces.ts. */
function isRemoteRange(range: RangeEntry): boolean {
  return isRemote(range[1]) && !isPiece(range);
}

/**
 * Thrown by a window's ByteSource when counting reads outside the bytes fetched for it (only
 * the rare scan to the end of an overlong word does): the caller fetches more and counts again.
 */
export class RemoteWindowMiss extends Error {
  constructor(readonly range: number) {
    super('read outside the fetched window of a remote range');
  }
}

/** Opens the source of a task's range `index`; the caller closes it. */
export type RangeOpener = (range: RangeEntry, index: number) => { source: ByteSource; close(): void } | undefined;

/**
 * Checks that this process may fetch the URL ranges of a task: only when it was started to
 * (see shared/kinds/file-reads.ts), because a task that names a URL makes the worker fetch it
 * from wherever the worker runs.
 * @throws TaskRejectedError naming the URL and the flag
 */
export function checkUrlFetches(ranges: readonly RangeEntry[] | undefined): void {
  const url = ranges?.find((range) => isUrl(range[1]));
  if (url && !urlFetchesAllowed()) {
    throw new TaskRejectedError(`count task: this worker does not fetch URLs (${url[1]}); start it with --fetch-urls, or submit without --workers-fetch-urls`);
  }
}

/** Bytes [from, to) of a remote range's file, checked against what the job was planned with. */
function readRemote(range: RangeEntry, from: number, to: number): Promise<Uint8Array> {
  const [, path, size, mtimeMs] = range;
  if (isUrl(path)) return readUrlRange(path, { size, mtimeMs, ...(typeof range[6] === 'string' ? { etag: range[6] } : {}) }, from, to);
  return readObjectRange(path, size, mtimeMs, from, to).then((read) => read.bytes);
}

/**
 * Runs `count` over a task's ranges, with the bytes of its remote ranges fetched first: what
 * shared/text/ranges.ts reads of a range (the range, HISTORY bytes before it and the word reach
 * after it). In the rare case counting reads further (the scan to the end of an overlong word
 * with the whitespace tokenizer) that range is fetched to its file's end and `count` runs again
 * from scratch: it must keep nothing from a run that threw.
 * @param ranges the task's ranges (file ranges are left to `count`'s default)
 * @returns synchronously when no range is remote (whether this worker may fetch URLs is the
 *   caller's to check first: checkUrlFetches)
 */
export function withRemoteRanges<T>(ranges: readonly RangeEntry[] | undefined, maxWordBytes: number, count: (open: RangeOpener | undefined) => T): T | Promise<T> {
  // Without remote ranges, synchronously: a task over files throws as it always did.
  if (!ranges || !ranges.some(isRemoteRange)) return count(undefined);
  return countRemote(ranges, maxWordBytes, count);
}

async function countRemote<T>(ranges: readonly RangeEntry[], maxWordBytes: number, count: (open: RangeOpener | undefined) => T): Promise<T> {
  const windows = new Map<number, { lo: number; bytes: Uint8Array }>();
  const fetch = async (index: number, toEnd: boolean) => {
    const range = ranges[index]!;
    const [, , size, , start, end] = range;
    const lo = Math.max(0, start - HISTORY);
    const hi = toEnd ? size : Math.min(size, Math.max(end, start) + maxWordBytes + WORD_SLACK + LOOKAHEAD);
    windows.set(index, { lo, bytes: await readRemote(range, lo, hi) });
  };
  // A task may list hundreds of small objects: a few requests in flight at a time.
  const remote = ranges.flatMap((range, index) => (isRemoteRange(range) ? [index] : []));
  let next = 0;
  const fetchers = Array.from({ length: Math.min(FETCHES_IN_FLIGHT, remote.length) }, async () => {
    while (next < remote.length) await fetch(remote[next++]!, false);
  });
  await Promise.all(fetchers);
  const open: RangeOpener = (range, index) => {
    const window = windows.get(index);
    if (!window) return undefined;
    const source: ByteSource = {
      size: range[2],
      read(target, position, length) {
        const want = Math.min(length, range[2] - position);
        if (want <= 0) return 0;
        if (position < window.lo || position + want > window.lo + window.bytes.length) throw new RemoteWindowMiss(index);
        target.set(window.bytes.subarray(position - window.lo, position - window.lo + want));
        return want;
      },
    };
    return { source, close: () => undefined };
  };
  for (;;) {
    try {
      return count(open);
    } catch (error) {
      if (!(error instanceof RemoteWindowMiss)) throw error;
      await fetch(error.range, true);
    }
  }
}
