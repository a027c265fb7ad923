/**
 * How the text of a job's input files becomes tasks, and how a worker reads what a task names:
 * the file-input part of text kinds (count today), apart from what is counted.
 *
 * Two ways, both packing many small files into one task so that a folder of 10,000 mails costs
 * about what one file of the same bytes costs:
 *
 * - RANGES, when workers read the files (the embedded default; `--workers-read-files`): the
 *   coordinator reads nothing. From the sizes it already has it plans nominal byte ranges of
 *   about `chunkSize` bytes, whole small files and pieces of big ones, and a worker reads each
 *   range itself, deciding its exact edges from the bytes (ranges.ts). Each range carries its
 *   file's size and modification time from when the job started: a file that changed since is
 *   refused by the worker, so nothing read differently is ever counted.
 * - CHUNKS, when tasks carry the bytes (stdin, or workers elsewhere): the coordinator reads each
 *   file once and cuts it where no word spans a cut (chunker.ts); chunks of small files share a
 *   task, their bytes back to back in its body.
 *
 * Objects in a NATS Object Store bucket (obj://BUCKET/NAME, shared/text/object-input.ts) are
 * always RANGES: every worker reads them from the server, whatever --workers-read-files says.
 * URLs whose server serves byte ranges (shared/text/url-input.ts) are RANGES when the job lets
 * workers fetch URLs (--workers-fetch-urls), other URLs CHUNKS; the job's split decides which
 * inputs its workers read (see `split` in shared/kinds/count.ts).
 *
 * Both are deterministic for the same files and settings, which `tally resume` relies on.
 */
