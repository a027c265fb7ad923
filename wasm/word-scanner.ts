// The word scanners and a chunk's word table, in AssemblyScript compiled to WebAssembly
// (`npm run build`, with the assemblyscript compiler from npm; nothing binary is committed).
//
// The same words as scanUnicode (shared/text/words.ts), found faster: 64 bytes at a time with
// SIMD masks (which bytes are letters or digits, which apostrophes join two runs; each token then
// costs no branch per byte; a token with bytes >= 0x80 is checked to be word characters only),
// anything else byte by byte as in words.ts; and the
// same tokens as scanWhitespace, 64 bytes at a time whatever they are (at the end). Words go
// into a table of this module's own (a hash of 8 folded bytes at a time, not FNV-1a byte by
// byte). A task's partial is written here too: `takeUnstored` moves out the words whose written
// form is not their stored bytes (a code point toLowerCase changes, ill-formed UTF-8), JavaScript
// folds them and counts them again with `addCounted`, and `encodeWords` writes every line. `finish`
// lays the words out as WordTable's slots (FNV-1a, its probe order), which JavaScript takes over
// to write the rest. So the partial has the same lines as with the JavaScript scanner, perhaps
// in another order (tests/wasm-scanner.test.ts compares them). The loader and the rules for
// when it is used are in shared/text/wasm-scanner.ts.
// A reducer's table lives here too while it is small (shared/text/partition-table.ts): shares
// checked and counted (`checkLines`, `addLines`), then sorted and written as a part (`sortWords`,
// `writePart`).
//
// Memory: [class table, 0x110000 bytes][fold tables][body][slots][arena]…, bump-allocated from
// the end; `reset` starts a new table. The class of a code point is filled in by JavaScript
// (the regex of the running V8 decides it): when the scanner meets a code point whose class is
// still 0 it stops and returns where to start again; the caller fills the class and calls again.

const WORD: i32 = 2;
const APOS: i32 = 3;
const FNV_OFFSET: i32 = <i32>0x811c9dc5;
const FNV_PRIME: i32 = 0x01000193;
const ASCII_FLAG: i32 = 0x40000000;
const LENGTH_MASK: i32 = ASCII_FLAG - 1;
const REPLACEMENT: i32 = 0xfffd;
const DONE: i32 = -1;
const NEED: i32 = 1;
/** Bytes kept readable after a body: the space that ends it, and 8-byte reads of its last word. */
const BODY_PAD: i32 = 72;

const CLASS: usize = (__heap_base + 15) & ~(<usize>15);
/** Folded byte of an ASCII word byte ([0-9A-Za-z]), 0 for every other byte. */
const WORD_FOLD: usize = CLASS + 0x110000;
/** Class of each ASCII byte. */
const ASCII_CLASS: usize = WORD_FOLD + 256;
// Whether toLowerCase changes a code point: 0 = not known yet, 1 = it stays, 2 = it changes.
// Filled by JavaScript when takeUnstored asks (needed()), as the class table is by scan.
const CASE: usize = ASCII_CLASS + 128;
const HEAP: usize = CASE + 0x110000;

let heapTop: usize = HEAP;
let bodyAt: usize = 0;
let bodyCap: i32 = 0;
/** A word's folded bytes, zero-padded to whole 8-byte groups, while it is looked up. */
let scratchAt: usize = 0;
let scratchCap: i32 = 0;

// This module's table: 16-byte slots [arena offset + 1 (0 = empty), length | ASCII_FLAG,
// first 4 folded bytes, count]; words in the arena 8-byte aligned and zero-padded.
let slotsAt: usize = 0;
let mask: i32 = 0;
let size: i32 = 0;
let arenaAt: usize = 0;
let arenaCap: i32 = 0;
let arenaUsed: i32 = 0;
let initialCapacity: i32 = 0;
// The table as WordTable's slots, made by `finish`.
let finishedAt: usize = 0;
let finishedCapacity: i32 = 0;

let total: i32 = 0;
let overlong: i32 = 0;
let skipFirst: bool = false;
let countFirst: bool = false;
let endsInsideWord: bool = false;
let maxWordBytes: i32 = 0;
let neededCodePoint: i32 = 0;
/** Where to scan again once the class of neededCodePoint is known. */
let restartAt: i32 = 0;
/** The case bit of 8 bytes (0 when case is kept): see foldAsciiWord8. */
let foldMask: u64 = 0;
/** Words may hold any ASCII byte (the whitespace tokenizer), not only [0-9A-Za-z']: see foldAsciiWord8. */
let anyAscii: bool = false;
/** Scan byte by byte up to here (the last non-ASCII byte of a block, or a long word). */
let scalarUntil: i32 = -1;

function ensureMemory(end: usize): void {
  const have = (<usize>memory.size()) << 16;
  if (end <= have) return;
  const pages = <i32>((end - have + 0xffff) >> 16);
  if (memory.grow(pages) < 0) unreachable();
}

/** Room in the scratch buffer for a folded word of `bytes` bytes, padded to whole 8-byte groups. */
function ensureScratch(bytes: i32): void {
  if (bytes + 16 > scratchCap) {
    scratchCap = bytes + 16;
    scratchAt = alloc(scratchCap);
  }
}

function alloc(bytes: i32): usize {
  const at = heapTop;
  heapTop = (at + <usize>bytes + 15) & ~(<usize>15);
  ensureMemory(heapTop);
  return at;
}

/** Where the class table starts; the fold tables follow it (JavaScript fills them once). */
export function tablesAt(): usize {
  ensureMemory(HEAP);
  return CLASS;
}

/** A buffer for the next chunk's body of `n` bytes (and BODY_PAD more), valid until the next call. */
export function bodyBuffer(n: i32): usize {
  if (n + BODY_PAD > bodyCap) {
    bodyAt = alloc(n + BODY_PAD);
    bodyCap = n + BODY_PAD;
  }
  return bodyAt;
}

/**
 * Starts an empty table of `capacity` slots (a power of two), folding ASCII case or not. The
 * body buffer survives; everything allocated after it is dropped.
 */
