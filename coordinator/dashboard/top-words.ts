/**
 * The top rows of a finished count or ngrams job, read through the job store exactly as
 * `tally result JOB --format json --top N` prints them (from the result, or merged from its
 * sorted parts when the result holds fewer rows).
 */
import type { CountResult } from '../../shared/kinds/count.js';
import { mergeParts, readPart } from '../../shared/text/sorted-part.js';
import type { JobStore } from '../job-store.js';
import { writeCount } from '../render-count.js';

/** Kinds whose result is a table of counted rows. */
export const TABLE_KINDS: ReadonlySet<string> = new Set(['count', 'ngrams']);

export interface TopRows {
  /** "word", or "2-gram" for an n-gram count. */
  rowName: string;
  totalWords: number;
  uniqueWords: number;
  bytes: number;
  rows: [string, number][];
}

/** The first `top` rows of a stored count result; null when the result is gone. */
export async function readTopRows(store: JobStore, job: string, top: number): Promise<TopRows | null> {
  const result = (await store.getResult(job)) as CountResult | null;
  if (result === null) return null;
  const { parts, counts, ...summary } = result;
  const openRows = () => (parts && counts.length < Math.min(top, result.uniqueWords) ? mergeParts(parts.map((name) => readPart(store.readObject(name), name))) : counts);
  let text = '';
  await writeCount(summary, openRows, { format: 'json', top }, (piece) => {
    text += piece;
  });
  const printed = JSON.parse(text) as { counts: [string, number][] };
  return {
    rowName: result.kind === 'ngrams' ? `${result.n ?? 2}-gram` : 'word',
    totalWords: result.totalWords,
    uniqueWords: result.uniqueWords,
    bytes: result.bytes,
    rows: printed.counts,
  };
}
