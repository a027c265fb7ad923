/**
 * Compressed files that the workers decompress themselves, so that many compressed files, or
 * one made of many gzip members or bzip2 streams, keep every worker busy and the coordinator
 * reads no text.
 *
 * A compressed file is counted in PIECES: byte ranges of the compressed file that begin where a
 * gzip member or bzip2 stream begins (or at 0) and end where another begins (or at its end), so
 * each piece decompresses on its own. A file up to the target size of a task is one piece; a
 * bigger one is cut at member starts every `target` bytes or so, found by the coordinator from
 * the magic bytes (gzip's also checked by inflating a little of the member). A file that cannot be cut into
 * pieces of at most MAX_PIECE_BYTES (one big gzip member, as `gzip big.txt` writes, or zstd) is
 * carried as before: the coordinator decompresses it and the workers count its chunks.
 *
 * Where a piece's text begins and ends is decided as for a plain byte range (ranges.ts), on the
 * decompressed text: the worker of a piece decompresses it and the first text of the pieces
 * after it (its LOOKAHEAD), and counts the range from EDGE bytes after its first byte to EDGE
 * bytes after its last, in its own text's coordinates. Both workers meeting at a boundary see
 * the same bytes from the boundary on, so they cut at the same place: the pieces' counts add up
 * to the file's. (EDGE = HISTORY: ranges.ts looks back that far from a nominal edge, so neither
 * side needs a byte from before the boundary.)
 */
import { open } from 'node:fs/promises';
import * as zlib from 'node:zlib';
import { CorruptInputError, InputError, TaskRejectedError } from '../errors.js';
import { MAX_TASK_BYTES } from '../limits.js';
import { WORD_SLACK } from './chunker.js';
import { corruptReason, decompress, type Compression } from './compressed.js';
import { HISTORY, LOOKAHEAD } from './cuts.js';
import type { ByteSource } from './ranges.js';
import { isPiece, openRange, type EntryOpener, type PieceEntry, type RangeEntry } from './file-input.js';
import { readObjectRange } from './object-input.js';
import { isUrl, readUrlRange } from './url-input.js';
import { isRemote } from './remote-ranges.js';

/** Compressed bytes one piece spans at most. */
export const MAX_PIECE_BYTES = MAX_TASK_BYTES;
/** Text one piece may decompress to, at most: more is refused rather than held. */
export const MAX_PIECE_TEXT_BYTES = 1024 * 1024 * 1024;
/** How far past a boundary, in text, the nominal edge there lies. */
const EDGE = HISTORY;
/** Compressed bytes inflated to check a gzip member start. */
const PROBE_BYTES = 64 * 1024;
/** Read size of the scan for member starts, and of a worker's reads. */
const READ_BYTES = 1024 * 1024;
/**
 * Compressed bytes first fed to find the text after a piece (doubled each time more is needed):
 * little, so that corrupt data further on, the next piece's, is not reached.
 */
const LOOKAHEAD_FIRST_READ = 1024;

const GZIP_MAGIC = Buffer.from([0x1f, 0x8b, 0x08]);
/** "BZh", a block size digit, then the first block's magic (the digits of pi) or the end of an empty stream's. */
const BZIP2_MAGIC = Buffer.from('BZh');
const BZIP2_BLOCK = Buffer.from([0x31, 0x41, 0x59, 0x26, 0x53, 0x59]);
const BZIP2_END = Buffer.from([0x17, 0x72, 0x45, 0x38, 0x50, 0x90]);

/**
 * The pieces of a compressed file, as boundaries [0, b1, …, size], or null when it cannot be
 * cut into pieces of at most MAX_PIECE_BYTES (the coordinator then carries it).
 * @param target compressed bytes per piece to aim for
 */
export async function compressedPieces(location: string, size: number, compression: Compression, target: number): Promise<number[] | null> {
  if (size <= target) return [0, size];
  if (compression === 'zstd') return null;
  const handle = await open(location, 'r');
  try {
    const boundaries = [0];
    const magic = compression === 'gzip' ? GZIP_MAGIC : BZIP2_MAGIC;
    // Blocks overlap by the longest header looked at, so no start is missed across two reads.
    const overlap = 16;
    const block = Buffer.alloc(READ_BYTES + overlap);
    for (let at = 0; at < size; at += READ_BYTES) {
      const { bytesRead } = await handle.read(block, 0, Math.min(block.length, size - at), at);
      // Starts in the overlap are taken by the next read.
      const limit = Math.min(bytesRead, READ_BYTES);
      for (let k = block.indexOf(magic, at === 0 ? 1 : 0); k >= 0 && k < limit; k = block.indexOf(magic, k + 1)) {
        const start = at + k;
        if (start - boundaries.at(-1)! < target) continue;
        const header = block.subarray(k, Math.min(bytesRead, k + overlap));
        const starts = compression === 'gzip' ? await isGzipMember(handle, start, header) : isBzip2Stream(header);
        if (!starts) continue;
        if (start - boundaries.at(-1)! > MAX_PIECE_BYTES) return null;
        boundaries.push(start);
      }
    }
    if (size - boundaries.at(-1)! > MAX_PIECE_BYTES) return null;
    boundaries.push(size);
    return boundaries;
  } finally {
    await handle.close();
  }
}

