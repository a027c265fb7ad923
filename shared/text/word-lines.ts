/**
 * Counted words on the wire: UTF-8 lines `word\tcount\n`, as map partials, as one partition's
 * share of a partial (what a reducer folds), and as sorted parts. Words are final (folded) and
 * never contain \t or \n, so equal words have equal bytes: tables are keyed by bytes, and a word
 * belongs to the partition its bytes hash to, whichever worker counted it.
 */
import { isUtf8 } from 'node:buffer';
import { ASCII_FLAG, FNV_OFFSET, FNV_PRIME, type WordTable } from './word-table.js';

/** Per line being folded: [start, length | ASCII_FLAG, hash, tail], and its count. */
const staged = { lines: new Int32Array(4 * 16384), counts: new Float64Array(16384) };

function growStaged(): void {
  const lines = new Int32Array(staged.lines.length * 2);
  lines.set(staged.lines);
  const counts = new Float64Array(staged.counts.length * 2);
  counts.set(staged.counts);
  staged.lines = lines;
  staged.counts = counts;
}

/**
 * Checks every line of `data` from `from` on, then adds them all to `table`: a malformed line
 * throws (via `malformed`) before the table is touched, so a bad message changes nothing.
 * @param expected how many lines there must be
 */
export function foldLines(data: Uint8Array, from: number, expected: number, table: WordTable, malformed: (why: string) => Error): void {
  if (!isUtf8(data)) throw malformed('not UTF-8');
  if (table.foldHeldLines(data, from, expected, malformed)) return;
  const n = data.length;
  let lines = 0;
  for (let pos = from; pos < n; lines++) {
    const start = pos;
    let h = FNV_OFFSET;
    let tail = 0;
    let high = 0;
    let b = data[pos];
    while (b !== 0x09 && b !== 0x0a && pos < n) {
      h = Math.imul(h ^ b, FNV_PRIME);
      tail = (tail << 8) | b;
      high |= b;
      b = data[++pos];
    }
    if (pos === start || pos >= n || b !== 0x09) throw malformed('bad line');
    const tab = pos;
    let count = 0;
    for (pos++; pos < n && (b = data[pos]) >= 0x30 && b <= 0x39; pos++) count = count * 10 + (b - 0x30);
    if (pos >= n || data[pos] !== 0x0a) throw malformed(pos < n && data[pos] === 0x09 ? 'bad line' : 'bad count');
    if (pos === tab + 1 || pos - tab > 16 || data[tab + 1] === 0x30) throw malformed('bad count');
    pos++;
    if (lines === staged.counts.length) growStaged();
    const k = lines * 4;
    staged.lines[k] = start;
    staged.lines[k + 1] = high < 0x80 ? (tab - start) | ASCII_FLAG : tab - start;
    staged.lines[k + 2] = h;
    staged.lines[k + 3] = tail;
    staged.counts[lines] = count;
  }
  if (lines !== expected) throw malformed('line count');
  const { lines: staging, counts } = staged;
  for (let i = 0; i < lines; i++) {
    const k = i * 4;
    const tag = staging[k + 1];
    table.add(data, staging[k], tag & ~ASCII_FLAG, staging[k + 2], staging[k + 3], (tag & ASCII_FLAG) !== 0, counts[i]);
  }
}

/** The partition (0 .. partitions - 1) of the word data[start, end): FNV-1a of its bytes, mixed. */
export function partitionOf(data: Uint8Array, start: number, end: number, partitions: number): number {
  let h = FNV_OFFSET;
  for (let k = start; k < end; k++) h = Math.imul(h ^ data[k], FNV_PRIME);
  return partitionOfHash(h, partitions);
}

/** The partition of a word whose bytes' FNV-1a hash is `hash`. */
export function partitionOfHash(hash: number, partitions: number): number {
  // The same spreading as the tables: FNV-1a's low bits are weak.
  let h = Math.imul(hash ^ (hash >>> 16), 0x45d9f3b);
  h ^= h >>> 16;
  return (h >>> 0) % partitions;
}

/** First line of a share (a partition's words of one map task): `tally-share 1 <lines>`. */
export const SHARE_HEADER = 'tally-share 1';
const decoder = new TextDecoder();

/** Folds one share into `table`; a malformed share throws and changes nothing. */
export function foldShare(share: Uint8Array, table: WordTable, malformed: (why: string) => Error): void {
  const headerEnd = share.indexOf(0x0a);
  if (headerEnd < 0) throw malformed('no header');
  const fields = decoder.decode(share.subarray(0, headerEnd)).split(' ');
  const lines = /^\d{1,15}$/.test(fields[2] ?? '') ? Number(fields[2]) : -1;
  if (fields.length !== 3 || `${fields[0]} ${fields[1]}` !== SHARE_HEADER || lines < 0) throw malformed('bad header');
  foldLines(share, headerEnd + 1, lines, table, malformed);
}
