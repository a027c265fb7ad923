/**
 * Times sorting and encoding a big word table as a sorted part (shared/text/sorted-part.ts):
 *   node dist/bench/sort-part.js [numbers|mixed|english|all] [distinct words, default 10000000]
 * numbers: "1".."N", all count 1; mixed: Zipf counts, ~5% non-ASCII words; english: 100k
 * English-like words with Zipf counts. Prints milliseconds per step.
 */
import { FNV_OFFSET, FNV_PRIME, IDENTITY, WordTable } from '../shared/text/word-table.js';
import { sortPart } from '../shared/text/sorted-part.js';

/** Adds word bytes w with count n, computing what WordTable.add wants. */
function addWord(table: WordTable, w: Uint8Array, n: number): void {
  let h = FNV_OFFSET;
  let tail = 0;
  let high = 0;
  for (const b of w) {
    h = Math.imul(h ^ b, FNV_PRIME);
    tail = (tail << 8) | b;
    high |= b;
  }
  table.add(w, 0, w.length, h, tail, high < 0x80, n);
}

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

function words(kind: string, n: number): WordTable {
  const table = new WordTable(IDENTITY);
  const enc = new TextEncoder();
  if (kind === 'numbers') {
    for (let i = 1; i <= n; i++) addWord(table, enc.encode(String(i)), 1);
    return table;
  }
  const rnd = random(42);
  let made = 0;
  for (let rank = 1; made < n; rank++) {
    let w = '';
    const parts = 1 + Math.floor(rnd() * 5);
    for (let k = 0; k < parts; k++) w += SYLLABLES[Math.floor(rnd() * SYLLABLES.length)];
    if (kind === 'mixed' && rnd() < 0.05) w += FOREIGN[Math.floor(rnd() * FOREIGN.length)];
    if (kind === 'mixed' && rnd() < 0.5) w += String(rank);
    // Zipf: count ~ C / rank.
    const count = Math.max(1, Math.floor((kind === 'mixed' ? 5e8 : 1e7) / rank));
    const before = table.size;
    addWord(table, enc.encode(w), count);
    if (table.size > before) made++;
  }
  return table;
}

const [which = 'all', size] = process.argv.slice(2);
for (const kind of which === 'all' ? ['numbers', 'mixed', 'english'] : [which]) {
  const n = size ? Number(size) : kind === 'english' ? 100_000 : 10_000_000;
  let t = performance.now();
  const table = words(kind, n);
  const built = performance.now() - t;
  t = performance.now();
  const part = sortPart(table, { top: 20 });
  const sorted = performance.now() - t;
  t = performance.now();
  let bytes = 0;
  let pieces = 0;
  for (const piece of part.pieces()) {
    bytes += piece.length;
    pieces++;
  }
  const encoded = performance.now() - t;
  if (bytes !== part.bytes) throw new Error(`bytes ${bytes} != ${part.bytes}`);
  console.log(`${kind}: ${part.words} words, ${(bytes / 1e6).toFixed(1)} MB in ${pieces} pieces; table built in ${built.toFixed(0)} ms; sort ${sorted.toFixed(0)} ms, encode ${encoded.toFixed(0)} ms; top ${JSON.stringify(part.top.slice(0, 3))}`);
}
