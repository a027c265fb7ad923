// The "unicode" word scanner and a chunk's word table, in AssemblyScript compiled to WebAssembly
// (`npm run build`, with the assemblyscript compiler from npm; nothing binary is committed).
//
// It is a port of scanUnicode (shared/text/words.ts) and WordTable.add (shared/text/word-table.ts)
// and must stay byte for byte in step with them: same FNV-1a hash, same slot layout, same probe
// order, same growth, so that a table filled here and handed to JavaScript is the very table the
// JavaScript scanner would have filled (tests/wasm-scanner.test.ts compares them). The loader
// and the rules for when it is used are in shared/text/wasm-scanner.ts.
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

const CLASS: usize = (__heap_base + 15) & ~(<usize>15);
/** Folded byte of an ASCII word byte ([0-9A-Za-z]), 0 for every other byte. */
const WORD_FOLD: usize = CLASS + 0x110000;
/** Class of each ASCII byte. */
const ASCII_CLASS: usize = WORD_FOLD + 256;
/** The fold applied to every byte stored (LOWER_ASCII or IDENTITY). */
const FOLD: usize = ASCII_CLASS + 128;
const HEAP: usize = FOLD + 256;

let heapTop: usize = HEAP;
let bodyAt: usize = 0;
let bodyCap: i32 = 0;

let slotsAt: usize = 0;
let mask: i32 = 0;
let size: i32 = 0;
let arenaAt: usize = 0;
let arenaCap: i32 = 0;
let arenaUsed: i32 = 0;

let total: i32 = 0;
let overlong: i32 = 0;
let skipFirst: bool = false;
let countFirst: bool = false;
let endsInsideWord: bool = false;
let maxWordBytes: i32 = 0;
let neededCodePoint: i32 = 0;

