/**
 * Count tasks that name file ranges instead of carrying the bytes (workersReadFiles): the
 * coordinator reads no text, many small files share a task, the counts equal an independent
 * regex counter's, a file changed since the job started fails the task instead of being
 * counted, and a worker reads nothing unless it allows it. The job-wide word table is checked
 * for counts beyond 32 bits.
 */
import test from 'ava';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { countKind, type CountOptions } from '../shared/kinds/count.js';
import { setFileReads } from '../shared/kinds/file-reads.js';
import { tokenizeEntries, type RangeEntry } from '../shared/text/file-input.js';
import { ChunkWords } from '../shared/text/words.js';
import type { Task } from '../shared/kinds/kind.js';
import { InputChangedError, TaskRejectedError } from '../shared/errors.js';
import { IDENTITY, WordTable } from '../shared/text/word-table.js';
import { referenceCount } from './helpers/reference-counter.js';

const dir = mkdtempSync(join(tmpdir(), 'tally-file-reads-'));
test.after.always(() => rmSync(dir, { recursive: true, force: true }));

const NO_BODY = new Uint8Array(0);
const context = { working: () => undefined };

/** Mixed-script text with apostrophes and case, long enough for several 4 KiB chunks. */
function sampleText(): string {
  const words = ["Don't", 'l’homme', 'ΟΔΟΣ', 'Οδός', 'straße', 'STRASSE', '日本語', 'the', 'The', 'THE', 'x1', '42', 'naïve', 'café', 'ünïcödé'];
  let text = '';
  for (let i = 0; i < 6000; i++) text += words[(i * 7919) % words.length] + (i % 13 === 0 ? '\n' : i % 5 === 0 ? ', ' : ' ');
  return text;
}

async function tasksOf(options: CountOptions): Promise<Task[]> {
  const tasks: Task[] = [];
  for await (const task of countKind.split(options, { maxBodyBytes: 1 << 20 })) tasks.push(task);
  return tasks;
}

function optionsFor(path: string): CountOptions {
  const st = statSync(path, { bigint: true });
  return { inputs: [{ path, size: Number(st.size), mtimeMs: Number(st.mtimeMs) }], tokenizer: 'unicode', caseSensitive: false, maxWordBytes: 1024, chunkSize: 4096, workersReadFiles: true };
}

/** Runs every task through map and reduce, as workers and the coordinator would. */
function countTasks(options: CountOptions, tasks: Task[]): { totalWords: number; counts: [string, number][]; bytes: number } {
  const acc = countKind.init(options);
  tasks.forEach((task, i) => countKind.reduce(acc, countKind.map(JSON.parse(JSON.stringify(task.spec)), NO_BODY, context) as Uint8Array, i));
  return countKind.finalize(acc, { job: 'local', tasks: tasks.length }, options) as { totalWords: number; counts: [string, number][]; bytes: number };
}

test.serial('tasks name file ranges, and counting them equals an independent counter', async (t) => {
  const path = join(dir, 'mixed.txt');
  const text = sampleText();
  writeFileSync(path, text);
  const options = optionsFor(path);
  const tasks = await tasksOf(options);
  t.true(tasks.length > 5);
  for (const task of tasks) {
    t.is(task.body, undefined, 'no bytes travel in the task');
    t.is((task.spec as { ranges: RangeEntry[] }).ranges[0]![1], path);
  }
  setFileReads(true);
  try {
    const result = countTasks(options, tasks);
    const expected = referenceCount(readFileSync(path), { tokenizer: 'unicode', caseSensitive: false, maxWordBytes: 1024 });
    t.is(result.bytes, Buffer.byteLength(text));
    t.is(result.totalWords, expected.totalWords);
    t.deepEqual(result.counts, expected.counts);
  } finally {
    setFileReads(false);
  }
});

test.serial('many small files share tasks of about the chunk size; the counts equal the counter over all of them', async (t) => {
  const folder = join(dir, 'many');
  mkdirSync(folder, { recursive: true });
  const texts: Buffer[] = [];
  const inputs: CountOptions['inputs'] = [];
  for (let i = 0; i < 300; i++) {
    // Files of 0 to ~180 bytes, some ending inside a word: a file's end is a word's end.
    const text = Buffer.from(sampleText().slice(i * 7, i * 7 + ((i * 37) % 181)));
    const path = join(folder, `${String(i).padStart(3, '0')}.txt`);
    writeFileSync(path, text);
    texts.push(text);
    const st = statSync(path, { bigint: true });
    inputs.push({ path, size: text.length, mtimeMs: Number(st.mtimeMs) });
  }
  const options: CountOptions = { ...optionsFor(join(folder, '000.txt')), inputs };
  const tasks = await tasksOf(options);
  const bytes = texts.reduce((sum, text) => sum + text.length, 0);
  t.is(tasks.length, Math.ceil(bytes / 4096), 'tasks of 4 KiB, as many files as fit');
  t.is(tasks.reduce((sum, task) => sum + (task.spec as { ranges: RangeEntry[] }).ranges.length, 0), 300 + tasks.length - 1, 'each file once, plus a piece of a file split between two tasks');
  setFileReads(true);
  try {
    const result = countTasks(options, tasks);
    const expected = referenceCount(texts, { tokenizer: 'unicode', caseSensitive: false, maxWordBytes: 1024 });
    t.is(result.bytes, bytes);
    t.is(result.totalWords, expected.totalWords);
    t.deepEqual(result.counts, expected.counts);
  } finally {
    setFileReads(false);
  }
});

