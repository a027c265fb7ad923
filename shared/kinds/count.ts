/**
 * `count`: exact word counts over files. The coordinator streams each file and cuts it into
 * chunks at boundaries no word spans (shared/text/chunker.ts); each worker counts its chunk
 * (shared/text/words.ts); the coordinator merges the per-chunk tables.
 *
 * Task spec (JSON): {file, offset, tokenizer, caseSensitive, maxWordBytes, continuesWord,
 * endsInsideWord, wordCounted}: the chunk's file index and byte offset, how to count, and the
 * chunk's edge flags. A chunk is counted from its bytes and this spec alone.
 *
 * The bytes travel in the task's body, unless the job says its workers read the files
 * (`workersReadFiles`: the embedded default, where the workers are the coordinator's own
 * children on its machine). Then the spec also carries {path, length, crc32} and no body: the
 * worker reads bytes [offset, offset + length) of the absolute path itself and checks their
 * CRC-32 against the one the coordinator computed while cutting the chunk, so a file that
 * changes during the job fails the job instead of being counted wrong. That saves moving
 * every byte through the NATS server twice (see docs/BENCHMARKS.md).
 *
 * Partial (UTF-8 text):
 *   tally-count 1 <bytes> <totalWords> <overlongWords> <lines>\n
 *   <word>\t<count>\n          × lines, in no particular order
 * Words never contain \t or \n (both are separators for either tokenizer). A word may appear
 * on more than one line of a partial; the reducer sums.
 */
import { isUtf8 } from 'node:buffer';
import { closeSync, createReadStream, fstatSync, openSync, readSync } from 'node:fs';
import { isAbsolute, resolve } from 'node:path';
import { crc32 } from 'node:zlib';
import { fileReadsAllowed } from './file-reads.js';
import { fileErrorReason, InputError, TaskRejectedError, UsageError } from '../errors.js';
import { chunkBytes, chunkStream, maxChunkBody, WORD_SLACK, type Chunk, type Tokenizer } from '../text/chunker.js';
import { checkEdges, compareCodePoints, countChunk, type ChunkEdges, type CountSettings } from '../text/words.js';
import { ASCII_FLAG, FNV_OFFSET, FNV_PRIME, IDENTITY, WordTable } from '../text/word-table.js';
import type { JobKind, JobSummary, MapContext, Plan, SplitContext, Task } from './kind.js';

/** Largest accepted maxWordBytes (1 MiB). */
export const MAX_WORD_BYTES_LIMIT = 1024 * 1024;

/** Job options, as stored in the job record. */
export type CountOptions = {
  /**
   * Inputs in order, paths as the user spelled them; path "-" is stdin; size null when unknown
   * (stdin); mtimeMs when the job started (absent in records of older versions).
   */
  inputs: { path: string; size: number | null; mtimeMs?: number }[];
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
};

/** The printed result: every counted word, by count descending then code point order. */
export type CountResult = {
  job: string;
  kind: 'count';
  files: number;
  /** See CountOptions.mergedPaths; absent when none. */
  mergedPaths?: number;
  bytes: number;
  tasks: number;
  totalWords: number;
  uniqueWords: number;
  overlongWords: number;
  counts: [string, number][];
};

/** Coordinator-side accumulator. */
export interface CountAcc {
  /** Every distinct word seen so far, keyed by its (already folded) UTF-8 bytes. */
  words: WordTable;
  bytes: number;
  totalWords: number;
  overlongWords: number;
}

/** Spec of one task on the wire. */
type CountSpec = {
  file: number;
  offset: number;
  tokenizer: Tokenizer;
  caseSensitive: boolean;
  maxWordBytes: number;
  continuesWord: boolean;
  endsInsideWord: boolean;
  wordCounted: boolean;
  /** With workersReadFiles: where the worker reads the chunk, how long it is, its CRC-32. */
  path?: string;
  length?: number;
  crc32?: number;
};