export function reset(capacity: i32, caseSensitive: bool): void {
  heapTop = bodyCap > 0 ? (bodyAt + <usize>bodyCap + 15) & ~(<usize>15) : HEAP;
  initialCapacity = capacity;
  mask = capacity - 1;
  size = 0;
  slotsAt = alloc(capacity << 4);
  memory.fill(slotsAt, 0, <usize>(capacity << 4));
  arenaCap = capacity * 8;
  arenaAt = alloc(arenaCap);
  arenaUsed = 0;
  scratchCap = 0;
  wordCap = 0;
  unstoredCap = 0;
  unstoredCount = 0;
  unstoredNext = 0;
  finishedAt = 0;
  foldMask = caseSensitive ? 0 : 0x2020202020202020;
  for (let b = 0; b < 256; b++) {
    const upper = b >= 0x41 && b <= 0x5a;
    const word = b < 128 && load<u8>(ASCII_CLASS + b) == WORD;
    store<u8>(WORD_FOLD + b, !word ? 0 : caseSensitive || !upper ? b : b + 0x20);
  }
}

/** Sets the edge flags of the next chunk and clears its totals. */
export function chunk(continuesWord: bool, wordCounted: bool, insideWord: bool, maxBytes: i32): void {
  skipFirst = continuesWord;
  countFirst = continuesWord && !wordCounted;
  endsInsideWord = insideWord;
  maxWordBytes = maxBytes;
  total = 0;
  overlong = 0;
  ensureScratch(maxBytes);
}

export function totalWords(): i32 {
  return total;
}
export function overlongWords(): i32 {
  return overlong;
}
export function needed(): i32 {
  return neededCodePoint;
}
export function words(): i32 {
  return size;
}
export function arena(): usize {
  return arenaAt;
}
export function arenaBytes(): i32 {
  return arenaUsed;
}

// ---------------------------------------------------------------------------------------------
// The table.

// @ts-ignore: decorator
@inline
function padded(len: i32): i32 {
  return (len + 7) & ~7;
}

/**
 * A hash of a word's zero-padded folded bytes at p, 8 bytes a step, finished as splitmix64 does:
 * a multiply carries a byte's bits only upwards, so the last bytes of a group (the last digits
 * of a number) reach the low bits, which pick the slot, only through the final mixing.
 */
// @ts-ignore: decorator
@inline
function hashPadded(p: usize, len: i32): i32 {
  let h = hashStart(len);
  const end = p + <usize>padded(len);
  for (let q = p; q < end; q += 8) h = hashGroup(h, load<u64>(q));
  return hashEnd(h);
}

// hashPadded's steps, which addShortAscii takes for its one group.
// @ts-ignore: decorator
@inline
function hashStart(len: i32): u64 {
  return <u64>len * 0x9e3779b97f4a7c15;
}

// @ts-ignore: decorator
@inline
function hashGroup(h: u64, group: u64): u64 {
  h = (h ^ group) * 0xbf58476d1ce4e5b9;
  return h ^ (h >> 29);
}

// @ts-ignore: decorator
@inline
function hashEnd(h: u64): i32 {
  h = (h ^ (h >> 32)) * 0x94d049bb133111eb;
  return <i32>(h ^ (h >> 32));
}

/**
 * Eight bytes folded as LOWER_ASCII folds them (A-Z to a-z, every other byte kept) when case is
 * folded, without a branch or a lookup per byte: for a byte b below 0x80, b + 0x3f has bit 7 set
 * from 'A' on and b + 0x25 from '[' on, so the two differ in bit 7 for A-Z only, and that bit
 * shifted right by 2 is the case bit. Bytes of 0x80 or more are added without their bit 7 (no
 * carry crosses into the next byte) and then left out, so no UTF-8 byte is taken for a letter.
 */
// @ts-ignore: decorator
@inline
function foldBytes8(x: u64): u64 {
  const low = x & 0x7f7f7f7f7f7f7f7f;
  const upper = ((low + 0x3f3f3f3f3f3f3f3f) ^ (low + 0x2525252525252525)) & ~x & 0x8080808080808080;
  return x | ((upper >> 2) & foldMask);
}

/**
 * Eight bytes of an ASCII word folded: a unicode word's are [0-9A-Za-z'], which the case bit
 * alone folds (digits and ' have it already); a whitespace token's may be any.
 */
// @ts-ignore: decorator
@inline
function foldAsciiWord8(x: u64): u64 {
  return anyAscii ? foldBytes8(x) : x | foldMask;
}

/** Copies the folded word at src into the scratch buffer, zero-padded to whole 8-byte groups. */
// @ts-ignore: decorator
@inline
function foldIntoScratch(src: usize, len: i32, ascii: bool): void {
  const groups = padded(len);
  if (ascii) {
    for (let k = 0; k < groups; k += 8) store<u64>(scratchAt + <usize>k, foldAsciiWord8(load<u64>(src + <usize>k)));
  } else {
    for (let k = 0; k < groups; k += 8) store<u64>(scratchAt + <usize>k, foldBytes8(load<u64>(src + <usize>k)));
  }
  const rest = len & 7;
  if (rest != 0) {
    const at = scratchAt + <usize>(len & ~7);
    store<u64>(at, load<u64>(at) & ((<u64>1 << (<u64>rest << 3)) - 1));
  }
}

function sameScratch(at: usize, len: i32): bool {
  const groups = padded(len);
  for (let k = 0; k < groups; k += 8) {
    if (load<u64>(scratchAt + <usize>k) != load<u64>(at + <usize>k)) return false;
  }
  return true;
}

/** Adds n to the count of the word at src (counts stay below 2^30: see WASM_TABLE_BYTE_LIMIT). */
function addWord(src: usize, len: i32, ascii: bool, n: i32 = 1): void {
  if (ascii && len <= 8) {
    addShortAscii(src, len, n);
    return;
  }
  foldIntoScratch(src, len, ascii);
  const h = hashPadded(scratchAt, len);
  const key = load<i32>(scratchAt);
  const tag = ascii ? len | ASCII_FLAG : len;
  let i = h & mask;
  for (;;) {
    const slot = slotsAt + (<usize>i << 4);
    const s1 = load<i32>(slot);
    if (s1 == 0) break;
    if (load<i32>(slot, 8) == key && load<i32>(slot, 4) == tag && (len <= 4 || sameScratch(arenaAt + <usize>(s1 - 1), len))) {
      store<i32>(slot, load<i32>(slot, 12) + n, 12);
      return;
    }
    i = (i + 1) & mask;
  }
  addSlot(i, len, tag, key, n);
}

