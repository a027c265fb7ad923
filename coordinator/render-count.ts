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
export class CountText {
  readonly twoPasses: boolean;
  /** Table: rows measured; the widths of the #, word and count columns. */
  private measured = 0;
  private indexWidth = 1;
  private wordWidth = 4;
  private countWidth = 5;
  /** Rows printed. */
  private printed = 0;
  private readonly jsonHead: string = '';
  private readonly jsonTail: string = '';

  constructor(
    private readonly summary: CountSummary,
    private readonly format: Format,
  ) {
    this.twoPasses = format === 'table';
    if (format === 'json') [this.jsonHead, this.jsonTail] = jsonAround(summary);
  }

  /** Table, first pass: takes a row's widths into account. */
  measure(word: string, count: number): void {
    this.measured++;
    const text = terminalSafe(word);
    // A cell is at most 2 columns per UTF-16 unit: measure only those that might be wider.
    if (text.length * 2 > this.wordWidth) this.wordWidth = Math.max(this.wordWidth, displayWidth(text));
    this.countWidth = Math.max(this.countWidth, displayWidth(String(count)));
  }

  /** What comes before the first row. */
  head(): string {
    switch (this.format) {
      case 'json':
        return this.jsonHead;
      case 'tsv':
        return '';
      case 'csv':
        return 'word,count\n';
      case 'table': {
        if (this.measured === 0) return '';
        this.indexWidth = Math.max(1, String(this.measured).length);
        const line = `#${' '.repeat(this.indexWidth - 1)}  word${' '.repeat(this.wordWidth - 4)}  count${' '.repeat(this.countWidth - 5)}`;
        return `${line.trimEnd()}\n`;
      }
    }
  }

  /** One row's text. */
  row(word: string, count: number): string {
    const i = ++this.printed;
    switch (this.format) {
      case 'json':
        return `${i === 1 ? '' : ','}[${JSON.stringify(word)},${jsonNumber(count)}]`;
      case 'tsv':
        return `${word}\t${count}\n`;
      case 'csv':
        return `${csvField(word)},${count}\n`;
      case 'table': {
        const text = terminalSafe(word);
        const width = displayWidth(text);
        const index = String(i);
        const number = String(count);
        const countWidth = displayWidth(number);
        if (i > this.measured || width > this.wordWidth || countWidth > this.countWidth) throw new Error('count rows changed between the two passes over them');
        return `${' '.repeat(this.indexWidth - index.length)}${index}  ${text}${' '.repeat(this.wordWidth - width)}  ${' '.repeat(this.countWidth - countWidth)}${number}\n`;
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
          `${counted(r.totalWords, 'word')}, ${r.uniqueWords} unique, ${r.overlongWords} overlong` +
          ` · ${counted(r.files, 'file')}${r.mergedPaths ? ` (${counted(r.mergedPaths, 'repeated path')} counted once)` : ''}, ${counted(r.bytes, 'byte')}, ${counted(r.tasks, 'task')} · job ${r.job}\n`;
        return (this.measured === 0 ? '(no words)\n' : '') + totals;
      }
    }
  }
}

/** A number as JSON.stringify writes it. */
function jsonNumber(n: number): string {
  return Number.isFinite(n) ? String(n) : 'null';
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
  if (text.twoPasses) for (const [word, count] of rows) text.measure(word, count);
  let out = text.head();
  for (const [word, count] of rows) out += text.row(word, count);
  return out + text.tail();
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
  if (text.twoPasses) await eachRow(openRows(), limit, (word, count) => text.measure(word, count));
  let out = text.head();
  await eachRow(
    openRows(),
    limit,
    (word, count) => {
      out += text.row(word, count);
    },
    async () => {
      if (out.length < FLUSH_CHARS) return;
      const full = out;
      out = '';
      await write(full);
    },
  );
  out += text.tail();
  if (out !== '') await write(out);
}

/**
 * Calls `fn` for the first `limit` rows, and `pause` (awaited) now and then between them.
 * Stops reading (closing the rows) once it has `limit` rows.
 */
async function eachRow(rows: CountRows, limit: number, fn: (word: string, count: number) => void, pause?: () => Promise<void>): Promise<void> {
  if (limit <= 0) return;
  let n = 0;
  const batches = batchesOf(rows);
  if (batches !== undefined) {
    for await (const batch of batches) {
      for (const [word, count] of batch) {
        fn(word, count);
        if (++n >= limit) return;
      }
      await pause?.();
    }
    return;
  }
  if (Symbol.iterator in rows) {
    for (const [word, count] of rows) {
      fn(word, count);
      if (++n >= limit) return;
      if ((n & 1023) === 0) await pause?.();
    }
    return;
  }
  for await (const item of rows) {
    if (typeof item[0] === 'string') {
      const [word, count] = item as CountRow;
      fn(word, count);
      if (++n >= limit) return;
      if ((n & 1023) === 0) await pause?.();
      continue;
    }
    for (const [word, count] of item as readonly CountRow[]) {
      fn(word, count);
      if (++n >= limit) return;
    }
    await pause?.();
  }
}
