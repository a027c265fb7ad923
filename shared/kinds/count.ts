/**
 * `count`: exact word counts over files. Each task counts some of the input's text (how tasks
 * are made and read: shared/text/file-input.ts; what a word is: shared/text/words.ts) into one
 * table; the coordinator merges the per-task tables.
 *
 * Task spec (JSON): {tokenizer, caseSensitive, maxWordBytes} and either
 *   ranges: [[file, path, size, mtimeMs, start, end], …]  byte ranges the worker reads itself,
 *           deciding their exact edges (shared/text/ranges.ts); no body. The embedded default,
 *           and `--workers-read-files`: the coordinator then reads no text at all. Objects are
 *           always ranges; so are URLs served in byte ranges with `--workers-fetch-urls` (the
 *           embedded default), whose ranges add the URL's ETag when it has one;
 *   chunks: [[file, offset, length, flags], …]  chunks cut by the coordinator, carried back to
 *           back in the task's body (stdin, and workers that share no files with it).
 * Several entries share one task, so that many small files cost what one big file costs.
 *
 * Partial (UTF-8 text):
 *   tally-count 1 <bytes> <totalWords> <overlongWords> <lines>\n
 *   <word>\t<count>\n          × lines, in no particular order
 * Words never contain \t or \n (both are separators for either tokenizer). A word may appear
 * on more than one line of a partial; the reducer sums.
 *
 * A partitioned job's map summary (its words go to the reducers as shares instead):
 *   tally-count 1 <bytes> <totalWords> <overlongWords> <lines> <unlisted> <beyond>\n
 *   <word>\t<count>\n          × lines: the task's most frequent words; no other word of the
 *                              task occurs more than <unlisted> times, and any word at most
 *                              <beyond> times more than listed (shared/text/forming-top.ts)
 */
import { isAbsolute, resolve } from 'node:path';
import { fileReadsAllowed } from './file-reads.js';
import { InputError, OptionError, TaskRejectedError, UsageError } from '../errors.js';
import { chunkBytes, maxChunkBody, WORD_SLACK, type Tokenizer } from '../text/chunker.js';
import {
  MAX_ENTRIES,
  checkChunkEntry,
  checkRangeEntry,
  chunkFlags,
  eitherOpener,
  isCarried,
  planChunks,
  planRanges,
  readFailure,
  tokenizeEntries,
  type ChunkEntry,
  type EntryOpener,
  type PieceBoundaries,
  type PlannedTask,
  type RangeEntry,
  type TaskEntries,
  type TextInput,
} from '../text/file-input.js';
import { COMPRESSIONS, type Compression } from '../text/compressed.js';
import { isUrl } from '../text/url-input.js';
import { isObjectUrl } from '../text/object-input.js';
import { checkUrlFetches, isRemote, withRemoteRanges } from '../text/remote-ranges.js';
import { MAX_PIECE_BYTES, compressedPieces, withPieces } from '../text/compressed-pieces.js';
import { ChunkWords, compareCodePoints, type CountSettings } from '../text/words.js';
import { IDENTITY, WordTable } from '../text/word-table.js';
import { foldLines, foldShare } from '../text/word-lines.js';
import { PartitionTable } from '../text/partition-table.js';
import { FormingTop, LISTED_PER_TASK, PREVIEW_ROWS, type ListedTop, type TablePreview } from '../text/forming-top.js';
import type { JobInputFile, JobKind, JobSummary, MapContext, PartitionedReduce, PartSummary, Plan, SplitContext, Task } from './kind.js';
import type { Json } from '../json.js';
import { MAX_PARTITIONS } from '../subjects.js';
import { MAX_TASK_BYTES, MAX_WORD_BYTES_LIMIT } from '../limits.js';