/** Fills empty slot i with the scratch word (appended to the arena), counted n times. */
// @ts-ignore: decorator
@inline
function addSlot(i: i32, len: i32, tag: i32, key: i32, n: i32): void {
  const slot = slotsAt + (<usize>i << 4);
  store<i32>(slot, insert(len) + 1);
  store<i32>(slot, tag, 4);
  store<i32>(slot, key, 8);
  store<i32>(slot, n, 12);
  if (++size * 4 > mask * 3) grow();
}

/**
 * addWord for an ASCII word of at most 8 bytes (most words of most text): its folded bytes are
 * one u64, hashed and compared in a register, with the same hash, key and arena bytes as
 * addWord's (grow and finish read them back from the arena).
 */
// @ts-ignore: decorator
@inline
function addShortAscii(src: usize, len: i32, n: i32): void {
  const kept: u64 = len == 8 ? <u64>-1 : (<u64>1 << (<u64>len << 3)) - 1;
  const word = foldAsciiWord8(load<u64>(src)) & kept;
  const key = <i32>word;
  const tag = len | ASCII_FLAG;
  let i = hashEnd(hashGroup(hashStart(len), word)) & mask;
  for (;;) {
    const slot = slotsAt + (<usize>i << 4);
    const s1 = load<i32>(slot);
    if (s1 == 0) break;
    if (load<i32>(slot, 8) == key && load<i32>(slot, 4) == tag && (len <= 4 || load<u64>(arenaAt + <usize>(s1 - 1)) == word)) {
      store<i32>(slot, load<i32>(slot, 12) + n, 12);
      return;
    }
    i = (i + 1) & mask;
  }
  store<u64>(scratchAt, word);
  addSlot(i, len, tag, key, n);
}

/** Appends the scratch word, padding included, to the arena; returns its offset. */
function insert(len: i32): i32 {
  const at = arenaUsed;
  const bytes = padded(len);
  if (at + bytes > arenaCap) {
    const cap = max(arenaCap * 2, at + bytes);
    const moved = alloc(cap);
    memory.copy(moved, arenaAt, <usize>at);
    arenaAt = moved;
    arenaCap = cap;
  }
  memory.copy(arenaAt + <usize>at, scratchAt, <usize>bytes);
  arenaUsed = at + bytes;
  return at;
}

function grow(): void {
  const old = slotsAt;
  const oldCapacity = mask + 1;
  const cap = oldCapacity * 2;
  mask = cap - 1;
  slotsAt = alloc(cap << 4);
  memory.fill(slotsAt, 0, <usize>(cap << 4));
  for (let j = 0; j < oldCapacity; j++) {
    const from = old + (<usize>j << 4);
    const s1 = load<i32>(from);
    if (s1 == 0) continue;
    let i = hashPadded(arenaAt + <usize>(s1 - 1), load<i32>(from, 4) & LENGTH_MASK) & mask;
    while (load<i32>(slotsAt + (<usize>i << 4)) != 0) i = (i + 1) & mask;
    memory.copy(slotsAt + (<usize>i << 4), from, 16);
  }
}

// @ts-ignore: decorator
@inline
function mix(hash: i32): i32 {
  const h = (hash ^ (hash >>> 16)) * 0x45d9f3b;
  return h ^ (h >>> 16);
}

/**
 * Lays the table out as WordTable's slots (shared/text/word-table.ts): [offset + 1, tag, last 4
 * folded bytes big-endian, count], placed by FNV-1a of the folded bytes and its probe, in as many
 * slots as WordTable would use. The arena is shared. Returns where the slots are.
 */
export function finish(): usize {
  const words = size;
  // WordTable's growth (word-table.ts: twice, fourfold from 2^17 slots on), so that a table
  // taken over there grows as one that was always there: not twice its size past a growth.
  let cap = initialCapacity;
  while (words * 4 > (cap - 1) * 3) cap *= cap - 1 >= 1 << 17 ? 4 : 2;
  finishedCapacity = cap;
  finishedAt = alloc(cap << 4);
  memory.fill(finishedAt, 0, <usize>(cap << 4));
  const wrap = (cap - 1) << 2;
  for (let j = 0; j <= mask; j++) {
    const from = slotsAt + (<usize>j << 4);
    const s1 = load<i32>(from);
    if (s1 == 0) continue;
    const tag = load<i32>(from, 4);
    const start = arenaAt + <usize>(s1 - 1);
    const end = start + <usize>(tag & LENGTH_MASK);
    let h = FNV_OFFSET;
    let tail = 0;
    for (let k = start; k < end; k++) {
      const b = <i32>load<u8>(k);
      h = (h ^ b) * FNV_PRIME;
      tail = (tail << 8) | b;
    }
    let i = (mix(h) & (cap - 1)) << 2;
    while (load<i32>(finishedAt + (<usize>i << 2)) != 0) i = (i + 4) & (wrap | 3);
    const to = finishedAt + (<usize>i << 2);
    store<i32>(to, s1);
    store<i32>(to, tag, 4);
    store<i32>(to, tail, 8);
    store<i32>(to, load<i32>(from, 12), 12);
  }
  return finishedAt;
}

export function capacity(): i32 {
  return finishedCapacity;
}

// ---------------------------------------------------------------------------------------------
// A task's partial: every word's line, written here (JavaScript only folds the words whose
// written form is not their stored bytes, and gives them back with addCounted).

/** Where the case table starts (JavaScript fills it when takeUnstored asks). */
export function caseTableAt(): usize {
  ensureMemory(HEAP);
  return CASE;
}

// The words takeUnstored moved out of the table: [arena offset, length, count] each.
let unstoredAt: usize = 0;
let unstoredCap: i32 = 0;
let unstoredCount: i32 = 0;
// The slot takeUnstored goes on from after JavaScript filled in a code point's case.
let unstoredNext: i32 = 0;

export function unstoredList(): usize {
  return unstoredAt;
}
export function unstoredWords(): i32 {
  return unstoredCount;
}

/**
 * Moves out of the table (its count set to 0; the slot stays, so that the word is found again)
 * each word whose line would not be its stored bytes: ill-formed UTF-8 (a whitespace token may
 * be), or with case folded, a code point toLowerCase changes (ASCII letters are folded already).
 * They are listed at unstoredList() for JavaScript, which folds them as WordTable's writer does
 * and counts each again under its written form (addCounted). Returns DONE, or NEED when a code
 * point's case is not known yet (needed() says which): fill it in and call again.
 */
