/**
 * How often an input's words repeat, from a sample of it: what a count's default chunk size
 * goes by (coordinator/kinds/count.ts). Each task's table of distinct words is encoded, sent and
 * folded whole, so bigger tasks save work only where words repeat within a task: on English, a
 * 256 KiB sample has ~1 distinct word in 8; on a list of ids or numbers, every word is new, and
 * bigger tasks only make bigger shares and a longer last task.
 */
import { closeSync, openSync, readSync } from 'node:fs';
import { countChunk, type CountSettings } from './words.js';

/** Bytes a sample holds: from the middle of the largest input, or whole small inputs. */
export const SAMPLE_BYTES = 256 * 1024;
/** A sample with fewer words than this says nothing (binary data, one overlong token). */
const SAMPLE_MIN_WORDS = 1_000;
/** Between two files' bytes in a sample: a newline, which ends a word for either tokenizer. */
const NEWLINE = 0x0a;

/** A local file a sample may read: its path and its size when the job was planned. */
export interface SampledFile {
  path: string;
  size: number;
}

/**
 * Distinct words / words in a sample of the local files `files`: SAMPLE_BYTES from the middle
 * of the largest when it holds that many, else whole files picked evenly through the list until
 * the sample is full (a folder of small files: one of them alone holds too few words to say
 * anything). Null when the sample holds too few words, or nothing could be read.
 */
export function distinctShare(files: readonly SampledFile[], settings: CountSettings): number | null {
  if (files.length === 0) return null;
  const largest = files.reduce((a, b) => (b.size > a.size ? b : a));
  const sample = Buffer.allocUnsafe(Math.min(SAMPLE_BYTES, files.reduce((sum, file) => sum + file.size + 1, 0)));
  let filled: number;
  if (largest.size >= SAMPLE_BYTES) {
    filled = readInto(largest.path, sample, 0, SAMPLE_BYTES, Math.floor((largest.size - SAMPLE_BYTES) / 2));
  } else {
    filled = 0;
    const average = files.reduce((sum, file) => sum + file.size, 0) / files.length;
    const picks = Math.min(files.length, Math.ceil(SAMPLE_BYTES / Math.max(1, average)));
    for (let k = 0; k < picks && filled < sample.length; k++) {
      const file = files[Math.floor((k * files.length) / picks)]!;
      filled += readInto(file.path, sample, filled, Math.min(file.size, sample.length - filled), 0);
      if (filled < sample.length) sample[filled++] = NEWLINE;
    }
  }
  const counted = countChunk(sample.subarray(0, filled), settings, { fileStart: false, continuesWord: false, endsInsideWord: false, wordCounted: false });
  return counted.totalWords < SAMPLE_MIN_WORDS ? null : counted.words.size / counted.totalWords;
}

/** Reads up to `length` bytes of `path` from `position` into `target` at `offset`; how many it got (0 when it cannot be read: the job reports that itself). */
function readInto(path: string, target: Buffer, offset: number, length: number, position: number): number {
  let fd: number | undefined;
  try {
    fd = openSync(path, 'r');
    let got = 0;
    while (got < length) {
      const n = readSync(fd, target, offset + got, length - got, position + got);
      if (n === 0) break; // shorter than when the job was planned
      got += n;
    }
    return got;
  } catch {
    return 0;
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}
