/**
 * Count tasks that name a file range instead of carrying the bytes (workersReadFiles): the
 * counts equal an independent regex counter's, a file changed after the coordinator cut it
 * fails the task instead of being counted, and a worker reads nothing unless it allows it.
 * The job-wide word table is checked for counts beyond 32 bits.
 */
import test from 'ava';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { countKind, type CountOptions } from '../shared/kinds/count.js';
import { setFileReads } from '../shared/kinds/file-reads.js';
import type { Task } from '../shared/kinds/kind.js';
import { TaskRejectedError } from '../shared/errors.js';
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

function optionsFor(path: string, size: number): CountOptions {
  return { inputs: [{ path, size }], tokenizer: 'unicode', caseSensitive: false, maxWordBytes: 1024, chunkSize: 4096, workersReadFiles: true };
}

test.serial('tasks name the file range, and counting them equals an independent counter', async (t) => {
  const path = join(dir, 'mixed.txt');
  const text = sampleText();
  writeFileSync(path, text);
  const options = optionsFor(path, Buffer.byteLength(text));
  const tasks = await tasksOf(options);
  t.true(tasks.length > 5);
  for (const task of tasks) {
    t.is(task.body, undefined, 'no bytes travel in the task');
    t.is((task.spec as { path: string }).path, path);
  }
  setFileReads(true);
  try {
    const acc = countKind.init(options);
    tasks.forEach((task, i) => countKind.reduce(acc, countKind.map(task.spec, NO_BODY, context) as Uint8Array, i));
    const result = countKind.finalize(acc, { job: 'local', tasks: tasks.length }, options) as { totalWords: number; counts: [string, number][] };
    const expected = referenceCount(readFileSync(path), { tokenizer: 'unicode', caseSensitive: false, maxWordBytes: 1024 });
    t.is(result.totalWords, expected.totalWords);
    t.deepEqual(result.counts, expected.counts);
  } finally {
    setFileReads(false);
  }
});

test.serial('a file changed after it was cut fails its task; nothing is counted from it', async (t) => {
  const path = join(dir, 'changing.txt');
  const text = sampleText();
  writeFileSync(path, text);
  const tasks = await tasksOf(optionsFor(path, Buffer.byteLength(text)));
  setFileReads(true);
  try {
    // Same length, one letter changed: only a content check can tell.
    const changed = Buffer.from(text);
    const at = 5000;
    changed[at] = changed[at] === 0x61 ? 0x62 : 0x61;
    writeFileSync(path, changed);
    const spec = (i: number) => tasks[i].spec as { offset: number; length: number };
    const hit = tasks.findIndex((_, i) => spec(i).offset <= at && at < spec(i).offset + spec(i).length);
    t.throws(() => countKind.map(tasks[hit].spec, NO_BODY, context), { instanceOf: TaskRejectedError, message: /changed while it was being counted: bytes \d+-\d+ differ/ });
    // A chunk before the change still reads the same bytes.
    t.notThrows(() => countKind.map(tasks[0].spec, NO_BODY, context));
    writeFileSync(path, text.slice(0, 100));
    t.throws(() => countKind.map(tasks[tasks.length - 1].spec, NO_BODY, context), { instanceOf: TaskRejectedError, message: /now ends before byte/ });
    rmSync(path);
    t.throws(() => countKind.map(tasks[0].spec, NO_BODY, context), { instanceOf: TaskRejectedError, message: /cannot read .*no such file/ });
  } finally {
    setFileReads(false);
  }
});

test.serial('a worker that does not allow file reads refuses, naming the way out', async (t) => {
  const path = join(dir, 'plain.txt');
  writeFileSync(path, 'one two three');
  const [task] = await tasksOf(optionsFor(path, 13));
  t.throws(() => countKind.map(task.spec, NO_BODY, context), { instanceOf: TaskRejectedError, message: /does not read files .*--read-files/ });
});

test.serial('file specs are validated before anything is read', async (t) => {
  const path = join(dir, 'valid.txt');
  writeFileSync(path, 'one two three');
  const [task] = await tasksOf(optionsFor(path, 13));
  const spec = task.spec as Record<string, unknown>;
  setFileReads(true);
  try {
    for (const bad of [{ path: 'relative.txt' }, { path: 5 }, { length: 0 }, { length: 1e12 }, { crc32: -1 }, { crc32: 2 ** 32 }, { crc32: undefined }]) {
      t.throws(() => countKind.map({ ...spec, ...bad }, NO_BODY, context), { instanceOf: TaskRejectedError }, JSON.stringify(bad));
    }
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