export function takeUnstored(caseSensitive: bool): i32 {
  if (unstoredNext == 0) unstoredCount = 0;
  for (let j = unstoredNext; j <= mask; j++) {
    const slot = slotsAt + (<usize>j << 4);
    const s1 = load<i32>(slot);
    const tag = load<i32>(slot, 4);
    if (s1 == 0 || (tag & ASCII_FLAG) != 0) continue;
    const count = load<i32>(slot, 12);
    if (count == 0) continue;
    const len = tag & LENGTH_MASK;
    const start = arenaAt + <usize>(s1 - 1);
    const end = start + <usize>len;
    let stored = true;
    for (let p = start; p < end; ) {
      if (load<u8>(p) < 0x80) {
        p++;
        continue;
      }
      const d = decodeAt(p, end);
      const length = d & 7;
      // Ill-formed (a real U+FFFD is 3 bytes long): the decoder's replacement is written instead.
      if (length == 1) {
        stored = false;
        break;
      }
      if (!caseSensitive) {
        const known = load<u8>(CASE + <usize>(d >>> 3));
        if (known == 0) {
          unstoredNext = j;
          neededCodePoint = d >>> 3;
          return NEED;
        }
        if (known == 2) {
          stored = false;
          break;
        }
      }
      p += <usize>length;
    }
    if (stored) continue;
    if (unstoredCount == unstoredCap) {
      const cap = max(64, unstoredCap * 2);
      const moved = alloc(cap * 12);
      if (unstoredCount > 0) memory.copy(moved, unstoredAt, <usize>(unstoredCount * 12));
      unstoredAt = moved;
      unstoredCap = cap;
    }
    const entry = unstoredAt + <usize>(unstoredCount * 12);
    store<i32>(entry, s1 - 1);
    store<i32>(entry, len, 4);
    store<i32>(entry, count, 8);
    unstoredCount++;
    store<i32>(slot, 0, 12);
  }
  unstoredNext = 0;
  return DONE;
}

let wordAt: usize = 0;
let wordCap: i32 = 0;

/** A buffer for addCounted's word of `n` bytes, valid until the next call. */
export function wordBuffer(n: i32): usize {
  if (n + 8 > wordCap) {
    wordCap = n + 8;
    wordAt = alloc(wordCap);
  }
  return wordAt;
}

/** Adds n to the count of the word of `len` bytes in wordBuffer (found, or added to the table). */
export function addCounted(len: i32, n: i32): void {
  ensureScratch(len);
  let ascii = true;
  for (let k = 0; k < len; k++) {
    if (load<u8>(wordAt + <usize>k) >= 0x80) {
      ascii = false;
      break;
    }
  }
  addWord(wordAt, len, ascii, n);
}

// ---------------------------------------------------------------------------------------------
// A reducer's shares: lines `word\tcount\n` (final words: nothing is folded), checked as
// foldLines in shared/text/word-lines.ts checks them, then counted into the table. Reset the
// table with case kept: then addWord stores a word's bytes as they are.

const BAD_LINE: i32 = -2;
const BAD_COUNT: i32 = -3;
/** The sum of the counts of the lines checkLines last accepted (an f64: counts have up to 15 digits). */
let linesTotal: f64 = 0;
/** The longest word of those lines, for the scratch buffer. */
let linesLongest: i32 = 0;

/**
 * Checks body[from, n) (the body buffer) as lines `word\tcount\n`: a word of at least one byte
 * without \t or \n, a count of 1 to 15 digits without a leading zero. Returns how many lines
 * there are, or BAD_LINE / BAD_COUNT for the first malformed one (foldLines' reasons). The UTF-8
 * of the words is the caller's to check.
 */
export function checkLines(from: i32, n: i32): i32 {
  const body = bodyAt;
  let lines = 0;
  let total: f64 = 0;
  let longest = 0;
  let pos = from;
  while (pos < n) {
    const start = pos;
    let b: i32 = 0;
    while (pos < n) {
      b = <i32>load<u8>(body + <usize>pos);
      if (b == 0x09 || b == 0x0a) break;
      pos++;
    }
    if (pos == start || pos >= n || b != 0x09) return BAD_LINE;
    const tab = pos;
    let count: f64 = 0;
    for (pos++; pos < n; pos++) {
      b = <i32>load<u8>(body + <usize>pos);
      if (b < 0x30 || b > 0x39) break;
      count = count * 10 + <f64>(b - 0x30);
    }
    if (pos >= n) return BAD_COUNT;
    b = <i32>load<u8>(body + <usize>pos);
    if (b != 0x0a) return b == 0x09 ? BAD_LINE : BAD_COUNT;
    if (pos == tab + 1 || pos - tab > 16 || load<u8>(body + <usize>(tab + 1)) == 0x30) return BAD_COUNT;
    pos++;
    total += count;
    longest = max(longest, tab - start);
    lines++;
  }
  linesTotal = total;
  linesLongest = longest;
  return lines;
}

export function checkedTotal(): f64 {
  return linesTotal;
}

/**
 * Adds the lines of body[from, n), which checkLines accepted, to the table (counts stay below
 * 2^30 while the table's total does: the caller's to keep).
 */
export function addLines(from: i32, n: i32): void {
  const body = bodyAt;
  ensureScratch(linesLongest);
  let pos = from;
  while (pos < n) {
    const start = pos;
    let high: i32 = 0;
    let b = <i32>load<u8>(body + <usize>pos);
    while (b != 0x09) {
      high |= b;
      b = <i32>load<u8>(body + <usize>++pos);
    }
    const len = pos - start;
    let count = 0;
    for (b = <i32>load<u8>(body + <usize>++pos); b != 0x0a; b = <i32>load<u8>(body + <usize>++pos)) count = count * 10 + (b - 0x30);
    pos++;
    addWord(body + <usize>start, len, high < 0x80, count);
  }
}

// A reducer's part (shared/text/sorted-part.ts has the format): the table's words sorted by
// count descending, then by bytes ascending (memcmp, a prefix first), written as lines.

/** The words in part order, as slot addresses (u32 each), after sortWords. */
let orderAt: usize = 0;
let partAt: usize = 0;
let partLength: i32 = 0;

/**
 * Part order of the words in slots a and b: negative when a comes first. Arena words are
 * zero-padded to 8-byte groups, so groups compared big-endian, then lengths, give memcmp's
 * order with a prefix first (a word may hold a 0 byte: it then ties with the padding, and the
 * lengths decide as memcmp's would).
 */