import { closeSync, createReadStream, fstatSync, openSync, readSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { isAbsolute } from 'node:path';
import { chunkBytes, chunkStream, type Chunk, type ChunkOptions } from './chunker.js';
import { SourceShrankError, countRange, type ByteSource } from './ranges.js';
import { checkEdges, tokenizeChunk, type ChunkEdges, type CountSettings, type TokenSink } from './words.js';
import { InputChangedError, InputError, TallyError, TaskRejectedError, fileErrorReason, isSystemError } from '../errors.js';
import { COMPRESSIONS, decompress, peekCompression, type Compression } from './compressed.js';
import { PieceWindowMiss } from './compressed-pieces.js';
import { isUrl, MAX_ETAG_CHARS, urlBytes } from './url-input.js';
import { isObjectUrl } from './object-input.js';
import { isRemote, RemoteWindowMiss } from './remote-ranges.js';
import { MAX_TASK_BYTES } from '../limits.js';

/** One input file as a job stores it: path as typed, size and modification time at the start. */
export interface TextInput {
  path: string;
  /** Null for stdin. */
  size: number | null;
  mtimeMs?: number;
  /** A compressed file (its size is the compressed size): its pieces are read by workers, or it is carried. */
  compression?: Compression;
  /**
   * A URL whose server serves byte ranges (its size then is its length, mtimeMs its
   * Last-Modified or 0): workers may fetch ranges of it (shared/text/url-input.ts).
   */
  byteRanges?: boolean;
  /** A URL's ETag when the job was planned, which every range read must find again. */
  etag?: string;
}

/**
 * Where a compressed file is cut into pieces that workers decompress (compressed-pieces.ts):
 * boundaries [0, …, size] by input index; a compressed input not listed is carried.
 */
export type PieceBoundaries = ReadonlyMap<number, readonly number[]>;

const NO_PIECES: PieceBoundaries = new Map();

/**
 * Inputs whose text only the coordinator can carry to the workers: stdin, compressed files (but
 * see PieceBoundaries), and URLs not served in byte ranges. (Whether the workers of a job read the others is the job's
 * choice: see `split` in shared/kinds/count.ts.)
 */
export function isCarried(input: TextInput): boolean {
  return input.path === '-' || input.compression !== undefined || (isUrl(input.path) && input.byteRanges !== true);
}

/**
 * A nominal byte range of a file for a worker to read:
 * [input index, absolute path, file size, modification time in ms, start, end], and for a URL
 * with an ETag, that ETag (the path is then the URL, the time its Last-Modified or 0); for a
 * piece of a compressed file (compressed-pieces.ts) its compression: start and end are then
 * offsets in the compressed file where members begin, and the worker counts the text they
 * decompress to. Tuples, not objects: a task lists up to a few hundred of them.
 */
export type RangeEntry = [file: number, path: string, size: number, mtimeMs: number, start: number, end: number] | [file: number, path: string, size: number, mtimeMs: number, start: number, end: number, etag: string] | PieceEntry;

/** The range entry of a compressed file's piece. */
export type PieceEntry = [file: number, path: string, size: number, mtimeMs: number, start: number, end: number, piece: PieceOf];

/** What a range entry says of a compressed file's piece (and of a URL's, its ETag when it has one). */
export type PieceOf = { compression: Compression; etag?: string };

/** True for the range of a compressed file's piece. */
export function isPiece(range: RangeEntry): range is PieceEntry {
  return typeof range[6] === 'object';
}

/**
 * A chunk carried in a task's body: [input index, offset in its file, length, edge flags].
 * Flags: 1 continuesWord, 2 endsInsideWord, 4 wordCounted (see chunker.ts).
 */
export type ChunkEntry = [file: number, offset: number, length: number, flags: number];

/** The entries of one task and the bytes it carries (chunks only). */
export type PlannedTask = { ranges: RangeEntry[]; weight: number; input: string } | { chunks: ChunkEntry[]; body: Uint8Array; weight: number; input: string };

/** Most entries one task lists. */
export const MAX_ENTRIES = 512;
/** Characters of paths (and ETags) one task lists, at most (its header must stay well under 64 KiB). */
const MAX_PATH_CHARS = 24 * 1024;
/** Read size for streamed input files: 1 MiB reads cost a third of the CPU of 64 KiB ones. */
const READ_BYTES = 1024 * 1024;

export const CONTINUES_WORD = 1;
export const ENDS_INSIDE_WORD = 2;
export const WORD_COUNTED = 4;

/** The flags of a chunk, as a ChunkEntry stores them. */
export function chunkFlags(chunk: Pick<Chunk, 'continuesWord' | 'endsInsideWord' | 'wordCounted'>): number {
  return (chunk.continuesWord ? CONTINUES_WORD : 0) | (chunk.endsInsideWord ? ENDS_INSIDE_WORD : 0) | (chunk.wordCounted ? WORD_COUNTED : 0);
}

function describe(path: string): string {
  return path === '-' ? 'stdin' : path;
}

/** "a.txt bytes 0-99" for one piece, "a.txt, b.txt, … (3 files, 123 bytes)" for several. */
function describeTask(pieces: Array<{ path: string; start: number; end: number }>, bytes: number): string {
  if (pieces.length === 1) {
    const { path, start, end } = pieces[0]!;
    return `${describe(path)} bytes ${start}-${Math.max(start, end - 1)}`;
  }
  const files = new Set(pieces.map((piece) => piece.path));
  const names = [...files].slice(0, 3).map(describe).join(', ');
  return `${names}${files.size > 3 ? ', …' : ''} (${files.size} files, ${bytes} bytes)`;
}

/**
 * Plans the ranges of the input files, packed into tasks of about `chunkSize` bytes. Reads no
 * file. Inputs that workers cannot read (stdin, compressed files not in `pieces`, URLs not
 * served in byte ranges) are skipped: see {@link planChunks}. A compressed file's ranges are its
 * pieces, of their compressed bytes.
 * @param inputs the job's inputs in order
 * @param locate where a worker finds an input (its absolute path)
 * @param options.only the inputs to plan (default: every one workers can read)
 * @param options.pieces the compressed files that workers decompress, and where they are cut
 * @param options.pieceAlone a task per piece (default: packed like ranges): so that a job that
 *   skips failed tasks loses only the corrupt file's piece, not the files packed with it
 */
export function* planRanges(
  inputs: readonly TextInput[],
  chunkSize: number,
  locate: (path: string) => string,
  { only = () => true, pieces = NO_PIECES, pieceAlone = false }: { only?: (input: TextInput) => boolean; pieces?: PieceBoundaries; pieceAlone?: boolean } = {},
): Generator<PlannedTask> {
  let ranges: RangeEntry[] = [];
  let described: Array<{ path: string; start: number; end: number }> = [];
  let bytes = 0;
  let pathChars = 0;
  const flush = function* (): Generator<PlannedTask> {
    if (ranges.length === 0) return;
    yield { ranges, weight: bytes, input: describeTask(described, bytes) };
    ranges = [];
    described = [];
    bytes = 0;
    pathChars = 0;
  };
  for (let file = 0; file < inputs.length; file++) {
    const { path, size, mtimeMs, etag, compression } = inputs[file]!;
    if ((isCarried(inputs[file]!) && !pieces.has(file)) || size === null || !only(inputs[file]!)) continue;
    const location = locate(path);
    const boundaries = pieces.get(file);
    if (boundaries && compression) {
      for (let k = 1; k < boundaries.length; k++) {
        const [start, end] = [boundaries[k - 1]!, boundaries[k]!];
        if (pieceAlone || ranges.length >= MAX_ENTRIES || pathChars + location.length > MAX_PATH_CHARS || (ranges.length > 0 && bytes + end - start > chunkSize)) yield* flush();
        ranges.push([file, location, size, mtimeMs ?? 0, start, end, { compression, ...(etag !== undefined ? { etag } : {}) }]);
        described.push({ path, start, end });
        bytes += end - start;
        pathChars += location.length;
        if (pieceAlone || bytes >= chunkSize) yield* flush();
      }
      continue;
    }
    // What each of its entries adds to the task's header.
    const chars = location.length + (etag?.length ?? 0);
    let at = 0;
    do {
      if (ranges.length >= MAX_ENTRIES || pathChars + chars > MAX_PATH_CHARS) yield* flush();
      const take = Math.min(size - at, Math.max(1, chunkSize - bytes));
      ranges.push(etag === undefined ? [file, location, size, mtimeMs ?? 0, at, at + take] : [file, location, size, mtimeMs ?? 0, at, at + take, etag]);
      described.push({ path, start: at, end: at + take });
      bytes += take;
      pathChars += chars;
      at += take;
      if (bytes >= chunkSize) yield* flush();
    } while (at < size);
  }
  yield* flush();
}

/**
 * Reads the inputs (all of them, or those `only` chooses: the ones the job's workers do not
 * read) and cuts them into chunks, packed into tasks whose bodies hold at most
 * `chunking.chunkSize` bytes.
 * @throws InputError naming the input that cannot be read
 */
export async function* planChunks(inputs: readonly TextInput[], chunking: ChunkOptions, locate: (path: string) => string, only: (input: TextInput) => boolean = () => true): AsyncGenerator<PlannedTask> {
  let chunks: ChunkEntry[] = [];
  let bodies: Uint8Array[] = [];
  let pieces: Array<{ path: string; start: number; end: number }> = [];
  let bytes = 0;
  const flush = function* (): Generator<PlannedTask> {
    if (chunks.length === 0) return;
    // A chunk of its own is sent as it is: only packed small ones are copied together.
    const body = bodies.length === 1 ? bodies[0]! : Buffer.concat(bodies);
    yield { chunks, body, weight: bytes, input: describeTask(pieces, bytes) };
    chunks = [];
    bodies = [];
    pieces = [];
    bytes = 0;
  };
  for (let file = 0; file < inputs.length; file++) {
    const input = inputs[file]!;
    const { path } = input;
    // Objects are read by the workers themselves, never carried.
    if (!only(input) || isObjectUrl(path)) continue;
    for await (const chunk of readChunks(input, chunking, locate)) {
      if (bytes + chunk.body.length > chunking.chunkSize || chunks.length >= MAX_ENTRIES) yield* flush();
      chunks.push([file, chunk.start, chunk.body.length, chunkFlags(chunk)]);
      bodies.push(chunk.body);
      pieces.push({ path, start: chunk.start, end: chunk.start + chunk.body.length });
      bytes += chunk.body.length;
    }
  }
  yield* flush();
}

/**
 * The chunks of one input: a small file read in one call, a big one or stdin streamed; the text
 * of a compressed one (or of compressed stdin) as it is decompressed.
 */
async function* readChunks(input: TextInput, chunking: ChunkOptions, locate: (path: string) => string): AsyncGenerator<Chunk> {
  const { path, size, compression } = input;
  try {
    if (compression && !isUrl(path)) {
      yield* chunkStream(decompress(asBytes(createReadStream(locate(path), { highWaterMark: READ_BYTES })), compression, path), chunking);
      return;
    }
    if (path === '-' || isUrl(path)) {
      // A stream read once: its first bytes say whether it is compressed.
      const peeked = await peekCompression(path === '-' ? asBytes(process.stdin) : urlBytes(path));
      yield* chunkStream(peeked.compression ? decompress(peeked.stream, peeked.compression, describe(path)) : peeked.stream, chunking);
      return;
    }
    if (size !== null && size <= READ_BYTES) {
      // One open, read and close: a read stream's set-up costs more than reading a small file.
      const handle = await open(locate(path), 'r');
      let bytes: Buffer;
      try {
        bytes = await handle.readFile();
      } finally {
        await handle.close();
      }
      yield* chunkBytes(bytes, chunking);
      return;
    }
    yield* chunkStream(asBytes(createReadStream(locate(path), { highWaterMark: READ_BYTES })), chunking);
  } catch (error) {
    if (error instanceof TallyError) throw error;
    throw new InputError(describe(path), readFailure(error), { cause: error });
  }
}

async function* asBytes(source: AsyncIterable<Uint8Array | string>): AsyncGenerator<Uint8Array> {
  for await (const piece of source) yield typeof piece === 'string' ? Buffer.from(piece) : piece;
}

/** The usual words for a failed read. */
export function readFailure(error: unknown): string {
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  return fileErrorReason(error) ?? `cannot read (${code ?? (error instanceof Error ? error.message : String(error))})`;
}

function isPieceOf(value: unknown, path: unknown): value is PieceOf {
  if (typeof value !== 'object' || value === null) return false;
  const { compression, etag, ...rest } = value as Record<string, unknown>;
  const etagOk = etag === undefined || (typeof etag === 'string' && etag.length <= MAX_ETAG_CHARS && typeof path === 'string' && isUrl(path));
  return Object.keys(rest).length === 0 && COMPRESSIONS.includes(compression as Compression) && etagOk;
}

/** Checks one range entry from the wire; throws TaskRejectedError when it can never be read. */
export function checkRangeEntry(entry: unknown): RangeEntry {
  if (!Array.isArray(entry) || (entry.length !== 6 && entry.length !== 7)) throw new TaskRejectedError('count task: a range must be [file, path, size, mtimeMs, start, end] (and an ETag for a URL, {compression} for a compressed piece)');
  const [file, path, size, mtimeMs, start, end, extra] = entry as unknown[];
  const piece = typeof extra === 'object';
  if (piece && !isPieceOf(extra, path)) throw new TaskRejectedError(`count task: a piece must say its compression, gzip, bzip2 or zstd (and a URL's piece may carry an ETag of at most ${MAX_ETAG_CHARS} characters)`);
  if (!Number.isSafeInteger(file) || (file as number) < 0) throw new TaskRejectedError('count task: file must be a non-negative integer');
  if (typeof path !== 'string' || !(isAbsolute(path) || isRemote(path)) || path.length > 4096 || path.includes('\0')) throw new TaskRejectedError('count task: path must be an absolute file path, obj://BUCKET/NAME or an http(s) URL');
  if (isUrl(path) && !URL.canParse(path)) throw new TaskRejectedError('count task: a URL path must be a valid URL');
  if (entry.length === 7 && !piece && (!isUrl(path) || typeof extra !== 'string' || extra.length > MAX_ETAG_CHARS)) throw new TaskRejectedError(`count task: only a URL's range carries an ETag, as text of at most ${MAX_ETAG_CHARS} characters`);
  if (!Number.isSafeInteger(size) || (size as number) < 0) throw new TaskRejectedError('count task: size must be a non-negative integer');
  if (typeof mtimeMs !== 'number' || !Number.isFinite(mtimeMs)) throw new TaskRejectedError('count task: mtimeMs must be a number');
  if (!Number.isSafeInteger(start) || !Number.isSafeInteger(end) || (start as number) < 0 || (end as number) < (start as number) || (end as number) > (size as number)) {
    throw new TaskRejectedError('count task: a range must lie within its file');
  }
  if ((end as number) - (start as number) > MAX_TASK_BYTES) throw new TaskRejectedError(`count task: a range may span at most ${MAX_TASK_BYTES} bytes`);
  return entry as RangeEntry;
}

/** Checks one chunk entry from the wire; throws TaskRejectedError when it can never be counted. */
export function checkChunkEntry(entry: unknown): ChunkEntry {
  if (!Array.isArray(entry) || entry.length !== 4) throw new TaskRejectedError('count task: a chunk must be [file, offset, length, flags]');
  const [file, offset, length, flags] = entry as unknown[];
  if (!Number.isSafeInteger(file) || (file as number) < 0) throw new TaskRejectedError('count task: file must be a non-negative integer');
  if (!Number.isSafeInteger(offset) || (offset as number) < 0) throw new TaskRejectedError('count task: offset must be a non-negative integer');
  if (!Number.isSafeInteger(length) || (length as number) < 0) throw new TaskRejectedError('count task: length must be a non-negative integer');
  if (!Number.isInteger(flags) || (flags as number) < 0 || (flags as number) > 7) throw new TaskRejectedError('count task: flags must be an integer from 0 to 7');
  return entry as ChunkEntry;
}

/**
 * Opens the file a range names, as the worker's own user, and checks that it is the file the
 * job started with (a regular file, same size and modification time). The caller closes it.
 * @throws TaskRejectedError naming the path: it cannot be read, or it changed
 */
export function openRange(entry: RangeEntry): { source: ByteSource; close(): void } {
  const [, path, size, mtimeMs] = entry;
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (error) {
    throw new TaskRejectedError(`count task: worker cannot read ${path}: ${readFailure(error)}`);
  }
  try {
    const st = fstatSync(fd, { bigint: true });
    if (!st.isFile()) throw new TaskRejectedError(`count task: ${path} is not a regular file`);
    if (Number(st.size) !== size) throw new InputChangedError(path, `it has ${st.size} bytes, not ${size}`);
    if (Number(st.mtimeMs) !== mtimeMs) throw new InputChangedError(path, `modified ${new Date(Number(st.mtimeMs)).toISOString()}`);
  } catch (error) {
    closeSync(fd);
    throw error;
  }
  const source: ByteSource = {
    size,
    read: (target, position, length) => readSync(fd, target, 0, length, position),
  };
  return { source, close: () => closeSync(fd) };
}

/** A remote range, or a compressed piece, reached without its bytes fetched: a caller that forgot withRemoteRanges or withPieces. */
function notFetched(path: string): never {
  throw new TaskRejectedError(`count task: ${path} is read only through withRemoteRanges or withPieces`);
}

/** A range opened for counting: its bytes, and (a compressed piece's) the nominal range within them. */
export interface OpenedRange {
  source: ByteSource;
  close(): void;
  /** Where to count in `source`, when not the entry's own start and end. */
  start?: number;
  end?: number;
}

/** Opens the source of a task's range `index` where it is not a file read directly; the caller closes it. */
export type EntryOpener = (range: RangeEntry, index: number) => OpenedRange | undefined;

/** The first of two openers that opens a range. */
export function eitherOpener(first: EntryOpener | undefined, second: EntryOpener | undefined): EntryOpener | undefined {
  if (!first || !second) return first ?? second;
  return (range, index) => first(range, index) ?? second(range, index);
}

/** What a text task reads: its ranges (files the worker reads) or its chunks (carried). */
export type TaskEntries = { ranges: RangeEntry[]; chunks?: undefined } | { chunks: ChunkEntry[]; ranges?: undefined };

/**
 * Follows a task's entries as they are tokenized, for kinds whose tokens relate across entries
 * (n-grams): `start` before an entry's first token, `end` after its last.
 */
export interface EntryObserver {
  /** @param file the input's index in the job; @param offset where the entry starts in it (nominal for a range) */
  start(file: number, offset: number): void;
  end(): void;
}

/** What a task's entries held. */
export interface EntriesCount {
  bytes: number;
  totalWords: number;
  overlongWords: number;
}

/**
 * Tokenizes every entry of a task, in order, into `sink`: ranges are read from their files
 * (refusing one that changed since the job started), chunks from the task's body.
 * @param carried the task's body (chunks back to back; empty for ranges)
 * @param open where the bytes of a range come from when not from its file (objects and URLs:
 *   see withRemoteRanges in remote-ranges.ts); undefined for a range means its file
 * @throws TaskRejectedError for entries that can never be read; InputChangedError naming the file
 */
export function tokenizeEntries(entries: TaskEntries, carried: Uint8Array, settings: CountSettings, sink: TokenSink, observer?: EntryObserver, open?: EntryOpener): EntriesCount {
  let bytes = 0;
  let totalWords = 0;
  let overlongWords = 0;
  if (entries.ranges) {
    if (carried.length > 0) throw new TaskRejectedError('count task: a task that names files carries no bytes');
    for (const [index, range] of entries.ranges.entries()) {
      const file: OpenedRange = open?.(range, index) ?? (isRemote(range[1]) || isPiece(range) ? notFetched(range[1]) : openRange(range));
      try {
        observer?.start(range[0], range[4]);
        const counted = countRange(file.source, file.start ?? range[4], file.end ?? range[5], settings, sink);
        observer?.end();
        bytes += counted.bytes;
        totalWords += counted.totalWords;
        overlongWords += counted.overlongWords;
      } catch (error) {
        // What the file did (it shrank; a read failed: EIO, a file gone from a network share) is
        // the user's to hear of by name; anything else (a bug, memory running out) is the task's
        // own failure, and is tried again elsewhere like any other.
        if (error instanceof SourceShrankError || isSystemError(error)) throw new InputChangedError(range[1], error.message);
        throw error;
      } finally {
        file.close();
      }
    }
    return { bytes, totalWords, overlongWords };
  }
  const chunks = entries.chunks;
  if (chunks.reduce((sum, chunk) => sum + chunk[2], 0) !== carried.length) throw new TaskRejectedError('count task: the chunks do not add up to the body');
  let at = 0;
  for (const [file, offset, length, flags] of chunks) {
    const body = carried.subarray(at, at + length);
    at += length;
    const edges: ChunkEdges = {
      fileStart: offset === 0,
      continuesWord: (flags & CONTINUES_WORD) !== 0,
      endsInsideWord: (flags & ENDS_INSIDE_WORD) !== 0,
      wordCounted: (flags & WORD_COUNTED) !== 0,
    };
    const problem = checkEdges(body, settings.tokenizer, edges);
    if (problem !== null) throw new TaskRejectedError(`count task: ${problem}`);
    observer?.start(file, offset);
    const counted = tokenizeChunk(body, settings, edges, sink);
    observer?.end();
    bytes += length;
    totalWords += counted.totalWords;
    overlongWords += counted.overlongWords;
  }
  return { bytes, totalWords, overlongWords };
}
