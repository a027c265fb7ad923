/**
 * `count`: exact word counts over files. The coordinator streams each file and cuts it into
 * chunks at boundaries no word spans (shared/text/chunker.ts); each worker counts its chunk
 * (shared/text/words.ts); the coordinator merges the per-chunk tables.
 *
 * Task spec (JSON): {file, offset, tokenizer, caseSensitive, maxWordBytes, continuesWord,
 * endsInsideWord, wordCounted}: the chunk's file index and byte offset, how to count, and the
 * chunk's edge flags. A chunk is counted from its bytes and this spec alone.
 *
 * Partial (UTF-8 text):
 *   tally-count 1 <bytes> <totalWords> <overlongWords> <lines>\n
 *   <word>\t<count>\n          × lines, in no particular order
 * Words never contain \t or \n (both are separators for either tokenizer). A word may appear
 * on more than one line of a partial; the reducer sums.
 */
import { createReadStream } from 'node:fs';
import { InputError, TaskRejectedError, UsageError } from '../errors.js';
import { chunkBytes, chunkStream, maxChunkBody, WORD_SLACK, type Chunk, type Tokenizer } from '../text/chunker.js';
import { checkEdges, compareCodePoints, countChunk, type ChunkEdges, type CountSettings } from '../text/words.js';
import type { JobKind, JobSummary, MapContext, Plan, SplitContext, Task } from './kind.js';

/** Largest accepted maxWordBytes (1 MiB). */
export const MAX_WORD_BYTES_LIMIT = 1024 * 1024;

/** Job options, as stored in the job record. */
export type CountOptions = {
  /** Inputs in order; path "-" is stdin; size null when unknown (stdin). */
  inputs: { path: string; size: number | null }[];
  tokenizer: Tokenizer;
  caseSensitive: boolean;
  maxWordBytes: number;
  /** Target bytes per task (clamped to what one message can carry). */
  chunkSize: number;
};

/** The printed result: every counted word, by count descending then code point order. */
export type CountResult = {
  job: string;
  kind: 'count';
  files: number;
  bytes: number;
  tasks: number;
  totalWords: number;
  uniqueWords: number;
  overlongWords: number;
  counts: [string, number][];
};

/** Coordinator-side accumulator. */
export interface CountAcc {
  words: Map<string, number>;
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
};

const SPEC_KEYS = new Set(['file', 'offset', 'tokenizer', 'caseSensitive', 'maxWordBytes', 'continuesWord', 'endsInsideWord', 'wordCounted']);
const HEADER = 'tally-count 1';
/** Read size for input files: memory stays bounded whatever the file size. */
const READ_BYTES = 64 * 1024;

const encoder = new TextEncoder();
const decoder = new TextDecoder('utf-8', { fatal: true });