const SPEC_KEYS = new Set(['file', 'offset', 'tokenizer', 'caseSensitive', 'maxWordBytes', 'continuesWord', 'endsInsideWord', 'wordCounted', 'path', 'length', 'crc32']);
/** Longest chunk a worker reads from a file for one task (the CLI allows 16 MiB chunks). */
const MAX_READ_BYTES = 16 * 1024 * 1024;
const HEADER = 'tally-count 1';
/** Read size for input files: memory stays bounded whatever the file size, and 1 MiB reads cost
 * a third of the CPU of 64 KiB ones (measured: 150 vs 380 ms per 200 MB). */
const READ_BYTES = 1024 * 1024;

const encoder = new TextEncoder();
const decoder = new TextDecoder('utf-8');

function checkOptions(options: CountOptions): void {
  if (typeof options !== 'object' || options === null) throw new UsageError('count: options must be an object');
  if (!Array.isArray(options.inputs)) throw new UsageError('count: inputs must be a list');
  for (const input of options.inputs) {
    if (typeof input?.path !== 'string' || input.path === '') throw new UsageError('count: every input needs a path');
    if (input.size !== null && !(Number.isSafeInteger(input.size) && input.size >= 0)) throw new UsageError(`count: bad size for ${input.path}`);
    if (input.mtimeMs !== undefined && !Number.isFinite(input.mtimeMs)) throw new UsageError(`count: bad modification time for ${input.path}`);
  }
  if (options.mergedPaths !== undefined && !(Number.isSafeInteger(options.mergedPaths) && options.mergedPaths >= 0)) throw new UsageError('count: mergedPaths must be a non-negative integer');
  if (options.directory !== undefined && (typeof options.directory !== 'string' || !isAbsolute(options.directory))) throw new UsageError('count: directory must be an absolute path');
  if (options.tokenizer !== 'unicode' && options.tokenizer !== 'whitespace') throw new UsageError(`--tokenizer: must be unicode or whitespace, got ${String(options.tokenizer)}`);
  if (typeof options.caseSensitive !== 'boolean') throw new UsageError('count: caseSensitive must be a boolean');
  if (!Number.isSafeInteger(options.maxWordBytes) || options.maxWordBytes < 1 || options.maxWordBytes > MAX_WORD_BYTES_LIMIT) {
    throw new UsageError(`--max-word-bytes: must be an integer from 1 to ${MAX_WORD_BYTES_LIMIT}, got ${options.maxWordBytes}`);
  }
  if (!Number.isSafeInteger(options.chunkSize) || options.chunkSize < 1) throw new UsageError(`--chunk-size: must be a positive integer, got ${options.chunkSize}`);
  if (options.workersReadFiles !== undefined && typeof options.workersReadFiles !== 'boolean') throw new UsageError('count: workersReadFiles must be a boolean');
}

/** Chunk size and limits for a split, clamped so no body exceeds maxBodyBytes. */
function chunkOptions(options: CountOptions, maxBodyBytes: number): { tokenizer: Tokenizer; chunkSize: number; maxWordBytes: number } {
  // A word that might be kept must fit in one body, with the chunker's slack.
  if (options.maxWordBytes + WORD_SLACK > maxBodyBytes) {
    throw new UsageError(`--max-word-bytes: ${options.maxWordBytes} is more than one task can carry (at most ${maxBodyBytes - WORD_SLACK} here)`);
  }
  return { tokenizer: options.tokenizer, chunkSize: Math.min(options.chunkSize, maxBodyBytes), maxWordBytes: options.maxWordBytes };
}

function describeInput(path: string): string {
  return path === '-' ? 'stdin' : path;
}

function specOf(options: CountOptions, file: number, chunk: Chunk): CountSpec {
  return {
    file,
    offset: chunk.start,
    tokenizer: options.tokenizer,
    caseSensitive: options.caseSensitive,
    maxWordBytes: options.maxWordBytes,
    continuesWord: chunk.continuesWord,
    endsInsideWord: chunk.endsInsideWord,
    wordCounted: chunk.wordCounted,
  };
}

/** Where an input is read from: its path resolved from the job's directory ("-" stays stdin). */
export function inputLocation(options: Pick<CountOptions, 'directory'>, path: string): string {
  return path === '-' ? path : resolve(options.directory ?? '.', path);
}