/** True when `header` starts a bzip2 stream: its magic and that of a first block (or of its end). */
function isBzip2Stream(header: Uint8Array): boolean {
  if (header.length < 10 || header[3]! < 0x31 || header[3]! > 0x39) return false;
  const next = Buffer.from(header.buffer, header.byteOffset + 4, 6);
  return next.equals(BZIP2_BLOCK) || next.equals(BZIP2_END);
}

/**
 * True when a gzip member plausibly starts at `start`: a header as gzip writes it (RFC 1952:
 * no reserved flag, a known XFL and OS), and deflate data after it that inflates without error
 * as far as PROBE_BYTES go. Three bytes that happen to look like a header inside compressed data
 * almost never pass both; one that did would make its pieces fail, naming the file, not count wrong.
 */
async function isGzipMember(handle: import('node:fs/promises').FileHandle, start: number, header: Uint8Array): Promise<boolean> {
  if (header.length < 10) return false;
  const flags = header[3]!;
  const xfl = header[8]!;
  const os = header[9]!;
  if ((flags & 0xe0) !== 0 || (xfl !== 0 && xfl !== 2 && xfl !== 4) || (os > 13 && os !== 255)) return false;
  const probe = Buffer.alloc(PROBE_BYTES);
  const { bytesRead } = await handle.read(probe, 0, PROBE_BYTES, start);
  const body = gzipBodyStart(probe.subarray(0, bytesRead));
  if (body < 0) return false;
  try {
    zlib.inflateRawSync(probe.subarray(body, bytesRead));
    return true;
  } catch (error) {
    // Running out of input is fine: the probe stops before the member does.
    return (error as NodeJS.ErrnoException).code === 'Z_BUF_ERROR';
  }
}

/** Where the deflate data of the gzip member at the start of `bytes` begins (RFC 1952), or -1. */
function gzipBodyStart(bytes: Uint8Array): number {
  const flags = bytes[3]!;
  let at = 10;
  if (flags & 4) {
    if (bytes.length < at + 2) return -1;
    at += 2 + (bytes[at]! | (bytes[at + 1]! << 8));
  }
  for (const flag of [8, 16]) {
    if (!(flags & flag)) continue;
    const zero = bytes.indexOf(0, at);
    if (zero < 0) return -1;
    at = zero + 1;
  }
  if (flags & 2) at += 2;
  return at < bytes.length ? at : -1;
}

/** The decompressed text a worker holds for one piece: its own, then some of what follows. */
export interface PieceText {
  /** The piece's text followed by the first text after it. */
  bytes: Uint8Array;
  /** How much of `bytes` is the piece's own text. */
  own: number;
  /** True when `bytes` runs to the end of the file's text. */
  complete: boolean;
}

/** Text to decompress past a piece's end: what ranges.ts reads past a nominal edge EDGE bytes in. */
export function lookaheadBytes(maxWordBytes: number): number {
  return EDGE + maxWordBytes + WORD_SLACK + LOOKAHEAD;
}

/**
 * Decompresses the piece [start, end) of a compressed file read through `source`, and the text
 * after it: `lookahead` bytes of it, or all of it (null).
 * @param name the file, for errors
 * @throws InputError naming the file and the compressed byte where its data is corrupt
 */
export async function decompressPiece(source: ByteSource, compression: Compression, name: string, start: number, end: number, lookahead: number | null): Promise<PieceText> {
  const tooBig = () => new TaskRejectedError(`${name}: compressed bytes ${start}-${end - 1} decompress to more than ${MAX_PIECE_TEXT_BYTES} bytes`);
  let parts: Uint8Array[] | null = compression === 'gzip' ? gunzipWhole(source, start, end, name, tooBig) : null;
  if (!parts) {
    parts = [];
    let own = 0;
    for await (const text of decompress(compressedBytes(source, start, end, name), compression, name, start)) {
      own += text.length;
      if (own > MAX_PIECE_TEXT_BYTES) throw tooBig();
      parts.push(text);
    }
  }
  const own = parts.reduce((total, part) => total + part.length, 0);
  const rest = end >= source.size ? { bytes: [] as Uint8Array[], length: 0, complete: true } : await textAfter(source, compression, name, end, lookahead);
  return { bytes: Buffer.concat([...parts, ...rest.bytes], own + rest.length), own, complete: rest.complete };
}