test.serial('a file changed since the job started fails its task; nothing is counted from it', async (t) => {
  const path = join(dir, 'changing.txt');
  const text = sampleText();
  writeFileSync(path, text);
  const tasks = await tasksOf(optionsFor(path));
  setFileReads(true);
  try {
    // Same length, one letter changed, the modification time moved: no byte is compared, the time is.
    const changed = Buffer.from(text);
    changed[5000] = changed[5000] === 0x61 ? 0x62 : 0x61;
    writeFileSync(path, changed);
    utimesSync(path, new Date(), new Date(Date.now() + 5000));
    t.throws(() => countKind.map(tasks[1].spec, NO_BODY, context), { instanceOf: TaskRejectedError, message: /changing\.txt changed while it was being counted: modified / });
    writeFileSync(path, text.slice(0, 100));
    t.throws(() => countKind.map(tasks[tasks.length - 1].spec, NO_BODY, context), { instanceOf: TaskRejectedError, message: /changed while it was being counted: it has \d+ bytes, not \d+/ });
    rmSync(path);
    t.throws(() => countKind.map(tasks[0].spec, NO_BODY, context), { instanceOf: TaskRejectedError, message: /cannot read .*no such file/ });
  } finally {
    setFileReads(false);
  }
});

test.serial('a worker that does not allow file reads refuses, naming the way out', async (t) => {
  const path = join(dir, 'plain.txt');
  writeFileSync(path, 'one two three');
  const [task] = await tasksOf(optionsFor(path));
  t.throws(() => countKind.map(task.spec, NO_BODY, context), { instanceOf: TaskRejectedError, message: /does not read files .*--read-files/ });
});

test.serial('range specs are validated before anything is read', async (t) => {
  const path = join(dir, 'valid.txt');
  writeFileSync(path, 'one two three');
  const [task] = await tasksOf(optionsFor(path));
  const spec = task.spec as { ranges: RangeEntry[] };
  const [range] = spec.ranges;
  setFileReads(true);
  try {
    const bad: unknown[] = [
      [0, 'relative.txt', 13, range![3], 0, 13],
      [0, 5, 13, range![3], 0, 13],
      [0, path, 13, range![3], 5, 2],
      [0, path, 13, range![3], 0, 14],
      [0, path, 13, range![3], 0, 1e12],
      [0, path, -1, range![3], 0, 0],
      [0, path, 13, 'yesterday', 0, 13],
      [0, path, 13],
      [-1, path, 13, range![3], 0, 13],
    ];
    for (const entry of bad) t.throws(() => countKind.map({ ...spec, ranges: [entry] }, NO_BODY, context), { instanceOf: TaskRejectedError }, JSON.stringify(entry));
    t.throws(() => countKind.map({ ...spec, ranges: [] }, NO_BODY, context), { instanceOf: TaskRejectedError, message: /1 to \d+ entries/ });
    t.throws(() => countKind.map({ ...spec, chunks: [[0, 0, 0, 0]] }, NO_BODY, context), { instanceOf: TaskRejectedError, message: /either ranges or chunks/ });
    t.throws(() => countKind.map(spec, new Uint8Array([0x61]), context), { instanceOf: TaskRejectedError, message: /carries no bytes/ });
  } finally {
    setFileReads(false);
  }
});

test('the job-wide word table keeps counts past 2^31 exact', (t) => {
  const table = new WordTable(IDENTITY);
  const word = new TextEncoder().encode('the');
  const other = new TextEncoder().encode('cat');
  const add = (bytes: Uint8Array, n: number) => {
    let h = 0x811c9dc5 | 0;
    let tail = 0;
    for (const b of bytes) {
      h = Math.imul(h ^ b, 0x01000193);
      tail = (tail << 8) | b;
    }
    table.add(bytes, 0, bytes.length, h, tail, true, n);
  };
  add(word, 2 ** 30 - 1);
  add(word, 2 ** 30);
  add(other, 7);
  add(word, 2 ** 31);
  add(word, 5);
  t.deepEqual(table.entries().sort(), [['cat', 7], ['the', 2 ** 30 - 1 + 2 ** 30 + 2 ** 31 + 5]]);
});

test("reading a range: a file that ends early or fails to read is named as changed; any other failure stays the task's own (tried again, not blamed on the file)", (t) => {
  const text = Buffer.from(sampleText());
  const settings = { tokenizer: 'unicode', caseSensitive: false, maxWordBytes: 64 } as const;
  const entry: RangeEntry = [0, '/data/book.txt', text.length, 0, 0, text.length];
  const countWith = (read: (target: Uint8Array, position: number, length: number) => number) =>
    tokenizeEntries({ ranges: [entry] }, NO_BODY, settings, new ChunkWords(false, text.length), undefined, () => ({ source: { size: text.length, read }, close: () => undefined }));
  // The whole file: counted as the reference counts it.
  const whole = countWith((target, position, length) => text.copy(target, 0, position, position + length));
  t.is(whole.totalWords, referenceCount(text, settings).totalWords);
  // Shorter than its size said: the file shrank while it was read.
  const short = t.throws(() => countWith((target, position, length) => text.copy(target, 0, position, Math.min(position + length, 1000))), { instanceOf: InputChangedError });
  t.regex(short!.message, /^\/data\/book\.txt changed while it was being counted: it ends at byte 1000, before its size/);
  // The system refused a read (EIO: a disk error, a network share gone).
  const failing = () => {
    throw Object.assign(new Error('EIO: i/o error, read'), { code: 'EIO' });
  };
  t.throws(() => countWith(failing), { instanceOf: InputChangedError, message: /^\/data\/book\.txt changed while it was being counted: EIO/ });
  // A fault of the worker itself is not the file's: it stays what it is.
  const broken = () => {
    throw new TypeError('x.scan is not a function');
  };
  const own = t.throws(() => countWith(broken));
  t.false(own instanceof TaskRejectedError, 'not refused for good: another delivery may succeed');
  t.is(own!.message, 'x.scan is not a function');
});