/** Job options, as stored in the job record. */
export type CountOptions = {
  /**
   * Inputs in order, paths as the user spelled them; path "-" is stdin; size null when unknown
   * (stdin); mtimeMs when the job started (absent in records of older versions); compression
   * for a compressed file (its size is then the compressed size); byteRanges for a URL whose
   * server serves byte ranges (size its length, mtimeMs its Last-Modified or 0, etag its ETag
   * when it has one: see shared/text/url-input.ts).
   */
  inputs: { path: string; size: number | null; mtimeMs?: number; compression?: Compression; byteRanges?: boolean; etag?: string }[];
  /**
   * Paths the user gave that named a file already in `inputs` (each file is counted once);
   * absent when none.
   */
  mergedPaths?: number;
  /**
   * The directory relative paths were given from, so that `tally resume` reads the same files
   * from anywhere (absent in records of older versions: the current directory).
   */
  directory?: string;
  tokenizer: Tokenizer;
  caseSensitive: boolean;
  maxWordBytes: number;
  /** Target bytes per task (clamped to what one message can carry). */
  chunkSize: number;
  /**
   * Tasks name the file and byte range instead of carrying the bytes (stdin is always
   * carried). Only for workers that share this machine's files and allow it (absent: false).
   */
  workersReadFiles?: boolean;
  /**
   * Workers fetch the byte ranges of URLs served in ranges themselves, instead of the
   * coordinator fetching the URL and carrying its text. Only for workers that allow it
   * (embedded ones; `tally worker --fetch-urls`) (absent: false).
   */
  workersFetchUrls?: boolean;
  /**
   * Reduce partitions, folded by reduce tasks on the workers (1 to 256). Absent in records of
   * older versions: the coordinator folds every word.
   */
  reducers?: number;
  /** Words the result keeps in `counts` beyond the first 100 (the rest are read from the parts). */
  summaryTop?: number;
  /**
   * Present when the job skips failed tasks (`--skip-failed`; coordinator/skipped-tasks.ts owns
   * it): each compressed piece then gets a task of its own, so that a corrupt file costs only itself.
   */
  skipFailed?: Json;
};

/** Words a result keeps in its `counts` unless the job asks for more. */
export const SUMMARY_TOP = 100;

/** Words a job's result keeps in `counts` (and each reduce partition's summary carries). */
export function summaryTop(options: Pick<CountOptions, 'summaryTop'>): number {
  return Math.max(SUMMARY_TOP, options.summaryTop ?? 0);
}

/**
 * The printed result: every counted word, by count descending then code point order. With
 * `parts` (jobs whose reduce ran on the workers), `counts` holds only the first words and the
 * rest are in the sorted parts, which `tally result` merges.
 */
export type CountResult = {
  job: string;
  /** 'ngrams' for an n-gram count (shared/kinds/ngrams.ts), whose rows are n-grams. */
  kind: 'count' | 'ngrams';
  /** ngrams: words per row. */
  n?: number;
  files: number;
  /** See CountOptions.mergedPaths; absent when none. */
  mergedPaths?: number;
  bytes: number;
  tasks: number;
  totalWords: number;
  uniqueWords: number;
  overlongWords: number;
  counts: [string, number][];
  /** The sorted parts of the table (results bucket), one per reduce partition. */
  parts?: string[];
};

/** Coordinator-side accumulator. */
export interface CountAcc {
  /** Every distinct word seen so far, keyed by its (already folded) UTF-8 bytes. */
  words: WordTable;
  bytes: number;
  totalWords: number;
  overlongWords: number;
  /** A partitioned job's: the words its map tasks listed as their most frequent (the live view's). */
  forming: FormingTop;
}

/** Spec of one task on the wire: how to count, and what (ranges to read, or chunks carried). */
export type CountSpec = {
  tokenizer: Tokenizer;
  caseSensitive: boolean;
  maxWordBytes: number;
  ranges?: RangeEntry[];
  chunks?: ChunkEntry[];
};

const SPEC_KEYS = new Set(['tokenizer', 'caseSensitive', 'maxWordBytes', 'ranges', 'chunks']);
const HEADER = 'tally-count 1';

const encoder = new TextEncoder();
// ignoreBOM: a listing starting with a word that starts with U+FEFF (a BOM inside a file, part of
// a whitespace token) keeps it; a default decoder drops it.
const decoder = new TextDecoder('utf-8', { ignoreBOM: true });