/** Output buffer of {@link gunzipWhole}: zlib writes the text in pieces of this size, then joins them once. */
const GUNZIP_CHUNK_BYTES = 4 * 1024 * 1024;

/**
 * A gzip piece's own text in one synchronous call: its compressed bytes are read whole anyway,
 * and zlib's stream would hand its text over in 16 KiB pieces through three streams and the
 * threadpool (a 3 MB piece of English, 10.6 MB of text: 110-200 ms that way, 35-45 ms this
 * way). Null when zlib fails on it: the stream then decompresses it again, to say how far in it
 * is corrupt (as it always did).
 */
function gunzipWhole(source: ByteSource, start: number, end: number, name: string, tooBig: () => Error): Uint8Array[] | null {
  const compressed = new Uint8Array(end - start);
  readExactly(source, compressed, start, name);
  try {
    return [zlib.gunzipSync(compressed, { chunkSize: GUNZIP_CHUNK_BYTES, maxOutputLength: MAX_PIECE_TEXT_BYTES })];
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE') throw tooBig();
    return null;
  }
}

/**
 * The text after a piece: `want` bytes of it, or all of it (null). Only what is needed is
 * decompressed, and what was decompressed counts even if later bytes are corrupt: they belong
 * to the next piece, whose worker reports them. Corruption before `want` bytes is this piece's
 * error too (its end cannot be decided without them).
 */
async function textAfter(source: ByteSource, compression: Compression, name: string, from: number, want: number | null): Promise<{ bytes: Uint8Array[]; length: number; complete: boolean }> {
  const bytes: Uint8Array[] = [];
  let length = 0;
  const enough = () => want !== null && length >= want;
  if (compression !== 'gzip') {
    for await (const text of decompress(compressedBytes(source, from, source.size, name), compression, name, from)) {
      bytes.push(text);
      length += text.length;
      if (enough()) return { bytes, length, complete: false };
    }
    return { bytes, length, complete: true };
  }
  // zlib's stream drops what it decompressed once it fails: so it is fed a block at a time, and
  // its output is taken as it comes.
  const gunzip = zlib.createGunzip();
  gunzip.on('data', (text: Uint8Array) => {
    bytes.push(text);
    length += text.length;
  });
  let failure: Error | undefined;
  const ended = new Promise<void>((resolve) => {
    gunzip.on('end', resolve);
    gunzip.on('error', (error: Error) => {
      failure ??= error;
      resolve();
    });
  });
  try {
    for (let at = from, read = LOOKAHEAD_FIRST_READ; at < source.size && !enough() && !failure; read = Math.min(2 * read, READ_BYTES)) {
      const block = new Uint8Array(Math.min(read, source.size - at));
      readExactly(source, block, at, name);
      await Promise.race([new Promise<void>((resolve) => gunzip.write(block, () => resolve())), ended]);
      at += block.length;
    }
    if (enough()) return { bytes, length, complete: false };
    if (!failure) {
      gunzip.end();
      await ended;
    }
    if (failure && !enough()) {
      throw new InputError(name, `gzip data is corrupt after compressed byte ${from}: ${corruptReason(failure, 'gzip')}`);
    }
    return { bytes, length, complete: !enough() };
  } finally {
    gunzip.destroy();
  }
}

async function* compressedBytes(source: ByteSource, start: number, end: number, name: string): AsyncGenerator<Uint8Array> {
  for (let at = start; at < end; ) {
    const block = new Uint8Array(Math.min(READ_BYTES, end - at));
    readExactly(source, block, at, name);
    yield block;
    at += block.length;
  }
}

/**
 * Fills `target` with the compressed bytes from `position` on.
 * @throws InputError naming the file when it ends before them
 */
function readExactly(source: ByteSource, target: Uint8Array, position: number, name: string): void {
  for (let at = 0; at < target.length; ) {
    const got = source.read(target.subarray(at), position + at, target.length - at);
    if (got <= 0) throw new InputError(name, `it ends at byte ${position + at}, before its size of ${source.size} bytes`);
    at += got;
  }
}

