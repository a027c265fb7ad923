/**
 * A reducer's table (shared/text/partition-table.ts): shares folded and sorted into a part in
 * WebAssembly while the table is small, in JavaScript past its limits. Whichever path ran, the
 * part must be the one the contract gives for the words added up by a Map (the reference
 * counter's order), a malformed share must be refused for the JavaScript fold's reason with
 * the table left as it was, and a table crossing a limit must go on exactly.
 */
import test, { type ExecutionContext } from 'ava';
import fc from 'fast-check';
import { PartitionTable, WASM_SHARE_WORDS } from '../shared/text/partition-table.js';
import { SHARE_HEADER, foldShare } from '../shared/text/word-lines.js';
import { IDENTITY, WordTable } from '../shared/text/word-table.js';
import { sortPart } from '../shared/text/sorted-part.js';
import { useScanner } from '../shared/text/wasm-scanner.js';
import { sortCounts } from './helpers/reference-counter.js';
import { everyWordOver } from './helpers/texts.js';
import { checkSortedPart, expectedPart } from './helpers/parts.js';

const utf8 = (s: string) => Buffer.from(s, 'utf8');

/** A share of these lines, as a map task writes it. */
function shareOf(entries: Array<[string, number]>): Uint8Array {
  return utf8(`${SHARE_HEADER} ${entries.length}\n${entries.map(([w, c]) => `${w}\t${c}\n`).join('')}`);
}

/** The entries of several shares added up by a Map. */
function addedUp(shares: Array<Array<[string, number]>>): Array<[string, number]> {
  const sum = new Map<string, number>();
  for (const share of shares) for (const [word, count] of share) sum.set(word, (sum.get(word) ?? 0) + count);
  return [...sum];
}


const malformed = (why: string) => new Error(why);

function foldAll(table: WordTable, shares: Array<Array<[string, number]>>): void {
  for (const share of shares) foldShare(shareOf(share), table, malformed);
}

/** Characters that words are made of: every UTF-8 length, NUL and controls, prefixes of one another. */
const CHARS = ['a', 'b', 'z', '0', '9', '-', "'", ' ', '\u0000', '\u0001', '\x7f', 'é', 'ß', 'ж', '\u0301', '日', '語', '\ue000', '\ufffd', '😀', '\u{10ffff}'];
const arbitraryWord = fc.oneof(
  fc.array(fc.constantFrom(...CHARS), { minLength: 1, maxLength: 10 }).map((cs) => cs.join('')),
  // Longer than 8 bytes (the table's short path) and than 64; long shared prefixes.
  fc.tuple(fc.constantFrom('internationalisation', 'a'.repeat(8), 'a'.repeat(70), 'ab\u0000cd\u0000ef', '日本語日本語'), fc.array(fc.constantFrom(...CHARS), { maxLength: 4 })).map(([p, cs]) => p + cs.join('')),
);
/** Folds the shares one by one, checking after each whether the words are still held in WebAssembly. */
function foldInTurn(t: ExecutionContext, table: PartitionTable, shares: Array<Array<[string, number]>>, held: boolean[]): void {
  shares.forEach((share, i) => {
    foldShare(shareOf(share), table, malformed);
    t.is(table.heldInWasm, held[i], `after share ${i}`);
  });
}

const smallCount = fc.oneof({ weight: 5, arbitrary: fc.integer({ min: 1, max: 3 }) }, { weight: 2, arbitrary: fc.integer({ min: 1, max: 70_000 }) });
/** Counts that add up past 2^30 now and then: the table then goes on in JavaScript. */
const anyCount = fc.oneof({ weight: 20, arbitrary: smallCount }, { weight: 1, arbitrary: fc.integer({ min: 1, max: 2 ** 40 }) });
const sharesOf = (count: fc.Arbitrary<number>) => fc.array(fc.uniqueArray(fc.tuple(arbitraryWord, count), { selector: ([w]) => w, maxLength: 60 }), { maxLength: 6 });

/** The part of the shares' words, checked against the contract's; whether the table stayed in WebAssembly. */
function checkPart(t: ExecutionContext, shares: Array<Array<[string, number]>>, pieceBytes: number, top: number): boolean {
  const table = new PartitionTable();
  foldAll(table, shares);
  const held = table.heldInWasm;
  const entries = addedUp(shares);
  const expected = checkSortedPart(t, table.sortedPart({ top, pieceBytes }), entries, top, pieceBytes);
  // The table can still be read after its part is written, and again as a part.
  t.deepEqual(sortCounts(table.entries()), sortCounts(entries));
  t.true(Buffer.concat([...table.sortedPart({ pieceBytes }).pieces()]).equals(expected));
  return held;
}

test('shares folded and sorted in WebAssembly give the contract part of the words added up, whatever the pieces', (t) => {
  fc.assert(
    fc.property(sharesOf(smallCount), fc.integer({ min: 1, max: 300 }), fc.nat({ max: 8 }), (shares, pieceBytes, top) => {
      // Any share (even one of no lines) puts the table in WebAssembly; these counts never take it out.
      t.is(checkPart(t, shares, pieceBytes, top), shares.length > 0);
    }),
    { numRuns: 300 },
  );
});

test('shares whose counts add up past 2^30 now and then: the same part, in WebAssembly or not', (t) => {
  let left = 0;
  fc.assert(
    fc.property(sharesOf(anyCount), fc.integer({ min: 1, max: 300 }), fc.nat({ max: 8 }), (shares, pieceBytes, top) => {
      if (!checkPart(t, shares, pieceBytes, top) && shares.length > 0) left++;
    }),
    { numRuns: 300 },
  );
  t.true(left > 10, `${left} tables left WebAssembly`);
});