function taskOf(options: CountOptions, file: number, path: string, chunk: Chunk): Task {
  if (options.workersReadFiles === true && path !== '-') {
    const spec = { ...specOf(options, file, chunk), path: inputLocation(options, path), length: chunk.body.length, crc32: crc32(chunk.body) };
    return { spec, input: `${path} bytes ${chunk.start}-${chunk.start + chunk.body.length - 1}`, weight: chunk.body.length };
  }
  return {
    spec: specOf(options, file, chunk),
    body: chunk.body,
    input: `${describeInput(path)} bytes ${chunk.start}-${chunk.start + chunk.body.length - 1}`,
    weight: chunk.body.length,
  };
}

/** One line for a read error, as the CLI contract wants it. */
function readError(path: string, error: unknown): InputError {
  return new InputError(describeInput(path), readFailure(error), { cause: error });
}

function readFailure(error: unknown): string {
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  return fileErrorReason(error) ?? `cannot read (${code ?? (error instanceof Error ? error.message : String(error))})`;
}

/** Wraps a byte source so a read error names the input. */
async function* readable(path: string, source: AsyncIterable<Uint8Array | string>): AsyncGenerator<Uint8Array> {
  try {
    for await (const piece of source) yield typeof piece === 'string' ? encoder.encode(piece) : piece;
  } catch (error) {
    throw readError(path, error);
  }
}

function parseSpec(spec: unknown): CountSpec {
  if (typeof spec !== 'object' || spec === null || Array.isArray(spec)) throw new TaskRejectedError('count task: spec must be an object');
  const s = spec as Record<string, unknown>;
  for (const key of Object.keys(s)) if (!SPEC_KEYS.has(key)) throw new TaskRejectedError(`count task: unknown spec field ${JSON.stringify(key)}`);
  const { file, offset, tokenizer, caseSensitive, maxWordBytes, continuesWord, endsInsideWord, wordCounted } = s;
  if (!Number.isSafeInteger(file) || (file as number) < 0) throw new TaskRejectedError('count task: file must be a non-negative integer');
  if (!Number.isSafeInteger(offset) || (offset as number) < 0) throw new TaskRejectedError('count task: offset must be a non-negative integer');
  if (tokenizer !== 'unicode' && tokenizer !== 'whitespace') throw new TaskRejectedError(`count task: unknown tokenizer ${JSON.stringify(tokenizer)}`);
  if (!Number.isSafeInteger(maxWordBytes) || (maxWordBytes as number) < 1 || (maxWordBytes as number) > MAX_WORD_BYTES_LIMIT) {
    throw new TaskRejectedError(`count task: maxWordBytes must be an integer from 1 to ${MAX_WORD_BYTES_LIMIT}`);
  }
  for (const [name, value] of [['caseSensitive', caseSensitive], ['continuesWord', continuesWord], ['endsInsideWord', endsInsideWord], ['wordCounted', wordCounted]] as const) {
    if (typeof value !== 'boolean') throw new TaskRejectedError(`count task: ${name} must be a boolean`);
  }
  const { path, length, crc32: crc } = s;
  if (path !== undefined || length !== undefined || crc !== undefined) {
    if (typeof path !== 'string' || !isAbsolute(path) || path.length > 4096 || path.includes('\0')) throw new TaskRejectedError('count task: path must be an absolute file path');
    if (!Number.isSafeInteger(length) || (length as number) < 1 || (length as number) > MAX_READ_BYTES) throw new TaskRejectedError(`count task: length must be an integer from 1 to ${MAX_READ_BYTES}`);
    if (!Number.isInteger(crc) || (crc as number) < 0 || (crc as number) > 0xffffffff) throw new TaskRejectedError('count task: crc32 must be an unsigned 32-bit integer');
  }
  return s as CountSpec;
}

/** A per-process buffer that file reads go into: the word table copies what it keeps. */
let readBuffer: Buffer | undefined;

/**
 * Reads a chunk named by its spec from the file, as the worker's own user, and checks it is
 * the chunk the coordinator cut. Every failure is the task's (and the job's): nothing read
 * differently from the coordinator is ever counted.
 */
