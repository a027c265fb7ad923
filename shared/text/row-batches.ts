/**
 * Rows of sorted parts in batches. An await per row costs ~0.2-0.5 µs, more than reading,
 * merging or printing the row: readPart and mergeParts make their rows from batches (arrays
 * of consecutive rows), and whoever gets those rows untouched can take the batches instead
 * (batchesOf). Kept apart from sorted-part.ts so that the count renderer, which loads with the
 * CLI, does not load the tokenizer.
 */

/** A row of a part: a word and its count. */
export type PartRow = [word: string, count: number];

/**
 * What is known of a batch that readPartBatches or mergePartBatches made: CHECKED, its rows
 * are in order, also after the last row of the batch before; COMPARABLE, its words hold no
 * UTF-16 unit from U+D800 on, so JavaScript's `<` orders them by code point (it orders by
 * UTF-16 unit, which differs only where surrogates meet U+E000-U+FFFF).
 */
export const BATCH_FLAGS = new WeakMap<PartRow[], number>();
export const CHECKED = 1;
export const COMPARABLE = 2;

/** Row streams made by rowsOf, with the batches they flatten (until either is taken). */
const BATCHED = new WeakMap<object, { batches: AsyncGenerator<PartRow[], void, undefined>; taken: boolean }>();

/** The rows of a stream of batches, one at a time; its batches stay available to batchesOf. */
export function rowsOf(batches: AsyncGenerator<PartRow[], void, undefined>): AsyncGenerator<PartRow, void, undefined> {
  const entry = { batches, taken: false };
  const rows = (async function* () {
    if (entry.taken) throw new Error('these rows were taken in batches (by mergeParts or the count renderer)');
    entry.taken = true;
    for await (const batch of batches) for (const row of batch) yield row;
  })();
  BATCHED.set(rows, entry);
  return rows;
}

/**
 * The batches behind rows from readPart or mergeParts (sorted-part.ts) that nobody has started
 * to read: taking them is much faster than taking the rows one await at a time, and leaves the
 * rows unusable (they throw). Undefined for any other iterable, or rows already started.
 */
export function batchesOf(rows: object): AsyncIterable<PartRow[]> | undefined {
  const entry = BATCHED.get(rows);
  if (entry === undefined || entry.taken) return undefined;
  entry.taken = true;
  return entry.batches;
}