// @ts-ignore: decorator
@inline
function partOrder(a: usize, b: usize): i32 {
  const ca = load<i32>(a, 12);
  const cb = load<i32>(b, 12);
  if (ca != cb) return ca > cb ? -1 : 1;
  const la = load<i32>(a, 4) & LENGTH_MASK;
  const lb = load<i32>(b, 4) & LENGTH_MASK;
  const pa = arenaAt + <usize>(load<i32>(a) - 1);
  const pb = arenaAt + <usize>(load<i32>(b) - 1);
  const groups = padded(min(la, lb));
  for (let k = 0; k < groups; k += 8) {
    const x = bswap<u64>(load<u64>(pa + <usize>k));
    const y = bswap<u64>(load<u64>(pb + <usize>k));
    if (x != y) return x < y ? -1 : 1;
  }
  return la - lb;
}

/**
 * Sorts the table's words into part order (a bottom-up merge sort of their slot addresses);
 * returns where the order is (orderList) and leaves the count of words to words().
 */
export function sortWords(): usize {
  const n = size;
  let from = alloc(max(n, 1) << 2);
  let to = alloc(max(n, 1) << 2);
  let k = 0;
  for (let j = 0; j <= mask; j++) {
    const slot = slotsAt + (<usize>j << 4);
    if (load<i32>(slot) == 0) continue;
    store<u32>(from + (<usize>k << 2), <u32>slot);
    k++;
  }
  for (let width = 1; width < n; width <<= 1) {
    for (let lo = 0; lo < n; lo += width << 1) {
      const mid = min(lo + width, n);
      const hi = min(lo + (width << 1), n);
      let i = lo;
      let j = mid;
      let o = lo;
      while (i < mid && j < hi) {
        const a = <usize>load<u32>(from + (<usize>i << 2));
        const b = <usize>load<u32>(from + (<usize>j << 2));
        if (partOrder(a, b) <= 0) {
          store<u32>(to + (<usize>o << 2), <u32>a);
          i++;
        } else {
          store<u32>(to + (<usize>o << 2), <u32>b);
          j++;
        }
        o++;
      }
      if (i < mid) memory.copy(to + (<usize>o << 2), from + (<usize>i << 2), <usize>((mid - i) << 2));
      else if (j < hi) memory.copy(to + (<usize>o << 2), from + (<usize>j << 2), <usize>((hi - j) << 2));
    }
    const swap = from;
    from = to;
    to = swap;
  }
  orderAt = from;
  return orderAt;
}

/**
 * Writes the lines `word\tcount\n` of the words in the order sortWords left; returns where
 * (partBytes() says how many bytes).
 */
export function writePart(): usize {
  const n = size;
  let bytes = 0;
  for (let k = 0; k < n; k++) {
    const slot = <usize>load<u32>(orderAt + (<usize>k << 2));
    bytes += (load<i32>(slot, 4) & LENGTH_MASK) + 2 + decimalDigits(load<i32>(slot, 12));
  }
  partAt = alloc(bytes);
  let p = partAt;
  for (let k = 0; k < n; k++) {
    const slot = <usize>load<u32>(orderAt + (<usize>k << 2));
    const len = load<i32>(slot, 4) & LENGTH_MASK;
    memory.copy(p, arenaAt + <usize>(load<i32>(slot) - 1), <usize>len);
    p += <usize>len;
    store<u8>(p++, 0x09);
    p = writeDecimal(p, load<i32>(slot, 12));
    store<u8>(p++, 0x0a);
  }
  partLength = bytes;
  return partAt;
}

export function partBytes(): i32 {
  return partLength;
}

// @ts-ignore: decorator
@inline
function decimalDigits(n: i32): i32 {
  let digits = 1;
  while (n >= 10) {
    n /= 10;
    digits++;
  }
  return digits;
}

/** Writes n in decimal at p; returns the position after it. */
function writeDecimal(p: usize, n: i32): usize {
  const end = p + <usize>decimalDigits(n);
  let q = end;
  do {
    q--;
    store<u8>(q, 0x30 + (n % 10));
    n /= 10;
  } while (n > 0);
  return end;
}

/** Where encodeWords wrote the shares' bytes. */
let sharesData: usize = 0;

export function sharesAt(): usize {
  return sharesData;
}

/** FNV-1a of a word's folded bytes in the arena: what WordTable and partitionOf hash. */
function fnvAt(start: usize, len: i32): i32 {
  let h = FNV_OFFSET;
  const end = start + <usize>len;
  for (let k = start; k < end; k++) h = (h ^ <i32>load<u8>(k)) * FNV_PRIME;
  return h;
}

/**
 * Writes the words' lines `word\tcount\n` (after takeUnstored and addCounted: every word's
 * stored bytes are its written form) into `partitions` shares (each word in the share
 * partitionOf gives its bytes: shared/text/word-lines.ts), and finds the `listed` most frequent
 * of them as TopK does (shared/text/forming-top.ts). Returns where the answer is, as i32s: per
 * partition its lines, then its bytes; the number listed and the largest count not listed; per
 * listed word its count, arena offset and length. The shares' bytes, one partition after
 * another, are at sharesAt().
 */
