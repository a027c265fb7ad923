/**
 * The rows of a count result that a view needs. A job whose reduce ran on the workers keeps only
 * its first words in `counts`; the rest of the table is in its sorted parts (one per reduce
 * partition, beside the result), read here when a view asks for more.
 */
import type { CountResult } from '../shared/kinds/count.js';
import { compareCodePoints } from '../shared/text/words.js';
import type { JobStore } from './job-store.js';

/** `result` with at least the first `top` rows in `counts` (every row for top 0). */
export async function withRows(result: CountResult, top: number, store: JobStore): Promise<CountResult> {
  const needed = top === 0 ? result.uniqueWords : Math.min(top, result.uniqueWords);
  if (!result.parts || result.counts.length >= needed) return result;
  const rows: [string, number][] = [];
  const decoder = new TextDecoder('utf-8', { fatal: true });
  for (const name of result.parts) {
    const pieces: Uint8Array[] = [];
    for await (const piece of store.readObject(name)) pieces.push(piece);
    const text = decoder.decode(Buffer.concat(pieces));
    const lines = text.split('\n');
    if (lines[0] !== 'tally-part 1') throw new Error(`part '${name}' is malformed`);
    for (let i = 1; i < lines.length; i++) {
      const line = lines[i]!;
      if (line === '') continue;
      const tab = line.lastIndexOf('\t');
      rows.push([line.slice(0, tab), Number(line.slice(tab + 1))]);
    }
  }
  rows.sort((a, b) => b[1] - a[1] || compareCodePoints(a[0], b[0]));
  return { ...result, counts: rows };
}
