/**
 * How a count result is printed, in each format (table, json, tsv, csv) and for any --top:
 * from a result in memory ({@link renderCount}) or streamed from its rows in order
 * ({@link writeCount}: the k-way merge of a job's sorted parts, never all in memory). Both
 * go through the same {@link CountText}, so they print the same bytes.
 */
import type { CountResult } from '../shared/kinds/count.js';
import { batchesOf } from '../shared/text/row-batches.js';
import { counted, csvField, displayWidth, terminalSafe, type Format } from './output.js';

export interface CountView {
  format: Format;
  /** Words to show; 0 shows every word. */
  top: number;
}

/** A count result without its rows: what the job's record says. */
export type CountSummary = Omit<CountResult, 'counts'>;

/** A row: a word and its count. */
export type CountRow = readonly [word: string, count: number];

/**
 * A result's rows, in order (count descending, then code point order): one at a time, or in
 * arrays of consecutive rows (as readPartBatches and mergePartBatches make them). Rows from
 * readPart or mergeParts that nobody has started to read are taken in batches.
 */
export type CountRows = Iterable<CountRow> | AsyncIterable<CountRow | readonly CountRow[]>;

/** Where text goes: a promise returned is awaited before more is written. */
export type WriteText = (text: string) => void | Promise<void>;

/** Text is handed to `write` in strings of about this many characters. */
const FLUSH_CHARS = 64 * 1024;

/**
 * The text of a count result, a row at a time. A table needs its columns' widths before its
 * first line: {@link measure} every row first (when {@link twoPasses}), then print.
 */
class CountText {
  readonly twoPasses: boolean;
  /** Table: rows measured; the widths of the #, word and count columns. */
  private measured = 0;
  private indexWidth = 1;
  private wordWidth: number;
  private countWidth = 5;
  /** What a row holds: "word", or "2-gram" for an n-gram count. */
  private readonly rowName: string;
  /** Rows printed. */
  private printed = 0;
  private readonly jsonHead: string = '';
  private readonly jsonTail: string = '';

  constructor(
    private readonly summary: CountSummary,
    private readonly format: Format,
  ) {
    this.twoPasses = format === 'table';
    this.rowName = summary.kind === 'ngrams' ? `${summary.n}-gram` : 'word';
    this.wordWidth = this.rowName.length;
    if (format === 'json') [this.jsonHead, this.jsonTail] = jsonAround(summary);
  }

  /**
   * Table, first pass: takes the widths of rows into account.
   * @param cells when given, gets the rows' cells, for {@link rows} to take them from rather
   *   than measure them again (for rows in memory)
   */
  measure(rows: readonly CountRow[], cells?: Cell[]): void {
    let wordWidth = this.wordWidth;
    let countWidth = this.countWidth;
    for (const [word, count] of rows) {
      if (cells) {
        const c = cell(word);
        cells.push(c);
        wordWidth = Math.max(wordWidth, c.width);
      }
      // A cell is at most 2 columns per UTF-16 unit: measure only those that might be wider.
      else if (word.length * 2 > wordWidth) wordWidth = Math.max(wordWidth, cell(word).width);
      // A number is printable ASCII: a column per character.
      countWidth = Math.max(countWidth, String(count).length);
    }
    this.measured += rows.length;
    this.wordWidth = wordWidth;
    this.countWidth = countWidth;
  }

  /** What comes before the first row. */
  head(): string {
    switch (this.format) {
      case 'json':
        return this.jsonHead;
      case 'tsv':
        return '';
      case 'csv':
        return `${this.rowName},count\n`;
      case 'table': {
        if (this.measured === 0) return '';
        this.indexWidth = Math.max(1, String(this.measured).length);
        const line = `#${' '.repeat(this.indexWidth - 1)}  ${this.rowName}${' '.repeat(this.wordWidth - this.rowName.length)}  count${' '.repeat(this.countWidth - 5)}`;
        return `${line.trimEnd()}\n`;
      }
    }
  }

  /** The text of the next rows (for a table, with their cells if measure kept them). */
  rows(rows: readonly CountRow[], cells?: readonly Cell[]): string {
    if (rows.length === 0) return '';
    const first = this.printed === 0;
    this.printed += rows.length;
    switch (this.format) {
      case 'json': {
        // The rows as JSON.stringify writes an array of them, without its brackets.
        const json = JSON.stringify(rows);
        return first ? json.slice(1, -1) : `,${json.slice(1, -1)}`;
      }
      case 'tsv': {
        let out = '';
        for (const [word, count] of rows) out += `${word}\t${count}\n`;
        return out;
      }
      case 'csv': {
        let out = '';
        for (const [word, count] of rows) out += `${csvField(word)},${count}\n`;
        return out;
      }
      case 'table': {
        if (this.printed > this.measured) throw new Error('count rows changed between the two passes over them');
        let out = '';
        let i = this.printed - rows.length;
        let k = 0;
        for (const [word, count] of rows) {
          const { text, width } = cells ? cells[k++]! : cell(word);
          const index = String(++i);
          const number = String(count);
          if (width > this.wordWidth || number.length > this.countWidth) throw new Error('count rows changed between the two passes over them');
          out += `${' '.repeat(this.indexWidth - index.length)}${index}  ${text}${' '.repeat(this.wordWidth - width)}  ${' '.repeat(this.countWidth - number.length)}${number}\n`;
        }
        return out;
      }
    }
  }