/** Checks a count job's options (those of any job over text files); OptionErrors name the field. */
export function checkOptions(options: CountOptions): void {
  if (typeof options !== 'object' || options === null) throw new UsageError('count: options must be an object');
  if (!Array.isArray(options.inputs)) throw new UsageError('count: inputs must be a list');
  for (const input of options.inputs) {
    if (typeof input?.path !== 'string' || input.path === '') throw new UsageError('count: every input needs a path');
    if (input.size !== null && !(Number.isSafeInteger(input.size) && input.size >= 0)) throw new UsageError(`count: bad size for ${input.path}`);
    if (input.mtimeMs !== undefined && !Number.isFinite(input.mtimeMs)) throw new UsageError(`count: bad modification time for ${input.path}`);
    if (input.compression !== undefined && !COMPRESSIONS.includes(input.compression)) throw new UsageError(`count: unknown compression for ${input.path}`);
    if (input.byteRanges !== undefined && (input.byteRanges !== true || !isUrl(input.path) || input.size === null)) {
      throw new UsageError(`count: byteRanges only for a URL of known size, not ${input.path}`);
    }
    if (input.etag !== undefined && (typeof input.etag !== 'string' || input.byteRanges !== true)) throw new UsageError(`count: an ETag only for a URL served in byte ranges, not ${input.path}`);
  }
  if (options.mergedPaths !== undefined && !(Number.isSafeInteger(options.mergedPaths) && options.mergedPaths >= 0)) throw new UsageError('count: mergedPaths must be a non-negative integer');
  if (options.directory !== undefined && (typeof options.directory !== 'string' || !isAbsolute(options.directory))) throw new UsageError('count: directory must be an absolute path');
  if (options.tokenizer !== 'unicode' && options.tokenizer !== 'whitespace') throw new OptionError('tokenizer', `must be unicode or whitespace, got ${String(options.tokenizer)}`);
  if (typeof options.caseSensitive !== 'boolean') throw new UsageError('count: caseSensitive must be a boolean');
  if (!Number.isSafeInteger(options.maxWordBytes) || options.maxWordBytes < 1 || options.maxWordBytes > MAX_WORD_BYTES_LIMIT) {
    throw new OptionError('maxWordBytes', `must be an integer from 1 to ${MAX_WORD_BYTES_LIMIT}, got ${options.maxWordBytes}`);
  }
  if (!Number.isSafeInteger(options.chunkSize) || options.chunkSize < 1) throw new OptionError('chunkSize', `must be a positive integer, got ${options.chunkSize}`);
  if (options.workersReadFiles !== undefined && typeof options.workersReadFiles !== 'boolean') throw new UsageError('count: workersReadFiles must be a boolean');
  if (options.workersFetchUrls !== undefined && typeof options.workersFetchUrls !== 'boolean') throw new UsageError('count: workersFetchUrls must be a boolean');
  if (options.reducers !== undefined && !(Number.isSafeInteger(options.reducers) && options.reducers >= 1 && options.reducers <= MAX_PARTITIONS)) {
    throw new OptionError('reducers', `must be an integer from 1 to ${MAX_PARTITIONS}, got ${options.reducers}`);
  }
  if (options.summaryTop !== undefined && !(Number.isSafeInteger(options.summaryTop) && options.summaryTop >= 0)) throw new UsageError('count: summaryTop must be a non-negative integer');
}

/** Chunk size and limits for a split, clamped so no body exceeds maxBodyBytes. */
function chunkOptions(options: CountOptions, maxBodyBytes: number): { tokenizer: Tokenizer; chunkSize: number; maxWordBytes: number } {
  // A word that might be kept must fit in one body, with the chunker's slack.
  if (options.maxWordBytes + WORD_SLACK > maxBodyBytes) {
    throw new OptionError('maxWordBytes', `${options.maxWordBytes} is more than one task can carry (at most ${maxBodyBytes - WORD_SLACK} here)`);
  }
  return { tokenizer: options.tokenizer, chunkSize: Math.min(options.chunkSize, maxBodyBytes), maxWordBytes: options.maxWordBytes };
}

/** Where an input is read from: its path resolved from the job's directory ("-" stays stdin, a URL a URL). */
export function inputLocation(options: Pick<CountOptions, 'directory'>, path: string): string {
  return path === '-' || isUrl(path) || isObjectUrl(path) ? path : resolve(options.directory ?? '.', path);
}

/** "a.txt b.txt c.txt", or "a.txt b.txt c.txt … (12000 files)": a job's inputs in one line. */
export function describeInputs(options: Pick<CountOptions, 'inputs'>): string {
  const paths = options.inputs.map((input) => input.path);
  return paths.length <= 3 ? paths.join(' ') : `${paths.slice(0, 3).join(' ')} … (${paths.length} files)`;
}

