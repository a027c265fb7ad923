/**
 * `ngrams`: exact counts of word n-grams (N consecutive words of one file) over files, with the
 * words of `count` (same tokenizers, folding and overlong limit: shared/text/words.ts feeds
 * shared/text/ngram-sink.ts) and count's input handling (shared/text/file-input.ts): a job is a
 * count job's options plus N, and its tasks are count's tasks plus N.
 *
 * N-grams do not cross files. Those inside one task entry (a byte range or a chunk) are counted
 * by the map and shuffled to the reducers like words; for those that straddle entries, each
 * entry's map summary carries its first and last N-1 words, and the coordinator joins the
 * entries of each file in order once every map task is in: each reduce task's spec carries the
 * joined n-grams of its partition, folded in with the shares. So every n-gram is counted once
 * however the input is cut, which the property tests check against a direct count.
 *
 * Map summary (UTF-8): `tally-ngrams 1 <bytes> <words> <grams> <overlongGrams>\n` and JSON
 * `{edges, listed, unlisted}`: the task's entry edges (NgramEdge) and its most frequent n-grams
 * for the live view (shared/text/forming-top.ts). A bare list of edges is read too.
 */
import { OptionError, TaskRejectedError } from '../errors.js';
import { countKind, checkOptions, checkReadable, describeInputs, firstRows, inputFiles, parseSpec, summaryTop, withFetchedRanges, type CountOptions } from './count.js';
import { tokenizeEntries, type TaskEntries } from '../text/file-input.js';
import { NgramSink, type EdgeWord, type NgramEdge } from '../text/ngram-sink.js';
import { FormingTop, LISTED_PER_TASK, PREVIEW_ROWS, type ListedTop, type TablePreview } from '../text/forming-top.js';
import { SHARE_HEADER, foldShare } from '../text/word-lines.js';
import { PartitionTable } from '../text/partition-table.js';
import { partitionOfText, type CountSettings } from '../text/words.js';
import type { JobKind, JobSummary, MapContext, PartSummary, Plan, SplitContext, Task } from './kind.js';
import type { Json } from '../json.js';
import { MAX_NGRAM } from '../limits.js';

export { MAX_NGRAM } from '../limits.js';

/** Job options: a count job's, and N. */
export type NgramsOptions = CountOptions & { n: number };

/** The printed result: a count result whose rows are n-grams ("of the", 1234). */
export type NgramsResult = {
  job: string;
  kind: 'ngrams';
  /** Words per n-gram. */
  n: number;
  files: number;
  mergedPaths?: number;
  bytes: number;
  tasks: number;
  /** Words read (as `tally count` counts them). */
  words: number;
  /** N-grams counted, overlong ones included. */
  totalWords: number;
  /** Distinct n-grams kept. */
  uniqueWords: number;
  /** N-grams holding an overlong word: counted, not kept. */
  overlongWords: number;
  counts: [string, number][];
  parts: string[];
};

/** What the coordinator folds: totals, and every entry's edges for the join. */
export interface NgramsAcc {
  bytes: number;
  words: number;
  grams: number;
  overlongGrams: number;
  edges: NgramEdge[];
  /** The n-grams the map tasks listed as their most frequent (the live view's). */
  forming: FormingTop;
  /** The n-grams across entry edges, once joined (after every map task is in). */
  joined?: Joined;
}

/** The n-grams that straddle entries, by partition. */
interface Joined {
  total: number;
  overlong: number;
  byPartition: Array<Array<[string, number]>>;
}

const HEADER = 'tally-ngrams 1';
const encoder = new TextEncoder();
const decoder = new TextDecoder();

function checkN(n: unknown): number {
  if (!Number.isSafeInteger(n) || (n as number) < 1 || (n as number) > MAX_NGRAM) throw new OptionError('n', `must be an integer from 1 to ${MAX_NGRAM}, got ${String(n)}`);
  return n as number;
}

/**
 * N-grams joined across cuts that one reduce task may carry in its spec, on average over the
 * partitions (at most N-1 per cut; a cut per --chunk-size bytes of a file: 1 MiB chunks allow
 * 64 GB of files per reducer at N = 2).
 */
export const MAX_JOINED_PER_REDUCER = 60_000;

