/**
 * Printing a count result. A job whose reduce ran on the workers keeps only its first words in
 * `counts`; the rest of its table is in sorted parts beside the result (one per reduce
 * partition). When a view asks for more words than `counts` holds, the parts are read and
 * merged as they stream in: memory stays bounded however many words the table has, and
 * `--top K` reads only as far as it needs.
 */
import type { CountResult } from '../shared/kinds/count.js';
import { mergeParts, readPart } from '../shared/text/sorted-part.js';
import type { JobStore } from './job-store.js';
import { emitStream, loadDisplayWidth, needsDisplayWidth } from './output.js';
import { renderCount, writeCount, type CountView } from './render-count.js';

/**
 * Writes `result` as `view` asks, to stdout or `output` (see emitStream), reading its parts
 * through `store` when its `counts` do not hold the rows needed.
 * @param job named by a failed write to `output`, so that the stored result can be fetched later
 */
export async function printCount(result: CountResult, view: CountView, store: JobStore, output?: string, job?: string): Promise<void> {
  // Where the rest of the table lies is not part of what a job prints.
  const { parts, counts, ...summary } = result;
  const needed = view.top === 0 ? result.uniqueWords : Math.min(view.top, result.uniqueWords);
  const inCounts = !parts || counts.length >= needed;
  // string-width (~50-100 ms to load: Intl.Segmenter) only for a table that may show a word
  // beyond ASCII: rows read from parts are not known in advance.
  if (view.format === 'table' && (!inCounts || counts.slice(0, needed).some(([word]) => needsDisplayWidth(word)))) await loadDisplayWidth();
  if (inCounts) {
    await emitStream(async (write) => write(renderCount({ ...summary, counts }, view)), output, job);
    return;
  }
  const openRows = () => mergeParts(parts.map((name) => readPart(store.readObject(name), name)));
  await emitStream((write) => writeCount(summary, openRows, view, write), output, job);
}