/** The files a job over `options.inputs` reads, where it reads them. */
export function inputFiles(options: Pick<CountOptions, 'inputs' | 'directory'>): JobInputFile[] {
  return options.inputs.map((input) => ({ ...input, location: inputLocation(options, input.path) }));
}

/**
 * Where the compressed inputs are cut into pieces for workers to decompress (compressed-pieces.ts):
 * files when the workers read files, URLs served in byte ranges (whole, up to one task's bytes)
 * when they fetch URLs, objects always; the others are carried.
 * @throws InputError naming a compressed object too big for one piece (objects are never carried)
 */
async function piecesOf(options: CountOptions, locate: (path: string) => string, target: number): Promise<PieceBoundaries> {
  const pieces = new Map<number, number[]>();
  for (const [index, input] of options.inputs.entries()) {
    const { path, size, compression } = input;
    if (!compression || size === null) continue;
    if (isUrl(path)) {
      // Served in byte ranges, and small enough for one task: a worker fetches it whole.
      if (input.byteRanges === true && options.workersFetchUrls === true && size <= MAX_PIECE_BYTES) pieces.set(index, [0, size]);
      continue;
    }
    if (isObjectUrl(path)) {
      // Its members are not looked for: that would read the whole object here.
      if (size > MAX_PIECE_BYTES) throw new InputError(path, `${compression}-compressed and ${size} bytes: compressed objects of up to ${MAX_PIECE_BYTES} bytes are counted (each by one worker); upload it decompressed, or in parts`);
      pieces.set(index, [0, size]);
      continue;
    }
    if (options.workersReadFiles !== true) continue;
    const boundaries = await compressedPieces(locate(path), size, compression, target).catch((error: unknown) => {
      throw new InputError(path, readFailure(error), { cause: error });
    });
    if (boundaries) pieces.set(index, boundaries);
  }
  return pieces;
}

/**
 * True when the workers of a job read `input` themselves (its tasks name ranges of it): objects
 * always (object-input.ts); URLs served in byte ranges when the job lets workers fetch URLs;
 * other files when it lets them read files. Never stdin, compressed files or other URLs.
 */
export function workersRead(options: Pick<CountOptions, 'workersReadFiles' | 'workersFetchUrls'>, input: TextInput): boolean {
  if (isObjectUrl(input.path)) return true;
  if (isCarried(input)) return false;
  return isUrl(input.path) ? options.workersFetchUrls === true : options.workersReadFiles === true;
}

/** The task of a planned set of ranges or chunks. */
function taskOf(options: CountOptions, planned: PlannedTask): Task {
  const how = { tokenizer: options.tokenizer, caseSensitive: options.caseSensitive, maxWordBytes: options.maxWordBytes };
  if ('ranges' in planned) return { spec: { ...how, ranges: planned.ranges }, input: planned.input, weight: planned.weight };
  return { spec: { ...how, chunks: planned.chunks }, body: planned.body, input: planned.input, weight: planned.weight };
}

/**
 * A count task's spec from the wire, checked; `extraKeys` are fields another text kind adds
 * (and checks itself).
 */
export function parseSpec(spec: unknown, extraKeys: readonly string[] = []): CountSpec {
  if (typeof spec !== 'object' || spec === null || Array.isArray(spec)) throw new TaskRejectedError('count task: spec must be an object');
  const s = spec as Record<string, unknown>;
  for (const key of Object.keys(s)) if (!SPEC_KEYS.has(key) && !extraKeys.includes(key)) throw new TaskRejectedError(`count task: unknown spec field ${JSON.stringify(key.slice(0, 64))}`);
  const { tokenizer, caseSensitive, maxWordBytes, ranges, chunks } = s;
  if (tokenizer !== 'unicode' && tokenizer !== 'whitespace') throw new TaskRejectedError(`count task: unknown tokenizer ${JSON.stringify(tokenizer)}`);
  if (typeof caseSensitive !== 'boolean') throw new TaskRejectedError('count task: caseSensitive must be a boolean');
  if (!Number.isSafeInteger(maxWordBytes) || (maxWordBytes as number) < 1 || (maxWordBytes as number) > MAX_WORD_BYTES_LIMIT) {
    throw new TaskRejectedError(`count task: maxWordBytes must be an integer from 1 to ${MAX_WORD_BYTES_LIMIT}`);
  }
  if ((ranges === undefined) === (chunks === undefined)) throw new TaskRejectedError('count task: a task lists either ranges or chunks');
  const entries = ranges ?? chunks;
  if (!Array.isArray(entries) || entries.length === 0 || entries.length > MAX_ENTRIES) throw new TaskRejectedError(`count task: a task lists 1 to ${MAX_ENTRIES} entries`);
  entries.forEach(ranges !== undefined ? checkRangeEntry : checkChunkEntry);
  return s as CountSpec;
}

