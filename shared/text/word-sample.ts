/**
 * How often an input's words repeat, from a sample of it: what a count's default chunk size
 * goes by (coordinator/kinds/count.ts). Each task's table of distinct words is encoded, sent and
 * folded whole, so bigger tasks save work only where words repeat within a task: on English, a
 * 256 KiB sample has ~1 distinct word in 8; on a list of ids or numbers, every word is new, and
 * bigger tasks only make bigger shares and a longer last task.
 */
import { closeSync, openSync, readSync } from 'node:fs';
import { countChunk, type CountSettings } from './words.js';

/** Bytes read from the middle of the input. */
export const SAMPLE_BYTES = 256 * 1024;
/** A sample with fewer words than this says nothing (binary data, one overlong token). */
const SAMPLE_MIN_WORDS = 1_000;

/**
 * Distinct words / words in SAMPLE_BYTES from the middle of the local file `path` of `size`
 * bytes; null when the file cannot be read or the sample holds too few words.
 */
export function distinctShare(path: string, size: number, settings: CountSettings): number | null {
  const length = Math.min(size, SAMPLE_BYTES);
  const sample = Buffer.alloc(length);
  let fd: number | undefined;
  try {
    fd = openSync(path, 'r');
    const got = readSync(fd, sample, 0, length, Math.floor((size - length) / 2));
    const counted = countChunk(sample.subarray(0, got), settings, { fileStart: false, continuesWord: false, endsInsideWord: false, wordCounted: false });
    return counted.totalWords < SAMPLE_MIN_WORDS ? null : counted.words.size / counted.totalWords;
  } catch {
    // The job reports an unreadable input itself.
    return null;
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}
