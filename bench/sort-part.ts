/**
 * Times the sorted parts of a count (shared/text/sorted-part.ts) on big word tables:
 *
 *   node dist/bench/sort-part.js [numbers|mixed|english|prefixed|all] [distinct words] [--baseline] [--merge]
 *
 * numbers: "1".."N", all count 1. mixed: Zipf counts, half the words with a number in them,
 * 1 in 20 with a non-ASCII letter (default N = 10,000,000). english: 100,000 English-like
 * words, Zipf counts. prefixed: 1,000,000 words sharing a 30-byte prefix.
 * Prints wall and CPU milliseconds of sortPart (sort, top 20) and of encoding its pieces;
 * --merge: the same words as 8 parts (by hash), each sorted and encoded, then read, merged and
 * printed as tsv by writeCount (output counted, not kept); --baseline, last: what finalize
 * does today (entries(), then Array.prototype.sort with compareCodePoints).
 */
import { writeCount } from '../coordinator/render-count.js';
import { mergeParts, readPart, sortPart } from '../shared/text/sorted-part.js';
import { compareCodePoints } from '../shared/text/words.js';
import { FNV_OFFSET, FNV_PRIME, IDENTITY, WordTable } from '../shared/text/word-table.js';

/** A deterministic pseudo-random generator (mulberry32). */
function random(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const SYLLABLES = ['th', 'e', 'an', 'in', 'er', 'on', 're', 'at', 'en', 'nd', 'st', 'es', 'or', 'te', 'of', 'ed', 'is', 'it', 'al', 'ar', 'ng', 'ou', 'to', 'ha', 'a', 'i', 'o', 'u', 'b', 'c', 'd', 'f', 'g', 'k', 'l', 'm', 'p', 's', 'w', 'y'];
const FOREIGN = ['é', 'ß', 'ñ', 'ø', 'ж', 'ы', 'λ', 'ש', 'ع', '日', '本', '語', '한', '国', '😀', 'ā', 'ç', 'ö'];

/** Calls `add` with each distinct word's UTF-8 bytes and count. */
function eachWord(kind: string, n: number, add: (bytes: Uint8Array, length: number, count: number) => void): void {
  const encoder = new TextEncoder();
  const buffer = new Uint8Array(256);
  const put = (word: string, count: number) => add(buffer, encoder.encodeInto(word, buffer).written, count);
  if (kind === 'numbers') {
    for (let i = 1; i <= n; i++) put(String(i), 1);
    return;
  }
  if (kind === 'prefixed') {
    for (let i = 1; i <= n; i++) put(`https://example.com/some/path/${(i * 2654435761) % 4294967311}`, 1 + (i % 3));
    return;
  }
  const rnd = random(42);
  for (let rank = 1; rank <= n; rank++) {
    let word = '';
    const parts = 1 + Math.floor(rnd() * 5);
    for (let k = 0; k < parts; k++) word += SYLLABLES[Math.floor(rnd() * SYLLABLES.length)];
    if (kind === 'mixed' && rnd() < 0.05) word += FOREIGN[Math.floor(rnd() * FOREIGN.length)];
    // Distinct: the rank in the word (mixed: in half of them, else as a suffix of letters).
    word += kind === 'mixed' && rnd() < 0.5 ? String(rank) : rank.toString(36).replace(/[0-9]/g, (d) => 'qvxjzhkwyb'[Number(d)]!);
    put(word, Math.max(1, Math.floor((kind === 'mixed' ? 5e8 : 1e7) / rank)));
  }
}

/** Adds word bytes with count n to the table, computing what WordTable.add wants. */
function addWord(table: WordTable, bytes: Uint8Array, length: number, n: number): number {
  let h = FNV_OFFSET;
  let tail = 0;
  let high = 0;
  for (let i = 0; i < length; i++) {
    const b = bytes[i];
    h = Math.imul(h ^ b, FNV_PRIME);
    tail = (tail << 8) | b;
    high |= b;
  }
  table.add(bytes, 0, length, h, tail, high < 0x80, n);
  return h;
}

/** Wall and CPU milliseconds of fn. */
function timed<T>(fn: () => T): { value: T; wall: number; cpu: number } {
  const cpu = process.cpuUsage();
  const wall = performance.now();
  const value = fn();
  const used = process.cpuUsage(cpu);
  return { value, wall: performance.now() - wall, cpu: (used.user + used.system) / 1000 };
}

const ms = (t: { wall: number; cpu: number }) => `${t.wall.toFixed(0)} ms (cpu ${t.cpu.toFixed(0)})`;

const args = process.argv.slice(2);
const flags = new Set(args.filter((a) => a.startsWith('--')));
const [which = 'all', size] = args.filter((a) => !a.startsWith('--'));
for (const kind of which === 'all' ? ['numbers', 'mixed', 'english', 'prefixed'] : [which]) {
  const n = size ? Number(size) : kind === 'english' ? 100_000 : kind === 'prefixed' ? 1_000_000 : 10_000_000;
  const table = new WordTable(IDENTITY);
  eachWord(kind, n, (bytes, length, count) => addWord(table, bytes, length, count));
  const sorted = timed(() => sortPart(table, { top: 20 }));
  const part = sorted.value;
  const encoded = timed(() => {
    let bytes = 0;
    for (const piece of part.pieces()) bytes += piece.length;
    return bytes;
  });
  if (encoded.value !== part.bytes) throw new Error(`encoded ${encoded.value} bytes, expected ${part.bytes}`);
  console.log(`${kind}: ${part.words} words, ${(part.bytes / 1e6).toFixed(1)} MB; sortPart ${ms(sorted)}, encode ${ms(encoded)}; top ${JSON.stringify(part.top.slice(0, 2))}`);
  if (flags.has('--merge')) {
    const parts = Array.from({ length: 8 }, () => new WordTable(IDENTITY));
    eachWord(kind, n, (bytes, length, count) => {
      let h = FNV_OFFSET;
      for (let i = 0; i < length; i++) h = Math.imul(h ^ bytes[i], FNV_PRIME);
      addWord(parts[(h >>> 0) % 8]!, bytes, length, count);
    });
    const made = timed(() => parts.map((p) => [...sortPart(p).pieces()]));
    const cpu = process.cpuUsage();
    const wall = performance.now();
    let chars = 0;
    const summary = { job: 'bench', kind: 'count' as const, files: 1, bytes: 0, tasks: 1, totalWords: 0, uniqueWords: part.words, overlongWords: 0 };
    const open = () =>
      mergeParts(
        made.value.map((pieces, i) =>
          readPart(
            (async function* () {
              yield* pieces;
            })(),
            `part ${i}`,
          ),
        ),
      );
    await writeCount(summary, open, { format: 'tsv', top: 0 }, (text) => {
      chars += text.length;
    });
    const used = process.cpuUsage(cpu);
    const printed = { wall: performance.now() - wall, cpu: (used.user + used.system) / 1000 };
    console.log(`${kind}: 8 parts sorted and encoded ${ms(made)}; read, merged and printed as tsv ${ms(printed)} (${(chars / 1e6).toFixed(1)}M characters)`);
  }
  // Last: its 10M strings and arrays slow down whatever runs after them.
  if (flags.has('--baseline')) {
    const entries = timed(() => table.entries());
    const baseline = timed(() => entries.value.sort((a, b) => b[1] - a[1] || compareCodePoints(a[0], b[0])));
    const same = baseline.value.slice(0, 20).every(([w, c], i) => part.top[i]![0] === w && part.top[i]![1] === c);
    console.log(`${kind}: today's finalize: entries() ${ms(entries)}, then Array.prototype.sort ${ms(baseline)}${same ? '' : ' (DIFFERENT TOP 20)'}`);
  }
}