function readChunk(spec: CountSpec & { path: string; length: number; crc32: number }): Uint8Array {
  const { path, offset, length } = spec;
  if (!fileReadsAllowed()) {
    throw new TaskRejectedError(`count task: this worker does not read files (${path}); start it with --read-files, or submit without --workers-read-files`);
  }
  if (readBuffer === undefined || readBuffer.length < length) readBuffer = Buffer.allocUnsafe(Math.max(length, 1024 * 1024));
  const bytes = readBuffer.subarray(0, length);
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (error) {
    throw new TaskRejectedError(`count task: worker cannot read ${path}: ${readFailure(error)}`);
  }
  try {
    if (!fstatSync(fd).isFile()) throw new TaskRejectedError(`count task: ${path} is not a regular file`);
    let got = 0;
    while (got < length) {
      const n = readSync(fd, bytes, got, length - got, offset + got);
      if (n === 0) break;
      got += n;
    }
    if (got < length) throw new TaskRejectedError(`${path} changed while it was being counted: it now ends before byte ${offset + length}`);
  } finally {
    closeSync(fd);
  }
  if (crc32(bytes) !== spec.crc32) {
    throw new TaskRejectedError(`${path} changed while it was being counted: bytes ${offset}-${offset + length - 1} differ from what the coordinator read`);
  }
  return bytes;
}

/** Counts one chunk and encodes the partial. */
function mapChunk(spec: unknown, carried: Uint8Array): Uint8Array {
  const s = parseSpec(spec);
  if (s.path !== undefined && carried.length > 0) throw new TaskRejectedError('count task: a task that names a file carries no bytes');
  const body = s.path === undefined ? carried : readChunk(s as CountSpec & { path: string; length: number; crc32: number });
  const edges: ChunkEdges = { fileStart: s.offset === 0, continuesWord: s.continuesWord, endsInsideWord: s.endsInsideWord, wordCounted: s.wordCounted };
  const problem = checkEdges(body, s.tokenizer, edges);
  if (problem !== null) throw new TaskRejectedError(`count task: ${problem}`);
  const settings: CountSettings = { tokenizer: s.tokenizer, caseSensitive: s.caseSensitive, maxWordBytes: s.maxWordBytes };
  const counted = countChunk(body, settings, edges);
  const { bytes: lines, lines: lineCount } = counted.words.encodeLines();
  const header = encoder.encode(`${HEADER} ${body.length} ${counted.totalWords} ${counted.overlongWords} ${lineCount}\n`);
  const out = new Uint8Array(header.length + lines.length);
  out.set(header, 0);
  out.set(lines, header.length);
  return out;
}

function initAcc(): CountAcc {
  return { words: new WordTable(IDENTITY), bytes: 0, totalWords: 0, overlongWords: 0 };
}

function nonNegativeInteger(text: string): number {
  return /^\d{1,15}$/.test(text) ? Number(text) : -1;
}

/** Per line of the partial being reduced: [start, length | ASCII_FLAG, hash, tail], and its count. */
const staged = { lines: new Int32Array(4 * 16384), counts: new Float64Array(16384) };

function growStaged(): void {
  const lines = new Int32Array(staged.lines.length * 2);
  lines.set(staged.lines);
  const counts = new Float64Array(staged.counts.length * 2);
  counts.set(staged.counts);
  staged.lines = lines;
  staged.counts = counts;
}