function checkNgramsOptions(options: NgramsOptions): void {
  checkOptions(options);
  checkN(options.n);
  // The joins go to the reducers: an n-gram job always reduces on the workers.
  if (options.reducers === undefined) throw new OptionError('reducers', 'an ngrams job needs reduce partitions');
  const cuts = options.inputs.reduce((sum, input) => sum + (input.size === null ? 0 : Math.max(0, Math.ceil(input.size / options.chunkSize) - 1)), 0);
  if (cuts * (options.n - 1) > MAX_JOINED_PER_REDUCER * options.reducers) {
    throw new OptionError('chunkSize', `${options.chunkSize} bytes cut the files ${cuts} times, too many n-grams to join across cuts for ${options.reducers} reducer(s) (at most ${MAX_JOINED_PER_REDUCER} each); use a larger chunk size or more reducers`);
  }
}

/** Reads one map summary; a malformed one throws and changes nothing. */
function readSummary(partial: Uint8Array, task: number): { bytes: number; words: number; grams: number; overlong: number; edges: NgramEdge[]; listed: ListedTop | null } {
  const malformed = (why: string) => new Error(`ngrams task ${task}: malformed partial result (${why})`);
  const headerEnd = partial.indexOf(0x0a);
  if (headerEnd < 0) throw malformed('no header');
  const fields = decoder.decode(partial.subarray(0, headerEnd)).split(' ');
  if (fields.length !== 6 || `${fields[0]} ${fields[1]}` !== HEADER) throw malformed('bad header');
  const [bytes, words, grams, overlong] = fields.slice(2).map((field) => (/^\d{1,15}$/.test(field) ? Number(field) : -1));
  if (bytes! < 0 || words! < 0 || grams! < 0 || overlong! < 0) throw malformed('bad header');
  let body: unknown;
  try {
    body = JSON.parse(decoder.decode(partial.subarray(headerEnd + 1)));
  } catch {
    throw malformed('bad edges');
  }
  const { edges, listed, unlisted, beyond } = (Array.isArray(body) ? { edges: body } : (body ?? {})) as { edges?: unknown; listed?: unknown; unlisted?: unknown; beyond?: unknown };
  if (!Array.isArray(edges) || !edges.every(isEdge)) throw malformed('bad edges');
  let top: ListedTop | null = null;
  if (listed !== undefined) {
    const isRow = (row: unknown) => Array.isArray(row) && row.length === 2 && typeof row[0] === 'string' && Number.isSafeInteger(row[1]) && (row[1] as number) > 0;
    if (!Array.isArray(listed) || !listed.every(isRow) || !Number.isSafeInteger(unlisted) || (unlisted as number) < 0 || !Number.isSafeInteger(beyond) || (beyond as number) < 0) throw malformed('bad listing');
    // The n-grams joined across this task's entries are in no task's table: each ends in the first N-1 words of an entry.
    const joined = (edges as NgramEdge[]).reduce((sum, edge) => sum + edge[3].length, 0);
    top = { rows: listed as [string, number][], unlisted: unlisted as number, beyond: (beyond as number) + joined };
  }
  return { bytes: bytes!, words: words!, grams: grams!, overlong: overlong!, edges, listed: top };
}

function isEdge(edge: unknown): edge is NgramEdge {
  if (!Array.isArray(edge) || edge.length !== 5) return false;
  const [file, offset, words, head, tail] = edge as unknown[];
  const isWords = (list: unknown) => Array.isArray(list) && list.every((word) => word === null || (typeof word === 'string' && !/[\t\n]/.test(word)));
  return Number.isSafeInteger(file) && Number.isSafeInteger(offset) && Number.isSafeInteger(words) && isWords(head) && isWords(tail);
}

/**
 * Joins the entries of each file in order: the n-grams that start in earlier entries and end
 * in the first N-1 words of a later one (all the n-grams no single entry holds).
 */
export function joinEdges(edges: readonly NgramEdge[], n: number, partitions: number): Joined {
  const joined: Joined = { total: 0, overlong: 0, byPartition: Array.from({ length: partitions }, () => []) };
  if (n === 1) return joined;
  const grams = new Map<string, number>();
  const byFile = new Map<number, NgramEdge[]>();
  for (const edge of edges) {
    let list = byFile.get(edge[0]);
    if (!list) byFile.set(edge[0], (list = []));
    list.push(edge);
  }
  for (const list of byFile.values()) {
    list.sort((a, b) => a[1] - b[1]);
    // The file's last N-1 words before the entry at hand.
    let carry: EdgeWord[] = [];
    for (const [, , words, head, tail] of list) {
      // An n-gram ending at word j ≥ n of the entry lies wholly inside it: the map counted it.
      for (let j = 1; j <= Math.min(head.length, n - 1); j++) {
        const before = n - j;
        if (carry.length < before) continue;
        const gram = [...carry.slice(carry.length - before), ...head.slice(0, j)];
        joined.total++;
        if (gram.includes(null)) joined.overlong++;
        else {
          const key = gram.join(' ');
          grams.set(key, (grams.get(key) ?? 0) + 1);
        }
      }
      carry = words >= n - 1 ? tail : [...carry, ...head].slice(-(n - 1));
    }
  }
  for (const [key, count] of grams) joined.byPartition[partitionOfText(key, partitions)]!.push([key, count]);
  return joined;
}