  /** What comes after the last row. */
  tail(): string {
    switch (this.format) {
      case 'json':
        return this.jsonTail;
      case 'tsv':
      case 'csv':
        return '';
      case 'table': {
        if (this.printed !== this.measured) throw new Error('count rows changed between the two passes over them');
        const r = this.summary;
        const totals =
          `${counted(r.totalWords, this.rowName)}, ${r.uniqueWords} unique, ${r.overlongWords} overlong` +
          ` · ${counted(r.files, 'file')}${r.mergedPaths ? ` (${counted(r.mergedPaths, 'repeated path')} counted once)` : ''}, ${counted(r.bytes, 'byte')}, ${counted(r.tasks, 'task')} · job ${r.job}\n`;
        return (this.measured === 0 ? `(no ${this.rowName}s)\n` : '') + totals;
      }
    }
  }
}

/** Printable ASCII but the backslash: shown as it is, a column a character. */
const PLAIN = /^[\x20-\x5b\x5d-\x7e]*$/;

/** A word as a table shows it (see formatTable), and its width. */
type Cell = { text: string; width: number };

function cell(word: string): Cell {
  if (PLAIN.test(word)) return { text: word, width: word.length };
  const text = terminalSafe(word);
  return { text, width: displayWidth(text) };
}

/**
 * The JSON of `{ ...summary, counts }` before and after the rows of `counts`: keys in the
 * order JSON.stringify takes them (counts last unless the summary has it elsewhere).
 */
function jsonAround(summary: CountSummary): [string, string] {
  const object: Record<string, unknown> = { ...summary, counts: null };
  let head = '{';
  let tail = '';
  let first = true;
  let after = false;
  for (const key of Object.keys(object)) {
    let text: string;
    if (key === 'counts') {
      text = '"counts":[';
      after = true;
    } else {
      const value = JSON.stringify(object[key]);
      if (value === undefined) continue;
      text = `${JSON.stringify(key)}:${value}`;
    }
    text = first ? text : `,${text}`;
    first = false;
    if (key === 'counts') head += text;
    else if (after) tail += text;
    else head += text;
  }
  return [head, `]${tail}}\n`];
}

/**
 * Renders a count result held in memory the way `tally count` and `tally result` print it.
 */
export function renderCount(result: CountResult, view: CountView): string {
  const text = new CountText(result, view.format);
  const rows = view.top === 0 ? result.counts : result.counts.slice(0, view.top);
  const cells: Cell[] | undefined = text.twoPasses ? [] : undefined;
  if (text.twoPasses) text.measure(rows, cells);
  return text.head() + text.rows(rows, cells) + text.tail();
}

/**
 * Writes a count result from its summary and its rows, exactly as {@link renderCount} would
 * render the same result, without holding the rows: text goes to `write` in pieces of about
 * 64 KiB (none empty), and only the first `view.top` rows are read (all when 0). Rows that
 * fail to come (a malformed part) throw after some text has been written.
 * @param summary the result without its rows (job, kind, files, optional mergedPaths, bytes,
 *   tasks, totalWords, uniqueWords, overlongWords); json keeps its keys' order
 * @param openRows opens the rows, in order; called twice for a table (widths, then lines)
 * @param view format and top
 * @param write takes the text; a returned promise is awaited before more is written
 */
export async function writeCount(summary: CountSummary, openRows: () => CountRows, view: CountView, write: WriteText): Promise<void> {
  const limit = view.top === 0 ? Infinity : view.top;
  const text = new CountText(summary, view.format);
  if (text.twoPasses) await eachBatch(openRows(), limit, (rows) => text.measure(rows));
  let out = text.head();
  await eachBatch(openRows(), limit, async (rows) => {
    out += text.rows(rows);
    if (out.length < FLUSH_CHARS) return;
    const full = out;
    out = '';
    await write(full);
  });
  out += text.tail();
  if (out !== '') await write(out);
}

/** Rows gathered from sources that give them one at a time. */
const BATCH_ROWS = 1024;

/**
 * Calls `fn` (awaited) with the first `limit` rows, a batch at a time. Stops reading (closing
 * the rows) once it has `limit` rows.
 */
async function eachBatch(rows: CountRows, limit: number, fn: (rows: readonly CountRow[]) => void | Promise<void>): Promise<void> {
  if (limit <= 0) return;
  let left = limit;
  /** Hands over a batch; false once the limit is reached. */
  const give = async (batch: readonly CountRow[]): Promise<boolean> => {
    if (batch.length >= left) {
      await fn(batch.length === left ? batch : batch.slice(0, left));
      left = 0;
      return false;
    }
    left -= batch.length;
    await fn(batch);
    return true;
  };
  const batches = batchesOf(rows);
  if (batches !== undefined) {
    for await (const batch of batches) if (!(await give(batch))) return;
    return;
  }
  let batch: CountRow[] = [];
  if (Symbol.iterator in rows) {
    if (Array.isArray(rows)) {
      const all = rows as readonly CountRow[];
      for (let i = 0; i < all.length; i += BATCH_ROWS) if (!(await give(all.slice(i, i + BATCH_ROWS)))) return;
      return;
    }
    for (const row of rows) {
      batch.push(row);
      if (batch.length === Math.min(BATCH_ROWS, left)) {
        if (!(await give(batch))) return;
        batch = [];
      }
    }
  } else {
    for await (const item of rows) {
      if (typeof item[0] !== 'string') {
        // A batch: what was gathered before it first.
        if (batch.length > 0 && !(await give(batch))) return;
        batch = [];
        if ((item as readonly CountRow[]).length > 0 && !(await give(item as readonly CountRow[]))) return;
        continue;
      }
      batch.push(item as CountRow);
      if (batch.length === Math.min(BATCH_ROWS, left)) {
        if (!(await give(batch))) return;
        batch = [];
      }
    }
  }
  if (batch.length > 0) await give(batch);
}