/** What one task counted: totals, and its words in a table. */
interface TaskCount {
  bytes: number;
  totalWords: number;
  overlongWords: number;
  words: ChunkWords;
}

/** Counts a task (its ranges, objects included, or its chunks) and encodes the partial. */
function mapTask(spec: unknown, carried: Uint8Array): Uint8Array | Promise<Uint8Array> {
  const counted = countTaskReading(spec, carried);
  return counted instanceof Promise ? counted.then(encodePartial) : encodePartial(counted);
}

/** A task's partial: its totals and every word it counted. */
function encodePartial({ bytes, totalWords, overlongWords, words }: TaskCount): Uint8Array {
  const { bytes: lines, lines: lineCount } = words.encodeLines();
  const header = encoder.encode(`${HEADER} ${bytes} ${totalWords} ${overlongWords} ${lineCount}\n`);
  const out = new Uint8Array(header.length + lines.length);
  out.set(header, 0);
  out.set(lines, header.length);
  return out;
}

/** Counts a task of a partitioned job: its totals for the coordinator, its words as one share per partition. */
function mapShares(spec: unknown, carried: Uint8Array, partitions: number): { summary: Uint8Array; shares: Uint8Array[] } | Promise<{ summary: Uint8Array; shares: Uint8Array[] }> {
  const counted = countTaskReading(spec, carried);
  return counted instanceof Promise ? counted.then((done) => encodeShares(done, partitions)) : encodeShares(counted, partitions);
}

/** A partitioned task's summary for the coordinator, and its words as one share per partition. */
function encodeShares({ bytes, totalWords, overlongWords, words }: TaskCount, partitions: number): { summary: Uint8Array; shares: Uint8Array[] } {
  const { shares, top } = words.encodeSharesListing(partitions, LISTED_PER_TASK);
  return { summary: encoder.encode(`${HEADER} ${bytes} ${totalWords} ${overlongWords} ${top.rows.length} ${top.unlisted} ${top.beyond ?? 0}\n${listingLines(top)}`), shares };
}

/** Counts a task, fetching first the bytes of the objects and URLs it names (remote-ranges.ts). */
function countTaskReading(spec: unknown, carried: Uint8Array): TaskCount | Promise<TaskCount> {
  const s = parseSpec(spec);
  const settings: CountSettings = { tokenizer: s.tokenizer, caseSensitive: s.caseSensitive, maxWordBytes: s.maxWordBytes };
  checkReadable(s);
  // A fresh table each time: a run that had to fetch more of an object or a piece starts again.
  return withFetchedRanges(s, (open) => {
    const words = new ChunkWords(s.caseSensitive, s.ranges ? s.ranges.reduce((sum, range) => sum + range[5] - range[4], 0) : carried.length);
    return { ...tokenizeEntries(s as TaskEntries, carried, settings, words, undefined, open), words };
  });
}

/**
 * Runs `count` over a task's entries with the bytes that are not read from a file directly
 * fetched first: objects' and URLs' (remote-ranges.ts) and compressed pieces' text (compressed-pieces.ts).
 * `count` may run more than once (when a window fell short) and must start afresh each time.
 * @returns synchronously for a task of plain files or carried chunks
 */
export function withFetchedRanges<T>(spec: Pick<CountSpec, 'ranges' | 'maxWordBytes'>, count: (open: EntryOpener | undefined) => T): T | Promise<T> {
  return withPieces(spec.ranges, spec.maxWordBytes, (openPiece) => withRemoteRanges(spec.ranges, spec.maxWordBytes, (openRemote) => count(eitherOpener(openPiece, openRemote))));
}

