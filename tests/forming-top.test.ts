/**
 * The top words of a job while it forms (what the dashboard shows before the reducers run): each
 * map task lists its most frequent words, and the coordinator's fold of those lists bounds every
 * word's count in what was folded so far. The truth is the reference counter over the texts of
 * the tasks folded so far (tests/helpers/reference-counter.ts), never the code under test.
 *
 * Runs the kind's own split and partitioned map, and folds the summaries in a random order,
 * checking the bounds after every fold: a row's "at least" and "at most" must hold the true
 * count, and no word outside the rows may exceed the preview's `unlistedAtMost`.
 */
import test from 'ava';
import fc from 'fast-check';
import { statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { chunkTask, countKind, type CountOptions } from '../shared/kinds/count.js';
import { ngramsKind, type NgramsOptions } from '../shared/kinds/ngrams.js';
import { setFileReads } from '../shared/kinds/file-reads.js';
import { FormingTop, LISTED_PER_TASK, PREVIEW_ROWS, TopK, type TablePreview } from '../shared/text/forming-top.js';
import { referenceCount, referenceNgrams, type ReferenceSettings } from './helpers/reference-counter.js';
import { arbitrarySettings, arbitraryText, utf8 } from './helpers/texts.js';
import { tempDir } from './helpers/tally.js';

const dir = tempDir('tally-forming-');
test.after.always(() => dir.remove());
setFileReads(true);

/** A text of Zipf-distributed words from a vocabulary big enough that a task lists only some. */
const zipfText = fc
  .record({ vocabulary: fc.integer({ min: 40, max: 400 }), words: fc.integer({ min: 50, max: 3000 }), seed: fc.integer(), kelvin: fc.boolean() })
  .map(({ vocabulary, words, seed, kelvin }) => {
    let state = seed >>> 0 || 1;
    const random = () => ((state = Math.imul(state ^ (state >>> 15), 0x2c1b3c6d) + 0x6d2b79f5) >>> 0) / 2 ** 32;
    const out: string[] = [];
    for (let i = 0; i < words; i++) {
      const rank = Math.floor(vocabulary ** random());
      // "k" spelled with KELVIN SIGN folds to the ASCII word "k" (a second line of it in a table).
      out.push(kelvin && rank === 3 && random() < 0.5 ? '\u212a' : rank === 3 ? 'k' : `w${rank}${rank % 7 === 0 ? 'é' : ''}`);
    }
    return utf8(out.join(random() < 0.5 ? ' ' : '\n'));
  });

let runs = 0;

function filesOf(texts: Uint8Array[]) {
  const run = runs++;
  return texts.map((bytes, i) => {
    const path = join(dir.path, `run${run}-file${i}.txt`);
    writeFileSync(path, bytes);
    const st = statSync(path, { bigint: true });
    return { path, size: Number(st.size), mtimeMs: Number(st.mtimeMs) };
  });
}

/** The words of a full partial (`header\nword\tcount\n…`), summed. */
function partialWords(partial: Uint8Array): Map<string, number> {
  const words = new Map<string, number>();
  for (const line of new TextDecoder().decode(partial).split('\n').slice(1)) {
    if (line === '') continue;
    const tab = line.lastIndexOf('\t');
    words.set(line.slice(0, tab), (words.get(line.slice(0, tab)) ?? 0) + Number(line.slice(tab + 1)));
  }
  return words;
}

function checkBounds(t: import('ava').ExecutionContext, preview: TablePreview, truth: Map<string, number>, where: string): void {
  const shown = new Set<string>();
  for (const [word, atLeast, atMost] of preview.rows) {
    shown.add(word);
    const count = truth.get(word) ?? 0;
    if (!(atLeast <= count && count <= atMost)) t.fail(`${where}: ${JSON.stringify(word)} counted ${count}, shown as ${atLeast}..${atMost}`);
  }
  for (const [word, count] of truth) {
    if (!shown.has(word) && count > preview.unlistedAtMost) t.fail(`${where}: ${JSON.stringify(word)} counted ${count}, not shown, above the unlisted bound ${preview.unlistedAtMost}`);
  }
}

test('property: while a count forms, every shown word is within its bounds and no other word exceeds the unlisted bound', async (t) => {
  let tight = 0;
  await fc.assert(
    fc.asyncProperty(
      fc.array(fc.oneof({ weight: 3, arbitrary: zipfText }, { weight: 1, arbitrary: arbitraryText }), { minLength: 1, maxLength: 3 }),
      arbitrarySettings,
      fc.integer({ min: 64, max: 4096 }),
      fc.array(fc.nat(1000), { minLength: 1, maxLength: 16 }),
      async (texts, settings, chunkSize, order) => {
        const inputs = filesOf(texts);
        const options: CountOptions = { inputs, directory: dir.path, ...settings, chunkSize, workersReadFiles: true, reducers: 2 };
        const tasks: Array<{ summary: Uint8Array; words: Map<string, number> }> = [];
        for await (const task of countKind.split(options, { maxBodyBytes: 1 << 20 })) {
          const output = await countKind.partitioned!.map(task.spec, new Uint8Array(), { working() {} }, 2);
          // What the task itself counted (the full table of a job that reduces on the coordinator;
          // the map's exactness is what tests/count.test.ts and the others prove).
          tasks.push({ summary: output.summary, words: partialWords(countKind.map(task.spec, new Uint8Array(), { working() {} }) as Uint8Array) });
        }
        const sequence = tasks.map((_, i) => i).sort((a, b) => order[a % order.length]! - order[b % order.length]! || a - b);
        let acc = countKind.init(options);
        const truth = new Map<string, number>();
        for (const [k, i] of sequence.entries()) {
          acc = countKind.reduce(acc, tasks[i]!.summary, i);
          for (const [word, count] of tasks[i]!.words) truth.set(word, (truth.get(word) ?? 0) + count);
          const preview = countKind.preview!(acc, options) as unknown as TablePreview;
          t.false(preview.exact);
          checkBounds(t, preview, truth, `${k + 1} of ${tasks.length} tasks`);
        }
        // The folded tasks together are the whole input.
        t.deepEqual([...truth].sort(), referenceCount(texts, settings as ReferenceSettings).counts.sort());
        const last = countKind.preview!(acc, options) as unknown as TablePreview;
        if (last.rows.length > 0 && last.rows[0]![1] === last.rows[0]![2]) tight++;
      },
    ),
    { numRuns: 150 },
  );
  // The bounds are worth showing: most jobs' most frequent word comes out exact.
  t.true(tight > 75, `the first row was exact in ${tight} of 150 jobs`);
});

test('property: while n-grams form, every shown n-gram is within its bounds (n-grams across task edges included)', async (t) => {
  await fc.assert(
    fc.asyncProperty(fc.array(zipfText, { minLength: 1, maxLength: 2 }), arbitrarySettings, fc.integer({ min: 1, max: 3 }), fc.integer({ min: 64, max: 2048 }), async (texts, settings, n, chunkSize) => {
      const inputs = filesOf(texts);
      const options: NgramsOptions = { inputs, directory: dir.path, ...settings, chunkSize, workersReadFiles: true, reducers: 2, n };
      let acc = ngramsKind.init(options);
      let tasks = 0;
      for await (const task of ngramsKind.split(options, { maxBodyBytes: 1 << 20 })) {
        const output = await ngramsKind.partitioned!.map(task.spec, new Uint8Array(), { working() {} }, 2);
        acc = ngramsKind.reduce(acc, output.summary, tasks++);
      }
      const preview = ngramsKind.preview!(acc, options) as unknown as TablePreview;
      const truth = referenceNgrams(texts, settings as ReferenceSettings, n).counts;
      // An n-gram across the edge of a task's entry (a piece of a file) is joined only once every
      // map task is in: until then it is in the bounds, not a row. At most n - 1 of them cross
      // each cut inside a file, so more n-grams than that means one lies inside an entry.
      const entries = (acc as unknown as { edges: unknown[] }).edges.length;
      const total = truth.reduce((sum, [, count]) => sum + count, 0);
      if (total > (n - 1) * (entries - inputs.length)) t.true(preview.rows.length > 0, 'rows are shown');
      checkBounds(t, preview, new Map(truth), `${tasks} tasks, n=${n}`);
    }),
    { numRuns: 100 },
  );
});

test('a job that reduces on the coordinator shows the exact counts of what it folded', (t) => {
  const options: CountOptions = { inputs: [{ path: '-', size: null }], tokenizer: 'unicode', caseSensitive: false, maxWordBytes: 1024, chunkSize: 1 << 20 };
  let acc = countKind.init(options);
  const task = chunkTask({ start: 0, body: utf8('b A b c B a the end. b'), continuesWord: false, endsInsideWord: false, wordCounted: false }, { tokenizer: 'unicode', caseSensitive: false, maxWordBytes: 1024 });
  acc = countKind.reduce(acc, countKind.map(task.spec, task.body, { working() {} }) as Uint8Array, 0);
  const preview = countKind.preview!(acc, options) as unknown as TablePreview;
  t.true(preview.exact);
  t.deepEqual(preview.rows.slice(0, 2), [
    ['b', 4, 4],
    ['a', 2, 2],
  ]);
});

test('a listed word that starts with U+FEFF (a BOM inside a file, a whitespace token) keeps it', async (t) => {
  // Found by the property above: decoding the listing dropped a leading BOM, so the preview showed
  // "aa", a word the file does not hold. `wc -w` counts this text as one word.
  const [input] = filesOf([utf8('  \ufeffaa')]);
  const options: CountOptions = { inputs: [input!], directory: dir.path, tokenizer: 'whitespace', caseSensitive: false, maxWordBytes: 1024, chunkSize: 64, workersReadFiles: true, reducers: 2 };
  let acc = countKind.init(options);
  for await (const task of countKind.split(options, { maxBodyBytes: 1 << 20 })) {
    acc = countKind.reduce(acc, (await countKind.partitioned!.map(task.spec, new Uint8Array(), { working() {} }, 2)).summary, 0);
  }
  const preview = countKind.preview!(acc, options) as unknown as TablePreview;
  t.deepEqual(preview.rows, [['\ufeffaa', 1, 1]]);
});

test('bounds stay honest when the coordinator lets go of words (more distinct listed words than it keeps)', (t) => {
  let state = 12345;
  const random = () => ((state = Math.imul(state ^ (state >>> 15), 0x2c1b3c6d) + 0x6d2b79f5) >>> 0) / 2 ** 32;
  const forming = new FormingTop();
  const truth = new Map<string, number>();
  for (let task = 0; task < 600; task++) {
    // Ids that seldom repeat across tasks, and a few words every task has.
    const words = new Map<string, number>();
    for (let i = 0; i < 400; i++) {
      const word = random() < 0.3 ? `common${Math.floor(random() * 5)}` : `id${Math.floor(random() ** 3 * 50_000)}`;
      words.set(word, (words.get(word) ?? 0) + 1);
    }
    const top = new TopK<string>(LISTED_PER_TASK);
    for (const [word, count] of words) {
      top.offer(count, word);
      truth.set(word, (truth.get(word) ?? 0) + count);
    }
    forming.fold({ rows: top.kept(), unlisted: top.unlisted });
    if (task % 50 === 49) checkBounds(t, { ...forming.preview(PREVIEW_ROWS), exact: false }, truth, `${task + 1} tasks`);
  }
  t.true(truth.size > 8192, `${truth.size} distinct words, more than the coordinator keeps`);
  const rows = forming.preview(5).rows;
  t.deepEqual(rows.map((row) => row[0]).sort(), ['common0', 'common1', 'common2', 'common3', 'common4']);
});

test('a word let go and listed again keeps an upper bound above its true count', (t) => {
  const forming = new FormingTop();
  // Its first 100 are listed, then many more frequent words push it out, then it comes back.
  forming.fold({ rows: [['phoenix', 100]], unlisted: 0 });
  for (let i = 0; i < 5000; i++) forming.fold({ rows: [[`word${i}`, 1000]], unlisted: 0 });
  for (let i = 0; i < 3; i++) forming.fold({ rows: [['phoenix', 1]], unlisted: 0 });
  const row = forming.preview(5000).rows.find(([word]) => word === 'phoenix');
  t.truthy(row, 'listed again');
  t.true(row![1] <= 103 && 103 <= row![2], `103 within ${row![1]}..${row![2]}`);
});