function checkOptions(options: CountOptions): void {
  if (typeof options !== 'object' || options === null) throw new UsageError('count: options must be an object');
  if (!Array.isArray(options.inputs)) throw new UsageError('count: inputs must be a list');
  for (const input of options.inputs) {
    if (typeof input?.path !== 'string' || input.path === '') throw new UsageError('count: every input needs a path');
    if (input.size !== null && !(Number.isSafeInteger(input.size) && input.size >= 0)) throw new UsageError(`count: bad size for ${input.path}`);
  }
  if (options.tokenizer !== 'unicode' && options.tokenizer !== 'whitespace') throw new UsageError(`--tokenizer: must be unicode or whitespace, got ${String(options.tokenizer)}`);
  if (typeof options.caseSensitive !== 'boolean') throw new UsageError('count: caseSensitive must be a boolean');
  if (!Number.isSafeInteger(options.maxWordBytes) || options.maxWordBytes < 1 || options.maxWordBytes > MAX_WORD_BYTES_LIMIT) {
    throw new UsageError(`--max-word-bytes: must be an integer from 1 to ${MAX_WORD_BYTES_LIMIT}, got ${options.maxWordBytes}`);
  }
  if (!Number.isSafeInteger(options.chunkSize) || options.chunkSize < 1) throw new UsageError(`--chunk-size: must be a positive integer, got ${options.chunkSize}`);
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

function taskOf(options: CountOptions, file: number, path: string, chunk: Chunk): Task {
  return {
    spec: specOf(options, file, chunk),
    body: chunk.body,
    input: `${describeInput(path)} bytes ${chunk.start}-${chunk.start + chunk.body.length - 1}`,
    weight: chunk.body.length,
  };
}

/** One line for a read error, as the CLI contract wants it. */
function readError(path: string, error: unknown): InputError {
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  const reason =
    code === 'ENOENT' ? 'no such file or directory'
    : code === 'EACCES' || code === 'EPERM' ? 'permission denied'
    : code === 'EISDIR' ? 'is a directory'
    : `cannot read (${code ?? (error instanceof Error ? error.message : String(error))})`;
  return new InputError(describeInput(path), reason, { cause: error });
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
  return s as CountSpec;
}

/** Counts one chunk and encodes the partial. */
function mapChunk(spec: unknown, body: Uint8Array): Uint8Array {
  const s = parseSpec(spec);
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
  return { words: new Map(), bytes: 0, totalWords: 0, overlongWords: 0 };
}

function nonNegativeInteger(text: string): number {
  return /^\d{1,15}$/.test(text) ? Number(text) : -1;
}

/**
 * A copy of `word` that does not share memory with the partial it was cut from. V8 makes a
 * substring of 13 or more characters a "sliced string" that keeps its whole parent alive, so
 * a key kept in the job's map would otherwise pin an entire partial for the rest of the job.
 */
function detach(word: string): string {
  return word.length < 13 ? word : Buffer.from(word, 'utf8').toString('utf8');
}

/** Folds one partial into the accumulator. */
function reducePartial(acc: CountAcc, partial: Uint8Array, task: number): CountAcc {
  const malformed = (why: string) => new Error(`count task ${task}: malformed partial result (${why})`);
  let text: string;
  try {
    text = decoder.decode(partial);
  } catch {
    throw malformed('not UTF-8');
  }
  const headerEnd = text.indexOf('\n');
  if (headerEnd < 0) throw malformed('no header');
  const fields = text.slice(0, headerEnd).split(' ');
  if (fields.length !== 6 || `${fields[0]} ${fields[1]}` !== HEADER) throw malformed('bad header');
  const [bytes, total, overlong, lineCount] = fields.slice(2).map(nonNegativeInteger);
  if (bytes < 0 || total < 0 || overlong < 0 || lineCount < 0) throw malformed('bad header');
  // Check every line before touching the accumulator, so a bad partial changes nothing; the
  // check allocates nothing, and the second pass makes one string per distinct word only.
  let lines = 0;
  for (let pos = headerEnd + 1; pos < text.length; lines++) {
    const tab = text.indexOf('\t', pos);
    const nl = tab < 0 ? -1 : text.indexOf('\n', tab);
    if (tab <= pos || nl < 0) throw malformed('bad line');
    if (nl === tab + 1 || nl - tab > 16 || text.charCodeAt(tab + 1) === 0x30) throw malformed('bad count');
    for (let k = tab + 1; k < nl; k++) {
      const d = text.charCodeAt(k) - 0x30;
      if (d < 0 || d > 9) throw malformed('bad count');
    }
    pos = nl + 1;
  }
  if (lines !== lineCount) throw malformed('line count');
  const words = acc.words;
  for (let pos = headerEnd + 1; pos < text.length; ) {
    const tab = text.indexOf('\t', pos);
    const nl = text.indexOf('\n', tab);
    let count = 0;
    for (let k = tab + 1; k < nl; k++) count = count * 10 + (text.charCodeAt(k) - 0x30);
    const word = text.slice(pos, tab);
    const before = words.get(word);
    if (before === undefined) words.set(detach(word), count);
    else words.set(word, before + count);
    pos = nl + 1;
  }
  acc.bytes += bytes;
  acc.totalWords += total;
  acc.overlongWords += overlong;
  return acc;
}

function finalizeAcc(acc: CountAcc, job: string, tasks: number, files: number): CountResult {
  const counts = Array.from(acc.words);
  counts.sort((a, b) => b[1] - a[1] || compareCodePoints(a[0], b[0]));
  return {
    job,
    kind: 'count',
    files,
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
        path === '-' ? process.stdin : createReadStream(path, { highWaterMark: READ_BYTES });
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
    return finalizeAcc(acc, summary.job, summary.tasks, options.inputs.length);
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