export function encodeWords(partitions: i32, listed: i32): usize {
  const capacity = mask + 1;
  const partitionOfSlot = alloc(capacity);
  const head = alloc((partitions * 2 + 2 + listed * 3) << 2);
  memory.fill(head, 0, <usize>((partitions * 2 + 2 + listed * 3) << 2));
  const heapCounts = alloc(listed << 2);
  const heapSlots = alloc(listed << 2);
  let kept = 0;
  let unlisted = 0;
  for (let j = 0; j < capacity; j++) {
    const slot = slotsAt + (<usize>j << 4);
    const s1 = load<i32>(slot);
    const count = load<i32>(slot, 12);
    if (s1 == 0 || count == 0) continue;
    const len = load<i32>(slot, 4) & LENGTH_MASK;
    let p = 0;
    if (partitions > 1) {
      let h = fnvAt(arenaAt + <usize>(s1 - 1), len);
      h = (h ^ (h >>> 16)) * 0x45d9f3b;
      h ^= h >>> 16;
      p = <i32>(<u32>h % <u32>partitions);
    }
    store<u8>(partitionOfSlot + <usize>j, <u8>p);
    const lines = head + (<usize>p << 2);
    store<i32>(lines, load<i32>(lines) + 1);
    const bytes = head + (<usize>(partitions + p) << 2);
    store<i32>(bytes, load<i32>(bytes) + len + 2 + decimalDigits(count));
    // TopK.offer: a min-heap of the kept counts.
    if (listed == 0) continue;
    if (kept < listed) {
      let i = kept++;
      while (i > 0) {
        const up = (i - 1) >> 1;
        if (load<i32>(heapCounts + (<usize>up << 2)) <= count) break;
        store<i32>(heapCounts + (<usize>i << 2), load<i32>(heapCounts + (<usize>up << 2)));
        store<i32>(heapSlots + (<usize>i << 2), load<i32>(heapSlots + (<usize>up << 2)));
        i = up;
      }
      store<i32>(heapCounts + (<usize>i << 2), count);
      store<i32>(heapSlots + (<usize>i << 2), j);
      continue;
    }
    const least = load<i32>(heapCounts);
    if (count <= least) {
      if (count > unlisted) unlisted = count;
      continue;
    }
    if (least > unlisted) unlisted = least;
    let i = 0;
    for (;;) {
      const left = 2 * i + 1;
      if (left >= kept) break;
      const right = left + 1;
      const child = right < kept && load<i32>(heapCounts + (<usize>right << 2)) < load<i32>(heapCounts + (<usize>left << 2)) ? right : left;
      if (load<i32>(heapCounts + (<usize>child << 2)) >= count) break;
      store<i32>(heapCounts + (<usize>i << 2), load<i32>(heapCounts + (<usize>child << 2)));
      store<i32>(heapSlots + (<usize>i << 2), load<i32>(heapSlots + (<usize>child << 2)));
      i = child;
    }
    store<i32>(heapCounts + (<usize>i << 2), count);
    store<i32>(heapSlots + (<usize>i << 2), j);
  }
  const top = head + (<usize>(partitions * 2) << 2);
  store<i32>(top, kept);
  store<i32>(top, unlisted, 4);
  for (let k = 0; k < kept; k++) {
    const slot = slotsAt + (<usize>load<i32>(heapSlots + (<usize>k << 2)) << 4);
    const entry = top + 8 + (<usize>(k * 3) << 2);
    store<i32>(entry, load<i32>(heapCounts + (<usize>k << 2)));
    store<i32>(entry, load<i32>(slot) - 1, 4);
    store<i32>(entry, load<i32>(slot, 4) & LENGTH_MASK, 8);
  }
  // The shares' bytes, one after another: where each partition's next line goes.
  let total = 0;
  for (let p = 0; p < partitions; p++) total += load<i32>(head + (<usize>(partitions + p) << 2));
  const data = alloc(total);
  sharesData = data;
  const at = alloc(partitions << 3);
  let offset = data;
  for (let p = 0; p < partitions; p++) {
    store<usize>(at + (<usize>p << 3), offset);
    offset += <usize>load<i32>(head + (<usize>(partitions + p) << 2));
  }
  for (let j = 0; j < capacity; j++) {
    const slot = slotsAt + (<usize>j << 4);
    const s1 = load<i32>(slot);
    if (s1 == 0 || load<i32>(slot, 12) == 0) continue;
    const len = load<i32>(slot, 4) & LENGTH_MASK;
    const cursor = at + (<usize>load<u8>(partitionOfSlot + <usize>j) << 3);
    let q = load<usize>(cursor);
    memory.copy(q, arenaAt + <usize>(s1 - 1), <usize>len);
    q += <usize>len;
    store<u8>(q++, 0x09);
    q = writeDecimal(q, load<i32>(slot, 12));
    store<u8>(q++, 0x0a);
    store<usize>(cursor, q);
  }
  return head;
}

// ---------------------------------------------------------------------------------------------
// The scanner.

/** (codePoint << 3) | byteLength of the sequence at p, as decodeAt in char-classes.ts. */
function decodeAt(p: usize, end: usize): i32 {
  const b0 = <i32>load<u8>(p);
  if (b0 < 0x80) return (b0 << 3) | 1;
  if (b0 < 0xc2) return (REPLACEMENT << 3) | 1;
  if (b0 < 0xe0) {
    if (p + 1 >= end) return (REPLACEMENT << 3) | 1;
    const b1 = <i32>load<u8>(p + 1);
    if ((b1 & 0xc0) != 0x80) return (REPLACEMENT << 3) | 1;
    return ((((b0 & 0x1f) << 6) | (b1 & 0x3f)) << 3) | 2;
  }
  if (b0 < 0xf0) {
    if (p + 2 >= end) return (REPLACEMENT << 3) | 1;
    const b1 = <i32>load<u8>(p + 1);
    const b2 = <i32>load<u8>(p + 2);
    const lo = b0 == 0xe0 ? 0xa0 : 0x80;
    const hi = b0 == 0xed ? 0x9f : 0xbf;
    if (b1 < lo || b1 > hi || (b2 & 0xc0) != 0x80) return (REPLACEMENT << 3) | 1;
    return ((((b0 & 0x0f) << 12) | ((b1 & 0x3f) << 6) | (b2 & 0x3f)) << 3) | 3;
  }
  if (b0 < 0xf5) {
    if (p + 3 >= end) return (REPLACEMENT << 3) | 1;
    const b1 = <i32>load<u8>(p + 1);
    const b2 = <i32>load<u8>(p + 2);
    const b3 = <i32>load<u8>(p + 3);
    const lo = b0 == 0xf0 ? 0x90 : 0x80;
    const hi = b0 == 0xf4 ? 0x8f : 0xbf;
    if (b1 < lo || b1 > hi || (b2 & 0xc0) != 0x80 || (b3 & 0xc0) != 0x80) return (REPLACEMENT << 3) | 1;
    return ((((b0 & 0x07) << 18) | ((b1 & 0x3f) << 12) | ((b2 & 0x3f) << 6) | (b3 & 0x3f)) << 3) | 4;
  }
  return (REPLACEMENT << 3) | 1;
}

// @ts-ignore: decorator
@inline
function classAt(cp: i32): i32 {
  return <i32>load<u8>(CLASS + <usize>cp);
}

/**
 * The class and byte length of the code point at p (before stop), as (class << 3) | length; 0
 * when its class is not known yet (neededCodePoint then says which).
 */
// @ts-ignore: decorator
@inline
function classAndLength(p: usize, stop: usize): i32 {
  const d = decodeAt(p, stop);
  const cls = classAt(d >>> 3);
  if (cls == 0) {
    neededCodePoint = d >>> 3;
    return 0;
  }
  return (cls << 3) | (d & 7);
}