function joinedOf(acc: NgramsAcc, options: NgramsOptions): Joined {
  acc.joined ??= joinEdges(acc.edges, options.n, options.reducers!);
  return acc.joined;
}

/** A reduce task's spec: count's, and the joined n-grams of its partition. */
function readReduceSpec(spec: unknown): { top: number; joined: Array<[string, number]> } {
  const s = spec as { top?: unknown; joined?: unknown } | null;
  const ok =
    typeof s === 'object' &&
    s !== null &&
    Object.keys(s).every((key) => key === 'top' || key === 'joined') &&
    Number.isSafeInteger(s.top) &&
    (s.top as number) >= 0 &&
    Array.isArray(s.joined) &&
    s.joined.every((row: unknown) => Array.isArray(row) && row.length === 2 && typeof row[0] === 'string' && row[0] !== '' && !/[\t\n]/.test(row[0]) && Number.isSafeInteger(row[1]) && row[1] > 0);
  if (!ok) throw new TaskRejectedError('ngrams reduce task: spec must be {top, joined: [[n-gram, count], …]}');
  return s as { top: number; joined: Array<[string, number]> };
}

/** Count's reduce does the folding and sorting of a partition; ngrams adds the joined n-grams first. */
const countReduce = countKind.partitioned!;

export const ngramsKind: JobKind<NgramsOptions, NgramsAcc, NgramsResult> = {
  name: 'ngrams',

  describe: (options) => `${options.n}-grams of ${describeInputs(options)}`,

  files: inputFiles,

  plan(options: NgramsOptions): Plan | Promise<Plan> {
    checkNgramsOptions(options);
    return countKind.plan(options);
  },

  async *split(options: NgramsOptions, context: SplitContext): AsyncIterable<Task> {
    checkNgramsOptions(options);
    for await (const task of countKind.split(options, context)) yield { ...task, spec: { ...(task.spec as Record<string, Json>), n: options.n } };
  },

  map(): Uint8Array {
    throw new TaskRejectedError('ngrams task: an ngrams job reduces on the workers; this task came without its partitions');
  },

  init(): NgramsAcc {
    return { bytes: 0, words: 0, grams: 0, overlongGrams: 0, edges: [], forming: new FormingTop() };
  },

  reduce(acc: NgramsAcc, partial: Uint8Array, task: number): NgramsAcc {
    const summary = readSummary(partial, task);
    acc.bytes += summary.bytes;
    acc.words += summary.words;
    acc.grams += summary.grams;
    acc.overlongGrams += summary.overlong;
    for (const edge of summary.edges) acc.edges.push(edge);
    if (summary.listed) acc.forming.fold(summary.listed);
    return acc;
  },

  skip(acc: NgramsAcc, _task: number, spec: Json): NgramsAcc {
    // Each entry of the skipped task stands as an edge with no words to join and a huge word
    // count: the join starts afresh after it, so no n-gram bridges words that were not read.
    const { ranges, chunks } = spec as { ranges?: unknown; chunks?: unknown };
    const entries = (Array.isArray(ranges) ? ranges : Array.isArray(chunks) ? chunks : []) as unknown[][];
    for (const entry of entries) {
      const [file, offset] = Array.isArray(ranges) ? [entry[0], entry[4]] : [entry[0], entry[1]];
      if (Number.isSafeInteger(file) && Number.isSafeInteger(offset)) acc.edges.push([file as number, offset as number, Number.MAX_SAFE_INTEGER, [], []]);
    }
    acc.joined = undefined;
    return acc;
  },

  preview(acc: NgramsAcc): Json {
    const preview: TablePreview = { ...acc.forming.preview(PREVIEW_ROWS), exact: false };
    return preview as unknown as Json;
  },

  finalize(): NgramsResult {
    throw new Error('an ngrams job finishes through its partitioned reduce');
  },

  partitioned: {
    partitions: (options: NgramsOptions) => options.reducers ?? 0,

    map(spec: unknown, body: Uint8Array, _context: MapContext, partitions: number): { summary: Uint8Array; shares: Uint8Array[] } | Promise<{ summary: Uint8Array; shares: Uint8Array[] }> {
      const n = checkNSpec(spec);
      const s = parseSpec(spec, ['n']);
      checkReadable(s);
      const settings: CountSettings = { tokenizer: s.tokenizer, caseSensitive: s.caseSensitive, maxWordBytes: s.maxWordBytes };
      // A fresh sink each run: one that had to fetch more of an object or a piece starts again.
      const counted = withFetchedRanges(s, (open) => {
        const sink = new NgramSink(n, s.caseSensitive, s.ranges ? s.ranges.reduce((sum, range) => sum + range[5] - range[4], 0) : body.length);
        return { sink, read: tokenizeEntries(s as TaskEntries, body, settings, sink, sink, open) };
      });
      return counted instanceof Promise ? counted.then((done) => encodeGrams(done.sink, done.read, partitions)) : encodeGrams(counted.sink, counted.read, partitions);
    },

    reduceSpec(options: NgramsOptions, partition: number, acc: NgramsAcc): Json {
      const joined = joinedOf(acc, options).byPartition[partition]!;
      // Only stdin, whose size is not known when the job is planned, can get here (see checkNgramsOptions).
      if (joined.length > 2 * MAX_JOINED_PER_REDUCER) throw new Error(`ngrams: ${joined.length} n-grams joined across cuts for one reducer (at most ${2 * MAX_JOINED_PER_REDUCER}); use a larger --chunk-size or more --reducers`);
      return { top: summaryTop(options), joined };
    },

    initPartition(spec: unknown): PartitionTable {
      const { joined } = readReduceSpec(spec);
      const table = new PartitionTable();
      if (joined.length > 0) {
        const share = encoder.encode(`${SHARE_HEADER} ${joined.length}\n${joined.map(([gram, count]) => `${gram}\t${count}\n`).join('')}`);
        foldShare(share, table, (why) => new TaskRejectedError(`ngrams reduce task: bad joined n-grams (${why})`));
      }
      return table;
    },

    foldPartition(acc: unknown, share: Uint8Array, task: number): unknown {
      return countReduce.foldPartition(acc, share, task);
    },

    keysIn(acc: unknown): number {
      return countReduce.keysIn!(acc);
    },

    finishPartition(acc: unknown, spec: unknown): { part: Iterable<Uint8Array>; summary: Json } {
      return countReduce.finishPartition(acc, { top: readReduceSpec(spec).top });
    },

    finalize(acc: NgramsAcc, parts: PartSummary[], summary: JobSummary, options: NgramsOptions): NgramsResult {
      const joined = joinedOf(acc, options);
      const { unique, counts } = firstRows(parts, summaryTop(options));
      const mergedPaths = options.mergedPaths ?? 0;
      return {
        job: summary.job,
        kind: 'ngrams',
        n: options.n,
        files: options.inputs.length,
        ...(mergedPaths > 0 ? { mergedPaths } : {}),
        bytes: acc.bytes,
        tasks: summary.tasks,
        words: acc.words,
        totalWords: acc.grams + joined.total,
        uniqueWords: unique,
        overlongWords: acc.overlongGrams + joined.overlong,
        counts,
        parts: parts.map((part) => part.name),
      };
    },
  },
};

function checkNSpec(spec: unknown): number {
  const n = (spec as { n?: unknown } | null)?.n;
  if (!Number.isSafeInteger(n) || (n as number) < 1 || (n as number) > MAX_NGRAM) throw new TaskRejectedError(`ngrams task: n must be an integer from 1 to ${MAX_NGRAM}`);
  return n as number;
}

/** An n-gram map task's summary (totals, edges, most frequent n-grams) and its shares. */
function encodeGrams(sink: NgramSink, read: { bytes: number; totalWords: number }, partitions: number): { summary: Uint8Array; shares: Uint8Array[] } {
  const header = `${HEADER} ${read.bytes} ${read.totalWords} ${sink.totalGrams} ${sink.overlongGrams}\n`;
  const { shares, top } = sink.grams.encodeSharesListing(partitions, LISTED_PER_TASK);
  return { summary: encoder.encode(header + JSON.stringify({ edges: sink.edges, listed: top.rows, unlisted: top.unlisted, beyond: top.beyond ?? 0 })), shares };
}