/** Counts a task that carries its text (no ranges): synchronously, for {@link countBytes}. */
function countCarried(spec: unknown, carried: Uint8Array): TaskCount {
  const s = parseSpec(spec);
  if (s.ranges) throw new TaskRejectedError('count task: expected chunks');
  const words = new ChunkWords(s.caseSensitive, carried.length);
  return { ...tokenizeEntries(s as TaskEntries, carried, { tokenizer: s.tokenizer, caseSensitive: s.caseSensitive, maxWordBytes: s.maxWordBytes }, words), words };
}

/**
 * A task that names files runs only on a worker that reads files (`--read-files`); objects
 * (obj://) are read through the worker's NATS connection and need no such flag; URLs need
 * `--fetch-urls`. Checked before anything is read, compressed pieces included.
 */
export function checkReadable(spec: { ranges?: RangeEntry[] }): void {
  const file = spec.ranges?.find((range) => !isRemote(range[1]));
  if (file && !fileReadsAllowed()) {
    throw new TaskRejectedError(`count task: this worker does not read files (${file[1]}); start it with --read-files, or submit without --workers-read-files`);
  }
  checkUrlFetches(spec.ranges);
}

/**
 * The spec and body of a task that carries one chunk, as the coordinator would send it (for
 * benchmarks that feed the map function directly).
 */
export function chunkTask(chunk: { start: number; body: Uint8Array; continuesWord: boolean; endsInsideWord: boolean; wordCounted: boolean }, settings: CountSettings): { spec: Json; body: Uint8Array } {
  return { spec: { ...settings, chunks: [[0, chunk.start, chunk.body.length, chunkFlags(chunk)]] }, body: chunk.body };
}

function initAcc(): CountAcc {
  return { words: new WordTable(IDENTITY), bytes: 0, totalWords: 0, overlongWords: 0, forming: new FormingTop() };
}

/** A task's listed words as partial lines (`word\tcount\n`). */
export function listingLines(top: ListedTop): string {
  return top.rows.map(([word, count]) => `${word}\t${count}\n`).join('');
}

/** Reads the `lines` listed words after a summary's header; a malformed listing throws. */
function readListing(partial: Uint8Array, from: number, lines: number, unlisted: number, beyond: number, malformed: (why: string) => Error): ListedTop {
  const text = decoder.decode(partial.subarray(from));
  const rows: [string, number][] = [];
  for (const line of text.split('\n').slice(0, lines)) {
    const tab = line.lastIndexOf('\t');
    const count = tab > 0 ? nonNegativeInteger(line.slice(tab + 1)) : -1;
    if (count < 1) throw malformed('bad listed word');
    rows.push([line.slice(0, tab), count]);
  }
  if (rows.length !== lines) throw malformed('listing cut short');
  return { rows, unlisted, beyond };
}

/** What a count job has folded so far, for the live view: see {@link TablePreview}. */
export function tablePreview(acc: { words: WordTable; forming: FormingTop }, rows: number): TablePreview {
  // A job that reduces on the coordinator holds every count folded so far.
  if (acc.forming.tasks === 0) {
    const exact = acc.words.topEntries(rows + 1);
    return { rows: exact.slice(0, rows).map(([word, count]) => [word, count, count]), unlistedAtMost: exact[rows]?.[1] ?? 0, exact: true };
  }
  return { ...acc.forming.preview(rows), exact: false };
}

function nonNegativeInteger(text: string): number {
  return /^\d{1,15}$/.test(text) ? Number(text) : -1;
}

/** Folds one partial into the accumulator; a malformed partial throws and changes nothing. */
function reducePartial(acc: CountAcc, partial: Uint8Array, task: number): CountAcc {
  const malformed = (why: string) => new Error(`count task ${task}: malformed partial result (${why})`);
  const { bytes, total, overlong, lines, body, listing } = readHeader(partial, malformed);
  // A summary lists the task's most frequent words; a partial holds all of them.
  if (listing) acc.forming.fold(readListing(partial, body, lines, listing.unlisted, listing.beyond, malformed));
  else foldLines(partial, body, lines, acc.words, malformed);
  acc.bytes += bytes;
  acc.totalWords += total;
  acc.overlongWords += overlong;
  return acc;
}