/** {@link classAndLength} of the character at p, ASCII included. */
// @ts-ignore: decorator
@inline
function characterAt(p: usize, stop: usize): i32 {
  const b = <i32>load<u8>(p);
  return b < 0x80 ? (<i32>load<u8>(ASCII_CLASS + b) << 3) | 1 : classAndLength(p, stop);
}

/** Counts a token that is neither the chunk's first (continuing a word) nor touching its end. */
function countToken(src: usize, len: i32, ascii: bool): void {
  total++;
  if (len > maxWordBytes) overlong++;
  else addWord(src, len, ascii);
}

/**
 * Counts a token found byte by byte, which may be the chunk's first or touch its end: under the
 * chunk's edge flags as countChunk in words.ts says. A token that does not `qualify` (whitespace
 * tokenizer: no printable byte) is not counted at all.
 */
function countEdgeToken(src: usize, len: i32, ascii: bool, reachesEnd: bool, qualifies: bool): void {
  if (skipFirst) {
    skipFirst = false;
    if (countFirst && qualifies) {
      total++;
      overlong++;
    }
  } else if (!qualifies) {
    return;
  } else if (reachesEnd && endsInsideWord) {
    total++;
    overlong++;
  } else {
    countToken(src, len, ascii);
  }
}

/**
 * Masks of 64 bytes at p, bit k for byte k: letters and digits (ASCII), apostrophes (0x27),
 * and bytes ≥ 0x80.
 */
let wordBits: u64 = 0;
let aposBits: u64 = 0;
let highBits: u64 = 0;

// @ts-ignore: decorator
@inline
function classify64(p: usize): void {
  let w: u64 = 0;
  let a: u64 = 0;
  let hi: u64 = 0;
  const zero = i8x16.splat(0x30);
  const nine = i8x16.splat(9);
  const lowA = i8x16.splat(0x61);
  const z = i8x16.splat(25);
  const caseBit = i8x16.splat(0x20);
  const apostrophe = i8x16.splat(0x27);
  for (let q = 0; q < 4; q++) {
    const v = v128.load(p + (<usize>q << 4));
    const digit = i8x16.le_u(i8x16.sub(v, zero), nine);
    const letter = i8x16.le_u(i8x16.sub(v128.or(v, caseBit), lowA), z);
    const shift = <u64>(q << 4);
    w |= (<u64>(<u32>i8x16.bitmask(v128.or(digit, letter)))) << shift;
    a |= (<u64>(<u32>i8x16.bitmask(i8x16.eq(v, apostrophe)))) << shift;
    hi |= (<u64>(<u32>i8x16.bitmask(v))) << shift;
  }
  wordBits = w;
  aposBits = a;
  highBits = hi;
}

/**
 * Whether the bytes p..end (a run of a block's word bytes and bytes >= 0x80, ASCII apostrophes
 * joining them) hold only word characters: the high bytes then spell whole code points of the
 * WORD class (letters, marks, numbers), and the run is one token as scanToken would find it.
 * False for anything else (a non-word code point such as ’ or U+00A0, ill-formed UTF-8, a code
 * point whose class JavaScript has not filled in yet): the byte-by-byte path decides then.
 */
function allWordCharacters(p: usize, end: usize): bool {
  while (p < end) {
    if (<i32>load<u8>(p) < 0x80) {
      p++;
      continue;
    }
    const d = decodeAt(p, end);
    if (classAt(d >>> 3) != WORD) return false;
    p += <usize>(d & 7);
  }
  return true;
}

/**
 * Counts the tokens of the 64 bytes at body[i] that end by byte 62 (what ends one at 63 depends
 * on byte 64). `i` is between tokens. Bytes >= 0x80 are taken for word bytes: a token holding
 * some is counted here when they are all word characters (most words of most languages with
 * spaces between words), else left to the byte-by-byte path (scalarUntil: up to its end).
 * Returns where to go on: the first token it left, or i + 62; i itself when a token from byte 0
 * runs past the block or must go byte by byte.
 */
function scanBlock(body: usize, i: i32): i32 {
  const p = body + <usize>i;
  classify64(p);
  const high = highBits;
  const w = wordBits | high;
  // An apostrophe joins when word bytes stand on both sides of it.
  const tokens = w | (aposBits & (w << 1) & (w >> 1));
  let starts = tokens & ~(tokens << 1);
  const ends = ~tokens & (tokens << 1);
  while (starts != 0) {
    const s = <i32>ctz(starts);
    const after = ends >> <u64>s;
    const e = after == 0 ? 64 : s + <i32>ctz(after);
    if (e > 62) {
      if (s == 0) {
        scalarUntil = i;
        return i;
      }
      return i + s;
    }
    // The token's bytes [s, e) as a mask (e < 64 here).
    const inToken = ((<u64>1 << <u64>e) - 1) & ~((<u64>1 << <u64>s) - 1);
    if ((high & inToken) == 0) countToken(p + <usize>s, e - s, true);
    else if (allWordCharacters(p + <usize>s, p + <usize>e)) countToken(p + <usize>s, e - s, false);
    else {
      scalarUntil = i + e - 1;
      return i + s;
    }
    starts &= starts - 1;
  }
  return i + 62;
}

/**
 * Scans one token (after any separators) from i byte by byte, under scanUnicode's rules, and
 * counts it. Returns where the next one may start; -1 when the class of a code point is not
 * known yet (neededCodePoint, restartAt).
 */