/** Folds one partial into the accumulator; a malformed partial throws and changes nothing. */
function reducePartial(acc: CountAcc, partial: Uint8Array, task: number): CountAcc {
  const malformed = (why: string) => new Error(`count task ${task}: malformed partial result (${why})`);
  if (!isUtf8(partial)) throw malformed('not UTF-8');
  const n = partial.length;
  const headerEnd = partial.indexOf(0x0a);
  if (headerEnd < 0) throw malformed('no header');
  const fields = decoder.decode(partial.subarray(0, headerEnd)).split(' ');
  if (fields.length !== 6 || `${fields[0]} ${fields[1]}` !== HEADER) throw malformed('bad header');
  const [bytes, total, overlong, lineCount] = fields.slice(2).map(nonNegativeInteger);
  if (bytes < 0 || total < 0 || overlong < 0 || lineCount < 0) throw malformed('bad header');
  // One pass checks every line and hashes its word into `staged`; the accumulator is touched
  // only after the whole partial has passed, so a bad partial changes nothing. Words arrive
  // folded and as valid UTF-8, so equal words have equal bytes: the table is keyed by bytes
  // and no string is made here.
  let lines = 0;
  for (let pos = headerEnd + 1; pos < n; lines++) {
    const start = pos;
    let h = FNV_OFFSET;
    let tail = 0;
    let high = 0;
    let b = partial[pos];
    while (b !== 0x09 && b !== 0x0a && pos < n) {
      h = Math.imul(h ^ b, FNV_PRIME);
      tail = (tail << 8) | b;
      high |= b;
      b = partial[++pos];
    }
    if (pos === start || pos >= n || b !== 0x09) throw malformed('bad line');
    const tab = pos;
    let count = 0;
    for (pos++; pos < n && (b = partial[pos]) >= 0x30 && b <= 0x39; pos++) count = count * 10 + (b - 0x30);
    if (pos >= n || partial[pos] !== 0x0a) throw malformed(pos < n && partial[pos] === 0x09 ? 'bad line' : 'bad count');
    if (pos === tab + 1 || pos - tab > 16 || partial[tab + 1] === 0x30) throw malformed('bad count');
    pos++;
    if (lines === staged.counts.length) growStaged();
    const k = lines * 4;
    staged.lines[k] = start;
    staged.lines[k + 1] = high < 0x80 ? (tab - start) | ASCII_FLAG : tab - start;
    staged.lines[k + 2] = h;
    staged.lines[k + 3] = tail;
    staged.counts[lines] = count;
  }
  if (lines !== lineCount) throw malformed('line count');
  const words = acc.words;
  const { lines: staging, counts } = staged;
  for (let i = 0; i < lines; i++) {
    const k = i * 4;
    const tag = staging[k + 1];
    words.add(partial, staging[k], tag & ~ASCII_FLAG, staging[k + 2], staging[k + 3], (tag & ASCII_FLAG) !== 0, counts[i]);
  }
  acc.bytes += bytes;
  acc.totalWords += total;
  acc.overlongWords += overlong;
  return acc;
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

/**
 * The count job kind. See the module comment for the spec and partial formats, chunker.ts for
 * where chunks are cut and words.ts for what a word is.
 */
export const countKind: JobKind<CountOptions, CountAcc, CountResult> = {
  name: 'count',

  plan(options: CountOptions): Plan {
    checkOptions(options);
    const sizes = options.inputs.map((input) => input.size);
    const known = sizes.every((size): size is number => size !== null);
    return known ? { totalWeight: sizes.reduce((a, b) => a + b, 0), unit: 'B' } : { unit: 'B' };
  },

  async *split(options: CountOptions, context: SplitContext): AsyncIterable<Task> {
    checkOptions(options);
    const chunking = chunkOptions(options, context.maxBodyBytes);
    for (let file = 0; file < options.inputs.length; file++) {
      const { path } = options.inputs[file];
      const source: AsyncIterable<Uint8Array | string> =
        path === '-' ? process.stdin : createReadStream(inputLocation(options, path), { highWaterMark: READ_BYTES });
      for await (const chunk of chunkStream(readable(path, source), chunking)) yield taskOf(options, file, path, chunk);
    }
  },

  map(spec: unknown, body: Uint8Array, _context: MapContext): Uint8Array {
    return mapChunk(spec, body);
  },

  init(): CountAcc {
    return initAcc();
  },

  reduce(acc: CountAcc, partial: Uint8Array, task: number): CountAcc {
    return reducePartial(acc, partial, task);
  },

  finalize(acc: CountAcc, summary: JobSummary, options: CountOptions): CountResult {
    return finalizeAcc(acc, summary.job, summary.tasks, options.inputs.length, options.mergedPaths);
  },
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
    const task = taskOf(jobOptions, 0, '-', chunk);
    reducePartial(acc, mapChunk(task.spec, chunk.body), tasks);
    tasks++;
  }
  return finalizeAcc(acc, 'local', tasks, 1);
}
