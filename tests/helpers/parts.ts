/**
 * Sorted parts as the contract writes them, for the tests of the code that sorts them
 * (shared/text/sorted-part.ts, shared/text/partition-table.ts).
 */
import type { ExecutionContext } from 'ava';
import type { SortedPart } from '../../shared/text/sorted-part.js';
import { sortCounts } from './reference-counter.js';

/** The part's text by the contract: the header, then the entries in the reference order. */
export function expectedPart(entries: Array<[string, number]>): Buffer {
  return Buffer.from(`tally-part 1\n${sortCounts(entries).map(([w, c]) => `${w}\t${c}\n`).join('')}`, 'utf8');
}

/**
 * Checks a sorted part against the contract's part of `entries`: its bytes, size, words and
 * first `top` rows, and pieces that hold whole lines, no longer than `pieceBytes` unless one
 * line is. Returns its bytes.
 */
export function checkSortedPart(t: ExecutionContext, part: SortedPart, entries: Array<[string, number]>, top: number, pieceBytes: number): Buffer {
  const pieces = [...part.pieces()];
  const bytes = Buffer.concat(pieces);
  const expected = expectedPart(entries);
  t.true(bytes.equals(expected));
  t.is(part.bytes, expected.length);
  t.is(part.words, entries.length);
  t.deepEqual(part.top, sortCounts(entries).slice(0, top));
  for (const piece of pieces) {
    t.is(piece[piece.length - 1], 0x0a);
    if (piece.length > pieceBytes) t.is(piece.indexOf(0x0a), piece.length - 1);
  }
  return bytes;
}