function scanToken(body: usize, i: i32, n: i32): i32 {
  const stop = body + <usize>n;
  let b: i32 = 0;
  let len = 1;
  let cls: i32 = 0;
  let found = false;
  while (i < n) {
    b = <i32>load<u8>(body + <usize>i);
    len = 1;
    if (b < 0x80) {
      if (load<u8>(WORD_FOLD + b) == 0) {
        i++;
        continue;
      }
      cls = WORD;
    } else {
      const c = classAndLength(body + <usize>i, stop);
      if (c == 0) {
        restartAt = i;
        return -1;
      }
      cls = c >> 3;
      len = c & 7;
    }
    if (cls == WORD) {
      found = true;
      break;
    }
    i += len;
  }
  if (!found) return n;
  // A token starts at i: W+ (A W+)*. Invariant at the loop top: body[i] starts a W of `len` bytes.
  const start = i;
  let ascii = true;
  let reachesEnd = false;
  let end: i32;
  while (true) {
    if (len == 1) {
      // A run of ASCII word bytes; the space after the body ends one that reaches it.
      do {
        b = <i32>load<u8>(body + <usize>++i);
      } while (load<u8>(WORD_FOLD + b) != 0);
      if (i < n && b < 0x80 && b != 0x27) {
        end = i;
        i++;
        break;
      }
    } else {
      ascii = false;
      i += len;
    }
    if (i >= n) {
      end = n;
      reachesEnd = true;
      break;
    }
    const c = characterAt(body + <usize>i, stop);
    if (c == 0) {
      restartAt = start;
      return -1;
    }
    cls = c >> 3;
    len = c & 7;
    if (cls == WORD) continue;
    end = i;
    if (cls == APOS) {
      const j = i + len;
      if (j >= n) {
        reachesEnd = true;
        i = j;
        break;
      }
      const c2 = characterAt(body + <usize>j, stop);
      if (c2 == 0) {
        restartAt = start;
        return -1;
      }
      const len2 = c2 & 7;
      if (c2 >> 3 == WORD) {
        if (len != 1) ascii = false;
        i = j;
        len = len2;
        continue;
      }
      i = j + len2;
      break;
    }
    i += len;
    break;
  }
  countEdgeToken(body + <usize>start, end - start, ascii, reachesEnd, true);
  return i;
}

/**
 * Scans body[from, n) (the body buffer) under the tokenizer's rules (scanUnicode's, or with
 * `whitespace` scanWhitespace's), adding its words to the table. Returns DONE, or (unicode) the
 * offset to scan from again once the class of `needed()` is known.
 */
export function scan(from: i32, n: i32, whitespace: bool): i32 {
  anyAscii = whitespace;
  const body = bodyAt;
  store<u8>(body + <usize>n, 0x20);
  let i = from;
  // The chunk's first token may continue a word: the byte-by-byte path knows what to do.
  scalarUntil = skipFirst ? i : -1;
  while (i < n) {
    if (i > scalarUntil && i + 64 <= n) {
      const next = whitespace ? scanWhitespaceBlock(body, i) : scanBlock(body, i);
      if (next != i) {
        i = next;
        continue;
      }
    }
    i = whitespace ? scanWhitespaceToken(body, i, n) : scanToken(body, i, n);
    if (i < 0) return restartAt;
  }
  return DONE;
}

// ---------------------------------------------------------------------------------------------
// The whitespace tokenizer (scanWhitespace in words.ts, `wc -w`'s rules): a token is a run of
// bytes other than space \t \n \v \f \r, counted when it holds a printable ASCII byte
// (0x21-0x7e). Nothing is decoded, so a 64-byte block needs no byte-by-byte path whatever its
// bytes; a byte of 0x80 or more only makes its token non-ASCII (its line written by JavaScript).
// (The two classifiers share their shape, not their masks: one per tokenizer keeps each inlined.)

let spaceBits: u64 = 0;
let printableBits: u64 = 0;

/** Masks of 64 bytes at p, bit k for byte k: whitespace, printable ASCII, bytes ≥ 0x80 (highBits). */
// @ts-ignore: decorator
@inline
function classifyWhitespace64(p: usize): void {
  let s: u64 = 0;
  let pr: u64 = 0;
  let hi: u64 = 0;
  const tab = i8x16.splat(0x09);
  const four = i8x16.splat(4);
  const space = i8x16.splat(0x20);
  const bang = i8x16.splat(0x21);
  const printableSpan = i8x16.splat(0x7e - 0x21);
  for (let q = 0; q < 4; q++) {
    const v = v128.load(p + (<usize>q << 4));
    const white = v128.or(i8x16.le_u(i8x16.sub(v, tab), four), i8x16.eq(v, space));
    const printable = i8x16.le_u(i8x16.sub(v, bang), printableSpan);
    const shift = <u64>(q << 4);
    s |= (<u64>(<u32>i8x16.bitmask(white))) << shift;
    pr |= (<u64>(<u32>i8x16.bitmask(printable))) << shift;
    hi |= (<u64>(<u32>i8x16.bitmask(v))) << shift;
  }
  spaceBits = s;
  printableBits = pr;
  highBits = hi;
}

/**
 * Counts the tokens of the 64 bytes at body[i] that end inside them (a whitespace byte follows
 * within the block). `i` is between tokens. Returns where to go on: the token it left, or i + 64;
 * i itself when a token from byte 0 runs past the block (scalarUntil then says to scan it byte
 * by byte).
 */
function scanWhitespaceBlock(body: usize, i: i32): i32 {
  const p = body + <usize>i;
  classifyWhitespace64(p);
  const tokens = ~spaceBits;
  let starts = tokens & ~(tokens << 1);
  const ends = ~tokens & (tokens << 1);
  while (starts != 0) {
    const s = <i32>ctz(starts);
    const after = ends >> <u64>s;
    if (after == 0) {
      if (s == 0) {
        scalarUntil = i;
        return i;
      }
      return i + s;
    }
    const e = s + <i32>ctz(after);
    // The token's bytes [s, e) as a mask (e < 64 here).
    const inToken = ((<u64>1 << <u64>e) - 1) & ~((<u64>1 << <u64>s) - 1);
    if ((printableBits & inToken) != 0) countToken(p + <usize>s, e - s, (highBits & inToken) == 0);
    starts &= starts - 1;
  }
  return i + 64;
}

// @ts-ignore: decorator
@inline
function isWhitespace(b: i32): bool {
  return b == 0x20 || <u32>(b - 0x09) <= 4;
}

/**
 * Scans one token (after any whitespace) from i byte by byte and counts it as scanWhitespace
 * in words.ts does, edge flags included. Returns where the next one may start.
 */
function scanWhitespaceToken(body: usize, i: i32, n: i32): i32 {
  while (i < n && isWhitespace(<i32>load<u8>(body + <usize>i))) i++;
  if (i >= n) return n;
  const start = i;
  let printable = false;
  let ascii = true;
  do {
    const b = <i32>load<u8>(body + <usize>i);
    if (isWhitespace(b)) break;
    if (b >= 0x80) ascii = false;
    else if (b >= 0x21 && b <= 0x7e) printable = true;
    i++;
  } while (i < n);
  // wc never starts a word on a token without a printable byte, so neither do we (words.ts says why).
  countEdgeToken(body + <usize>start, i - start, ascii, i == n, printable);
  return i;
}