/** A piece's text reached outside what was decompressed (only the rare scan to the end of an overlong word). */
export class PieceWindowMiss extends Error {
  constructor(readonly range: number) {
    super('read outside the decompressed text of a piece');
  }
}

/**
 * A piece's text as the ByteSource that ranges.ts counts, and the nominal range to count in it:
 * from EDGE bytes after the piece's first byte (0 for the file's first piece) to EDGE bytes
 * after its last (its text's end for the file's last piece). Near the file's end, where fewer
 * than EDGE bytes of text are left, both sides of a boundary take the text's end instead.
 * @param index the range's index in its task, for PieceWindowMiss
 */
export function pieceSource(text: PieceText, first: boolean, last: boolean, index: number): { source: ByteSource; start: number; end: number } {
  const { bytes, own, complete } = text;
  const size = complete ? bytes.length : Number.MAX_SAFE_INTEGER;
  const start = first ? 0 : Math.min(EDGE, size);
  const end = last ? own : own + Math.min(EDGE, size - own);
  const source: ByteSource = {
    size,
    read(target, position, length) {
      const want = Math.min(length, size - position);
      if (want <= 0) return 0;
      if (position + want > bytes.length) throw new PieceWindowMiss(index);
      target.set(bytes.subarray(position, position + want));
      return want;
    },
  };
  return { source, start, end };
}

/**
 * The compressed bytes of an object's or a URL's piece, and all after it (such a piece is the
 * whole object or body: see piecesOf in shared/kinds/count.ts), as the source a piece is
 * decompressed from; checked against what the job was planned with.
 */
async function fetchRemotePiece(range: PieceEntry): Promise<{ source: ByteSource; close(): void }> {
  const [, path, size, mtimeMs, start, , { etag }] = range;
  const bytes = isUrl(path) ? await readUrlRange(path, { size, mtimeMs, ...(etag !== undefined ? { etag } : {}) }, start, size) : (await readObjectRange(path, size, mtimeMs, start, size)).bytes;
  const source: ByteSource = {
    size,
    read(target, position, length) {
      const piece = bytes.subarray(position - start, Math.min(bytes.length, position - start + length));
      target.set(piece);
      return piece.length;
    },
  };
  return { source, close: () => undefined };
}

/**
 * Runs `count` over a task's ranges with the text of its compressed pieces decompressed first
 * (each piece's own text and the lookahead after it). In the rare case counting reads past the
 * lookahead (the scan to the end of an overlong word with the whitespace tokenizer) that piece
 * is decompressed to the file's end and `count` runs again from scratch: it must keep nothing
 * from a run that threw.
 * @returns synchronously when no range is a piece
 * @throws CorruptInputError naming the file and the compressed byte where its data is corrupt
 */
export function withPieces<T>(ranges: readonly RangeEntry[] | undefined, maxWordBytes: number, count: (open: EntryOpener | undefined) => T | Promise<T>): T | Promise<T> {
  if (!ranges || !ranges.some(isPiece)) return count(undefined);
  return countPieces(ranges, maxWordBytes, count);
}

async function countPieces<T>(ranges: readonly RangeEntry[], maxWordBytes: number, count: (open: EntryOpener | undefined) => T | Promise<T>): Promise<T> {
  const texts = new Map<number, PieceText>();
  const load = async (index: number, toEnd: boolean) => {
    const range = ranges[index]!;
    if (!isPiece(range)) return;
    const [, path, , , start, end, { compression }] = range;
    // The same checks as a plain range: the file (or object) the job started with, readable by this worker.
    const file = isRemote(path) ? await fetchRemotePiece(range) : openRange(range);
    try {
      texts.set(index, await decompressPiece(file.source, compression, path, start, end, toEnd ? null : lookaheadBytes(maxWordBytes)));
    } catch (error) {
      // Corrupt data stays corrupt: no other delivery would read it differently.
      if (error instanceof InputError) throw new CorruptInputError(error.message);
      throw error;
    } finally {
      file.close();
    }
  };
  for (let index = 0; index < ranges.length; index++) await load(index, false);
  const open: EntryOpener = (range, index) => {
    const text = texts.get(index);
    if (!text) return undefined;
    const piece = pieceSource(text, range[4] === 0, range[5] === range[2], index);
    return { ...piece, close: () => undefined };
  };
  for (;;) {
    try {
      return await count(open);
    } catch (error) {
      if (!(error instanceof PieceWindowMiss)) throw error;
      await load(error.range, true);
    }
  }
}