/** The header fields of a partial, and where its lines start. */
function readHeader(partial: Uint8Array, malformed: (why: string) => Error): { bytes: number; total: number; overlong: number; lines: number; body: number; listing?: { unlisted: number; beyond: number } } {
  const headerEnd = partial.indexOf(0x0a);
  if (headerEnd < 0) throw malformed('no header');
  const fields = decoder.decode(partial.subarray(0, headerEnd)).split(' ');
  if ((fields.length !== 6 && fields.length !== 8) || `${fields[0]} ${fields[1]}` !== HEADER) throw malformed('bad header');
  const [bytes, total, overlong, lines, unlisted, beyond] = fields.slice(2).map(nonNegativeInteger);
  if (bytes < 0 || total < 0 || overlong < 0 || lines < 0 || (unlisted !== undefined && (unlisted < 0 || beyond! < 0))) throw malformed('bad header');
  return { bytes, total, overlong, lines, body: headerEnd + 1, ...(unlisted !== undefined ? { listing: { unlisted, beyond: beyond! } } : {}) };
}

function finalizeAcc(acc: CountAcc, job: string, tasks: number, files: number, mergedPaths = 0): CountResult {
  const counts = acc.words.entries();
  counts.sort((a, b) => b[1] - a[1] || compareCodePoints(a[0], b[0]));
  return {
    job,
    kind: 'count',
    files,
    ...(mergedPaths > 0 ? { mergedPaths } : {}),
    bytes: acc.bytes,
    tasks,
    totalWords: acc.totalWords,
    uniqueWords: counts.length,
    overlongWords: acc.overlongWords,
    counts,
  };
}

/** A reducer's summary of its part: how many words, and the first ones. */
type PartInfo = { words: number; top: [string, number][] };

/** Reduce task spec: how many of the part's first words its summary carries. */
function reduceTop(spec: unknown): number {
  const top = (spec as { top?: unknown } | null)?.top;
  if (typeof spec !== 'object' || spec === null || Object.keys(spec).some((key) => key !== 'top') || !Number.isSafeInteger(top) || (top as number) < 0) {
    throw new TaskRejectedError('count reduce task: spec must be {top}');
  }
  return top as number;
}

/** The distinct words of all parts together, and the first `top` of them, from the parts' summaries. */
export function firstRows(parts: PartSummary[], top: number): { unique: number; counts: [string, number][] } {
  let unique = 0;
  const firsts: [string, number][] = [];
  for (const { summary: info } of parts) {
    const part = info as PartInfo;
    unique += part.words;
    for (const row of part.top) firsts.push(row);
  }
  // Partitions are disjoint: the first K words overall are among the first K of each part.
  firsts.sort((a, b) => b[1] - a[1] || compareCodePoints(a[0], b[0]));
  return { unique, counts: firsts.slice(0, top) };
}

/** The partitioned reduce of count: see PartitionedReduce in kind.ts. */
const countPartitioned: PartitionedReduce<CountOptions, CountAcc, CountResult, PartitionTable> = {
  partitions(options: CountOptions): number {
    return options.reducers ?? 0;
  },

  map(spec: unknown, body: Uint8Array, _context: MapContext, partitions: number): { summary: Uint8Array; shares: Uint8Array[] } | Promise<{ summary: Uint8Array; shares: Uint8Array[] }> {
    return mapShares(spec, body, partitions);
  },

  reduceSpec(options: CountOptions): Json {
    return { top: summaryTop(options) };
  },

  initPartition(spec: unknown): PartitionTable {
    reduceTop(spec);
    return new PartitionTable();
  },

  foldPartition(acc: PartitionTable, share: Uint8Array, task: number): PartitionTable {
    foldShare(share, acc, (why) => new Error(`count task ${task}: malformed share of a partial result (${why})`));
    return acc;
  },

  keysIn(acc: PartitionTable): number {
    return acc.size;
  },

  finishPartition(acc: PartitionTable, spec: unknown): { part: Iterable<Uint8Array>; summary: Json } {
    const sorted = acc.sortedPart({ top: reduceTop(spec) });
    const summary: PartInfo = { words: sorted.words, top: sorted.top };
    return { part: sorted.pieces(), summary };
  },

  finalize(acc: CountAcc, parts: PartSummary[], summary: JobSummary, options: CountOptions): CountResult {
    const { unique, counts } = firstRows(parts, summaryTop(options));
    const files = options.inputs.length;
    const mergedPaths = options.mergedPaths ?? 0;
    return {
      job: summary.job,
      kind: 'count',
      files,
      ...(mergedPaths > 0 ? { mergedPaths } : {}),
      bytes: acc.bytes,
      tasks: summary.tasks,
      totalWords: acc.totalWords,
      uniqueWords: unique,
      overlongWords: acc.overlongWords,
      counts,
      parts: parts.map((part) => part.name),
    };
  },
};