function ensureMemory(end: usize): void {
  const have = (<usize>memory.size()) << 16;
  if (end <= have) return;
  const pages = <i32>((end - have + 0xffff) >> 16);
  if (memory.grow(pages) < 0) unreachable();
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

/** A buffer of at least `n` bytes for the next chunk's body; valid until the next call. */
export function bodyBuffer(n: i32): usize {
  if (n > bodyCap) {
    bodyAt = alloc(n);
    bodyCap = n;
  }
  return bodyAt;
}

/**
 * Starts an empty table of `capacity` slots (a power of two), folding ASCII case or not. The
 * body buffer survives; everything allocated after it is dropped.
 */
export function reset(capacity: i32, caseSensitive: bool): void {
  heapTop = bodyCap > 0 ? (bodyAt + <usize>bodyCap + 15) & ~(<usize>15) : HEAP;
  mask = capacity - 1;
  size = 0;
  slotsAt = alloc(capacity << 4);
  memory.fill(slotsAt, 0, <usize>(capacity << 4));
  arenaCap = capacity * 4;
  arenaAt = alloc(arenaCap);
  arenaUsed = 0;
  for (let b = 0; b < 256; b++) {
    const upper = b >= 0x41 && b <= 0x5a;
    store<u8>(FOLD + b, caseSensitive || !upper ? b : b + 0x20);
    const word = b < 128 && load<u8>(ASCII_CLASS + b) == WORD;
    store<u8>(WORD_FOLD + b, word ? load<u8>(FOLD + b) : 0);
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
export function slots(): usize {
  return slotsAt;
}
export function capacity(): i32 {
  return mask + 1;
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

@inline
function mix(hash: i32): i32 {
  const h = (hash ^ (hash >>> 16)) * 0x45d9f3b;
  return h ^ (h >>> 16);
}

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

function sameBytes(src: usize, m: i32, at: usize): bool {
  for (let k = 0; k < m; k++) {
    const a = load<u8>(at + k);
    const b = load<u8>(src + k);
    if (a != b && a != load<u8>(FOLD + b)) return false;
  }
  return true;
}

function insert(src: usize, len: i32): i32 {
  const at = arenaUsed;
  if (at + len > arenaCap) {
    const cap = max(arenaCap * 2, at + len);
    const moved = alloc(cap);
    memory.copy(moved, arenaAt, <usize>at);
    arenaAt = moved;
    arenaCap = cap;
  }
  const out = arenaAt + at;
  for (let k = 0; k < len; k++) store<u8>(out + k, load<u8>(FOLD + load<u8>(src + k)));
  arenaUsed = at + len;
  return at;
}

function grow(): void {
  const old = slotsAt;
  const oldSlots = (mask + 1) << 2;
  const cap = (mask + 1) * (mask >= 1 << 17 ? 4 : 2);
  mask = cap - 1;
  slotsAt = alloc(cap << 4);
  memory.fill(slotsAt, 0, <usize>(cap << 4));
  const wrap = (mask << 2) | 3;
  for (let j = 0; j < oldSlots; j += 4) {
    const s1 = load<i32>(old + (<usize>j << 2));
    if (s1 == 0) continue;
    const tag = load<i32>(old + (<usize>(j + 1) << 2));
    const s = arenaAt + <usize>(s1 - 1);
    const end = s + <usize>(tag & LENGTH_MASK);
    let h = FNV_OFFSET;
    for (let k = s; k < end; k++) h = (h ^ <i32>load<u8>(k)) * FNV_PRIME;
    let i = (mix(h) & mask) << 2;
    while (load<i32>(slotsAt + (<usize>i << 2)) != 0) i = (i + 4) & wrap;
    const to = slotsAt + (<usize>i << 2);
    store<i32>(to, s1);
    store<i32>(to, tag, 4);
    store<i32>(to, load<i32>(old + (<usize>(j + 2) << 2)), 8);
    store<i32>(to, load<i32>(old + (<usize>(j + 3) << 2)), 12);
  }
}

/** WordTable.add with n = 1 (counts stay below 2^30: the caller scans at most 2^30 bytes a table). */
function add(src: usize, len: i32, hash: i32, tail: i32, ascii: bool): void {
  const tag = ascii ? len | ASCII_FLAG : len;
  const wrap = (mask << 2) | 3;
  let i = (mix(hash) & mask) << 2;
  for (;;) {
    const slot = slotsAt + (<usize>i << 2);
    const s1 = load<i32>(slot);
    if (s1 == 0) break;
    if (load<i32>(slot, 8) == tail && load<i32>(slot, 4) == tag && (len <= 4 || sameBytes(src, len - 4, arenaAt + <usize>(s1 - 1)))) {
      store<i32>(slot, load<i32>(slot, 12) + 1, 12);
      return;
    }
    i = (i + 4) & wrap;
  }
  const slot = slotsAt + (<usize>i << 2);
  store<i32>(slot, insert(src, len) + 1);
  store<i32>(slot, tag, 4);
  store<i32>(slot, tail, 8);
  store<i32>(slot, 1, 12);
  if (++size * 4 > mask * 3) grow();
}

@inline
function classAt(cp: i32): i32 {
  return <i32>load<u8>(CLASS + <usize>cp);
}

/**
 * Scans body[from, n) (the body buffer) under scanUnicode's rules, adding its words to the
 * table. Returns DONE, or the offset to scan from again once the class of `needed()` is known.
 */
export function scan(from: i32, n: i32): i32 {
  const body = bodyAt;
  const stop = body + <usize>n;
  let i = from;
  while (i < n) {
    let b = <i32>load<u8>(body + <usize>i);
    let len = 1;
    let cls: i32;
    if (b < 0x80) {
      if (load<u8>(WORD_FOLD + b) == 0) {
        i++;
        continue;
      }
      cls = WORD;
    } else {
      const d = decodeAt(body + <usize>i, stop);
      len = d & 7;
      cls = classAt(d >>> 3);
      if (cls == 0) {
        neededCodePoint = d >>> 3;
        return i;
      }
    }
    if (cls != WORD) {
      i += len;
      continue;
    }
    const start = i;
    let h = FNV_OFFSET;
    let tail = 0;
    let ascii = true;
    let reachesEnd = false;
    let end: i32;
    for (;;) {
      if (len == 1) {
        let f = <i32>load<u8>(WORD_FOLD + b);
        do {
          h = (h ^ f) * FNV_PRIME;
          tail = (tail << 8) | f;
          if (++i >= n) break;
          b = <i32>load<u8>(body + <usize>i);
          f = <i32>load<u8>(WORD_FOLD + b);
        } while (f != 0);
        if (i < n && b < 0x80 && b != 0x27) {
          end = i;
          i++;
          break;
        }
      } else {
        ascii = false;
        for (let k = i; k < i + len; k++) {
          const c = <i32>load<u8>(body + <usize>k);
          h = (h ^ c) * FNV_PRIME;
          tail = (tail << 8) | c;
        }
        i += len;
      }
      if (i >= n) {
        end = n;
        reachesEnd = true;
        break;
      }
      b = <i32>load<u8>(body + <usize>i);
      if (b < 0x80) {
        cls = <i32>load<u8>(ASCII_CLASS + b);
        len = 1;
      } else {
        const d = decodeAt(body + <usize>i, stop);
        len = d & 7;
        cls = classAt(d >>> 3);
        if (cls == 0) {
          neededCodePoint = d >>> 3;
          return start;
        }
      }
      if (cls == WORD) continue;
      end = i;
      if (cls == APOS) {
        const j = i + len;
        if (j >= n) {
          reachesEnd = true;
          i = j;
          break;
        }
        const b2 = <i32>load<u8>(body + <usize>j);
        let len2 = 1;
        let cls2: i32;
        if (b2 < 0x80) {
          cls2 = <i32>load<u8>(ASCII_CLASS + b2);
        } else {
          const d = decodeAt(body + <usize>j, stop);
          len2 = d & 7;
          cls2 = classAt(d >>> 3);
          if (cls2 == 0) {
            neededCodePoint = d >>> 3;
            return start;
          }
        }
        if (cls2 == WORD) {
          if (len != 1) ascii = false;
          for (let k = i; k < j; k++) {
            const c = <i32>load<u8>(body + <usize>k);
            h = (h ^ c) * FNV_PRIME;
            tail = (tail << 8) | c;
          }
          i = j;
          b = b2;
          len = len2;
          continue;
        }
        i = j + len2;
        break;
      }
      i += len;
      break;
    }
    if (skipFirst) {
      skipFirst = false;
      if (countFirst) {
        total++;
        overlong++;
      }
    } else if (reachesEnd && endsInsideWord) {
      total++;
      overlong++;
    } else {
      total++;
      if (end - start > maxWordBytes) overlong++;
      else add(body + <usize>start, end - start, h, tail, ascii);
    }
  }
  return DONE;
}