test('every word over a small alphabet, NUL included: prefixes and zero bytes sort as the contract says', (t) => {
  const words = everyWordOver(['\u0000', 'a', 'é'], 7);
  // One count for all (only the bytes order them), then three counts; in two shares each.
  for (const count of [() => 7, (i: number) => 1 + (i % 3)]) {
    const shares = [words.map((w, i): [string, number] => [w, count(i)]), words.filter((_, i) => i % 2 === 0).map((w): [string, number] => [w, 2])];
    const table = new PartitionTable();
    foldAll(table, shares);
    t.true(table.heldInWasm);
    t.true(Buffer.concat([...table.sortedPart().pieces()]).equals(expectedPart(addedUp(shares))));
  }
});

test('a malformed share is refused for the JavaScript fold\'s reason, and the table is as it was', (t) => {
  const good: Array<[string, number]> = [['alpha', 3], ['beta', 1], ['日本', 2]];
  const bad: Array<[string, Uint8Array]> = [
    ['bad line', utf8(`${SHARE_HEADER} 1\nno-tab-here\n`)],
    ['bad line', utf8(`${SHARE_HEADER} 1\n\t5\n`)],
    ['bad line', utf8(`${SHARE_HEADER} 1\nword\t5\t6\n`)],
    ['bad count', utf8(`${SHARE_HEADER} 1\nword\t\n`)],
    ['bad count', utf8(`${SHARE_HEADER} 1\nword\t05\n`)],
    ['bad count', utf8(`${SHARE_HEADER} 1\nword\t5x\n`)],
    ['bad count', utf8(`${SHARE_HEADER} 1\nword\t1234567890123456\n`)],
    ['bad count', utf8(`${SHARE_HEADER} 1\nword\t5`)],
    ['line count', utf8(`${SHARE_HEADER} 2\nword\t5\n`)],
    ['line count', utf8(`${SHARE_HEADER} 0\nword\t5\n`)],
    ['not UTF-8', Buffer.concat([utf8(`${SHARE_HEADER} 1\nw`), Buffer.from([0xc3]), utf8('\t5\n')])],
  ];
  for (const [why, share] of bad) {
    const reasons: string[] = [];
    for (const table of [new PartitionTable(), new WordTable(IDENTITY, 1 << 16)]) {
      foldShare(shareOf(good), table, malformed);
      const error = t.throws(() => foldShare(share, table, malformed));
      reasons.push(error?.message ?? '');
      t.deepEqual(sortCounts(table.entries()), sortCounts(good), why);
    }
    t.deepEqual(reasons, [why, why]);
  }
});

test('a table whose counts add up to 2^30 goes on in JavaScript, exactly', (t) => {
  const table = new PartitionTable();
  const shares: Array<Array<[string, number]>> = [
    [['the', 2 ** 29], ['of', 5]],
    [['the', 2 ** 29 - 10], ['and', 1]],
    // Reaches 2^30 in all: this share and the next are folded in JavaScript.
    [['the', 10], ['of', 2 ** 33]],
    [['the', 1], ['new', 1]],
  ];
  foldInTurn(t, table, shares, [true, true, false, false]);
  const entries = addedUp(shares);
  t.deepEqual(sortCounts(table.entries()), sortCounts(entries));
  t.true(Buffer.concat([...table.sortedPart({ top: 2 }).pieces()]).equals(expectedPart(entries)));
});

test(`a table past ${WASM_SHARE_WORDS} distinct words goes on in JavaScript, exactly`, (t) => {
  const table = new PartitionTable();
  const batch = 100_000;
  const shares: Array<Array<[string, number]>> = [];
  for (let s = 0; s < 3; s++) shares.push(Array.from({ length: batch }, (_, i): [string, number] => [`w${s * batch + i}`, 1 + (i % 5)]));
  // The last share repeats the first's words: they merge with the words already brought home.
  shares.push(shares[0]!.map(([w]) => [w, 2]));
  foldInTurn(t, table, shares, [true, true, false, false]);
  const entries = addedUp(shares);
  t.is(table.size, 3 * batch);
  // Taken over from WebAssembly, the table has the slots of one that was always here: not
  // twice as many (a reducer of millions of words would hold hundreds of MiB more).
  const here = new WordTable(IDENTITY, 1 << 16);
  foldAll(here, shares);
  t.is(table.slotCount, here.slotCount);
  t.true(Buffer.concat([...table.sortedPart({ top: 3 }).pieces()]).equals(expectedPart(entries)));
});

test('with the JavaScript scanner chosen, shares are folded in JavaScript, with the same part', (t) => {
  const shares: Array<Array<[string, number]>> = [[['b', 2], ['a', 2], ['日本', 9]], [['a', 1], ['c', 4]]];
  useScanner('js');
  try {
    const table = new PartitionTable();
    foldAll(table, shares);
    t.false(table.heldInWasm);
    t.true(Buffer.concat([...table.sortedPart().pieces()]).equals(expectedPart(addedUp(shares))));
  } finally {
    useScanner(undefined);
  }
  const table = new PartitionTable();
  foldAll(table, shares);
  t.true(table.heldInWasm);
  t.true(Buffer.concat([...sortPart(table).pieces()]).equals(expectedPart(addedUp(shares))));
});