/**
 * The count job kind. See the module comment for the spec and partial formats, chunker.ts for
 * where chunks are cut and words.ts for what a word is.
 */
export const countKind: JobKind<CountOptions, CountAcc, CountResult> = {
  name: 'count',

  describe: describeInputs,

  files: inputFiles,

  plan(options: CountOptions): Plan {
    checkOptions(options);
    // A compressed file's text has a size nobody knows before it is read.
    const sizes = options.inputs.map((input) => (input.compression ? null : input.size));
    const known = sizes.every((size): size is number => size !== null);
    return known ? { totalWeight: sizes.reduce((a, b) => a + b, 0), unit: 'B' } : { unit: 'B' };
  },

  async *split(options: CountOptions, context: SplitContext): AsyncIterable<Task> {
    checkOptions(options);
    const chunking = chunkOptions(options, context.maxBodyBytes);
    const locate = (path: string) => inputLocation(options, path);
    const target = Math.min(options.chunkSize, MAX_TASK_BYTES);
    // Compressed files are cut where members start, and decompressed by the workers, when they
    // read the files; compressed objects always are.
    const pieces = await piecesOf(options, locate, target);
    const inPieces = new Set([...pieces.keys()].map((index) => options.inputs[index]));
    const byWorkers = (input: TextInput) => inPieces.has(input) || workersRead(options, input);
    // What the workers read, the coordinator plans as ranges from sizes and reads no text of;
    // the rest it reads and carries in chunks.
    const pieceAlone = options.skipFailed !== undefined;
    for (const planned of planRanges(options.inputs, target, locate, { only: byWorkers, pieces, pieceAlone })) yield taskOf(options, planned);
    for await (const planned of planChunks(options.inputs, chunking, locate, (input) => !byWorkers(input))) yield taskOf(options, planned);
  },

  map(spec: unknown, body: Uint8Array, _context: MapContext): Uint8Array | Promise<Uint8Array> {
    return mapTask(spec, body);
  },

  init(): CountAcc {
    return initAcc();
  },

  reduce(acc: CountAcc, partial: Uint8Array, task: number): CountAcc {
    return reducePartial(acc, partial, task);
  },

  preview(acc: CountAcc): Json {
    return tablePreview(acc, PREVIEW_ROWS) as unknown as Json;
  },

  finalize(acc: CountAcc, summary: JobSummary, options: CountOptions): CountResult {
    return finalizeAcc(acc, summary.job, summary.tasks, options.inputs.length, options.mergedPaths);
  },

  partitioned: countPartitioned,
};

/** Settings for {@link countBytes}. */
export interface CountBytesOptions extends CountSettings {
  /** Target chunk size; default 1 MiB. */
  chunkSize?: number;
  /** Largest body a chunk may have; default unlimited. */
  maxBodyBytes?: number;
}

/**
 * Counts a whole in-memory text through exactly the job's path (chunk → map → reduce →
 * finalize), in this process. For benchmarks and tests.
 * @param bytes the text, as one file
 * @param options tokenizer, case folding, overlong limit and chunking
 * @returns the result a one-file job would print (job "local")
 */
export function countBytes(bytes: Uint8Array, options: CountBytesOptions): CountResult {
  const jobOptions: CountOptions = {
    inputs: [{ path: '-', size: bytes.length }],
    tokenizer: options.tokenizer,
    caseSensitive: options.caseSensitive,
    maxWordBytes: options.maxWordBytes,
    chunkSize: options.chunkSize ?? 1024 * 1024,
  };
  checkOptions(jobOptions);
  const chunking = chunkOptions(jobOptions, options.maxBodyBytes ?? Math.max(jobOptions.chunkSize, maxChunkBody(jobOptions)));
  const acc = initAcc();
  let tasks = 0;
  for (const chunk of chunkBytes(bytes, chunking)) {
    const task = chunkTask(chunk, { tokenizer: options.tokenizer, caseSensitive: options.caseSensitive, maxWordBytes: options.maxWordBytes });
    reducePartial(acc, encodePartial(countCarried(task.spec, task.body)), tasks);
    tasks++;
  }
  return finalizeAcc(acc, 'local', tasks, 1);
}
