/** `tally count`: the word counter's command line and how its results print. */
import { Command, Option } from '../commander.js';
import { embeddedFleet } from '../embedded/fleet.js';
import type { CountOptions, CountResult } from '../../shared/kinds/count.js';
import type { CountSettings } from '../../shared/text/words.js';
import type { TextInput } from '../../shared/text/file-input.js';
import { isUrl } from '../../shared/text/url-input.js';
import { MAX_PARTITIONS } from '../../shared/subjects.js';
import { UsageError } from '../../shared/errors.js';
import { resolveConnection, type ConnectionSettings } from '../../shared/nats/connection-settings.js';
import type { ObjectListing } from '../commands/objects.js';
import { setting } from '../../shared/settings.js';
import { MAX_TASK_BYTES, MAX_WORD_BYTES_LIMIT } from '../../shared/limits.js';
import { selectInputs, selectionNotes, type InputSelection } from '../inputs.js';
import { isObjectUrl } from '../../shared/text/object-input.js';
import { checkOutputFile, type Format } from '../output.js';
import type { KindCli, ResultView } from '../kind-cli.js';
import type { JobStore } from '../job-store.js';
import type { Json } from '../../shared/json.js';
import { commandLogger, formatOption, parseByteSize, parseCount, runKindJob, withCommonOptions, type CommonOptions, parsePath } from '../commands/common.js';

export const DEFAULT_CHUNK_SIZE = 1024 * 1024;
/** The largest chunk size a count picks by itself: the largest a task may have. */
export const MAX_DEFAULT_CHUNK_SIZE = MAX_TASK_BYTES;
/** Tasks a count's default chunks aim at: this many per embedded worker, ... */
const DEFAULT_TASKS_PER_WORKER = 8;
/** ...and at least this many, ... */
const DEFAULT_MIN_TASKS = 16;
/** ...or this many with --server, whose fleet the command cannot see. */
const DEFAULT_SERVER_TASKS = 32;
/** Chunks grow past 1 MiB only when at most this share of a sample's words are distinct (shared/text/word-sample.ts). */
const MAX_DISTINCT_SHARE = 0.5;

/**
 * How many tasks a count's default chunk size aims at: 8 per embedded worker, at least 16;
 * 32 with --server.
 * @param workers the embedded workers, or undefined with --server
 */
export function defaultTaskTarget(workers: number | undefined): number {
  return workers === undefined ? DEFAULT_SERVER_TASKS : Math.max(DEFAULT_MIN_TASKS, DEFAULT_TASKS_PER_WORKER * workers);
}

/**
 * A count's default --chunk-size: 1 MiB; for inputs whose words repeat (a sample of the
 * largest local file has at most half its words distinct), the input's bytes over `tasks` in
 * whole MiB, up to 16 MiB, when that is more. Each task's table of distinct words is encoded,
 * sent and folded whole, and where words repeat it grows slower than the task's bytes
 * (English: ~9,000 words in 1 MiB, ~3x that in 7 MiB): on 200 MB of English, 7 MiB tasks took
 * 0.6x the time of 1 MiB ones, and 13 MiB tasks 0.86x that of 7 MiB ones (2 workers); on 20 M
 * distinct numbers 7 MiB tasks took 1.5x (docs/BENCHMARKS.md). Eight tasks per worker still
 * keep a fleet busy and a straggler's backup copy small.
 * @param tasks how many tasks to aim at (see defaultTaskTarget)
 */
export async function defaultChunkSize(inputs: readonly Pick<TextInput, 'path' | 'size' | 'compression'>[], settings: CountSettings, tasks: number): Promise<number> {
  const bytes = inputs.reduce((sum, input) => sum + (input.size ?? 0), 0);
  const share = Math.ceil(bytes / tasks / DEFAULT_CHUNK_SIZE) * DEFAULT_CHUNK_SIZE;
  if (share <= DEFAULT_CHUNK_SIZE) return DEFAULT_CHUNK_SIZE;
  // The sample comes from a plain local file: not stdin, a URL, an object or compressed bytes.
  const local = inputs.filter((input) => input.size !== null && !input.compression && input.path !== '-' && !isUrl(input.path) && !isObjectUrl(input.path));
  if (local.length === 0) return DEFAULT_CHUNK_SIZE;
  const { distinctShare } = await import('../../shared/text/word-sample.js');
  const distinct = distinctShare(local.map((input) => ({ path: input.path, size: input.size! })), settings);
  if (distinct === null || distinct > MAX_DISTINCT_SHARE) return DEFAULT_CHUNK_SIZE;
  return Math.min(MAX_DEFAULT_CHUNK_SIZE, share);
}
export const MIN_CHUNK_SIZE = 16;
/** Reduce partitions of a job on a server whose fleet the command cannot see. */
export const DEFAULT_REDUCERS = 4;

/** The command line of a job over text. */
export interface TextCliOptions extends CommonOptions {
  include: string[];
  exclude: string[];
  binary: 'skip' | 'count';
  tokenizer: CountOptions['tokenizer'];
  caseSensitive?: boolean;
  top: number;
  format: Format;
  output?: string;
  chunkSize?: number;
  maxWordBytes: number;
  workersReadFiles?: boolean;
  workersFetchUrls?: boolean;
  reducers?: number;
}

export const FORMATS: Format[] = ['table', 'json', 'tsv', 'csv'];

/** A repeatable glob option: each value is added to the list. */
function collectPatterns(flag: string): (value: string, previous: string[]) => string[] {
  return (value, previous) => {
    if (value === '') throw new UsageError(`${flag}: the pattern is empty`);
    return [...previous, value];
  };
}

/** Adds the options of a job over text (count's, which ngrams shares) to `command`. */
export function withTextOptions(command: Command, rows: string): Command {
  command
    .addOption(new Option('--tokenizer <name>', 'what a word is').choices(['unicode', 'whitespace']).default('unicode'))
    .option('--case-sensitive', 'keep case (default: words are folded with toLowerCase)')
    .option('--top <n>', `${rows} to show, 0 = all`, (v) => parseCount(v, '--top', 0, Number.MAX_SAFE_INTEGER), 20)
    .addOption(formatOption(FORMATS))
    .option('--output <file>', 'write the result to FILE (atomically) instead of stdout; - is stdout; not one of the inputs', (v) => parsePath(v, '--output'))
    .option('--chunk-size <bytes>', `bytes per task (default 1 MiB; a count whose words repeat: 8 tasks per embedded worker, at least 16, or 32 with --server, in whole MiB up to 16 MiB; minimum ${MIN_CHUNK_SIZE}; 64K, 1M accepted)`, (v) =>
      parseByteSize(v, '--chunk-size', MIN_CHUNK_SIZE, MAX_TASK_BYTES),
    )
    .option('--max-word-bytes <n>', 'longer words count as overlong, not in the table', (v) => parseCount(v, '--max-word-bytes', 1, MAX_WORD_BYTES_LIMIT), 1024)
    .option('--workers-read-files', 'tasks name the file and byte range and workers read it (default with the embedded server; with --server, every worker must share the files and run with --read-files)')
    .option('--no-workers-read-files', 'every task carries its chunk of text (default with --server)')
    .option('--workers-fetch-urls', 'workers fetch byte ranges of URLs whose server serves them (default with the embedded server; with --server, every worker must run with --fetch-urls)')
    .option('--no-workers-fetch-urls', 'the coordinator fetches every URL and tasks carry its text (default with --server)')
    .option('--reducers <n>', `reduce partitions, each folded by a reduce task on a worker (1..${MAX_PARTITIONS}; default: the embedded workers, or ${DEFAULT_REDUCERS} with --server)`, (v) =>
      parseCount(v, '--reducers', 1, MAX_PARTITIONS),
    )
    .option('--include <glob>', 'in folders, count only the files that match GLOB (repeatable; with a /, GLOB matches the path below the folder)', collectPatterns('--include'), [])
    .option('--exclude <glob>', 'in folders, leave out the files and folders that match GLOB (repeatable)', collectPatterns('--exclude'), [])
    .addOption(new Option('--binary <mode>', 'files in folders with a NUL byte in their first 8 KiB').choices(['skip', 'count']).default('skip'));
  return withCommonOptions(command);
}

/**
 * The options of a job over the text of `paths`, from its command line: the inputs selected
 * (notes about them on stderr), checked against --output before anything runs.
 * @param reduceOnCoordinator the benchmark's A/B of the reduce (count only)
 */
export async function textJobOptions(kind: string, paths: string[], options: TextCliOptions, reduceOnCoordinator = false): Promise<CountOptions> {
  if (paths.length === 0) throw new UsageError(`${kind}: no input given (files, directories, globs, or - for stdin)`);
  const connection = resolveConnection(options);
  // obj:// inputs are listed on the server that holds them: --server's, or the embedded one
  // the job then runs on (its store keeps what `tally put` uploaded there).
  const objects = paths.some(isObjectUrl) ? await objectListing(connection, options) : undefined;
  let selection: InputSelection;
  try {
    selection = await selectInputs(paths, { filters: { binary: options.binary, include: options.include, exclude: options.exclude }, listObjects: objects?.list });
  } finally {
    await objects?.close();
  }
  // Before the job: a bad --output would otherwise fail only after it, or replace an input.
  checkOutputFile(options.output, selection.files.map((input) => input.path));
  for (const note of selectionNotes(selection)) process.stderr.write(`${note}\n`);
  // No server given means the embedded default, whose workers are this machine's own.
  const embedded = connection === undefined;
  // What maps at once in the embedded default (its worker processes, and the coordinator's own
  // when it maps beside them); with --server the fleet is not known here.
  const embeddedWorkers = embedded ? embeddedFleet(options.workers).mappers : undefined;
  return {
    inputs: selection.files,
    ...(selection.mergedPaths > 0 ? { mergedPaths: selection.mergedPaths } : {}),
    directory: process.cwd(),
    tokenizer: options.tokenizer,
    caseSensitive: options.caseSensitive === true,
    maxWordBytes: options.maxWordBytes,
    chunkSize:
      options.chunkSize ??
      (kind === 'count'
        ? await defaultChunkSize(selection.files, { tokenizer: options.tokenizer, caseSensitive: options.caseSensitive === true, maxWordBytes: options.maxWordBytes }, defaultTaskTarget(embeddedWorkers))
        : DEFAULT_CHUNK_SIZE),
    workersReadFiles: options.workersReadFiles ?? embedded,
    workersFetchUrls: options.workersFetchUrls ?? embedded,
    reducers: reduceOnCoordinator ? undefined : (options.reducers ?? embeddedWorkers ?? DEFAULT_REDUCERS),
    // The rows the result keeps beside its parts: at least this --top (0: only the default).
    summaryTop: options.top,
  };
}

/** The lister of obj:// inputs: on --server's server, else on the embedded one. */
async function objectListing(connection: ConnectionSettings | undefined, options: CommonOptions): Promise<ObjectListing> {
  const { embeddedObjectLister, objectLister } = await import('../commands/objects.js');
  return connection ? objectLister(connection) : embeddedObjectLister(commandLogger(options));
}

function countCommand(): Command {
  const command = new Command('count').description('count the words of files, directories (recursive), globs, URLs, obj://BUCKET[/PREFIX] (objects stored with tally put), or - for stdin').argument('[paths...]', 'inputs');
  return withTextOptions(command, 'words').action(async (paths: string[], options: TextCliOptions) => {
    // The benchmark's A/B of the reduce: TALLY_REDUCE_ON_COORDINATOR=1 folds every word on
    // the coordinator, as jobs did before reducers ran on the workers.
    const jobOptions = await textJobOptions('count', paths, options, setting('TALLY_REDUCE_ON_COORDINATOR'));
    await runKindJob('count', jobOptions, options, (result, store) => cli.print(result, { format: options.format, top: options.top }, store, options.output, (result as CountResult).job));
  });
}

/** The flags of the options of a job over text. */
export const TEXT_FLAGS = { tokenizer: '--tokenizer', maxWordBytes: '--max-word-bytes', chunkSize: '--chunk-size', reducers: '--reducers' };

/** Prints a count-like result (count, ngrams). */
export async function printTable(result: Json, view: ResultView, store: JobStore, output?: string, job?: string): Promise<void> {
  // Loaded by the commands that print a count (the merge of sorted parts is not small).
  const { printCount } = await import('../count-table.js');
  await printCount(result as CountResult, view, store, output, job);
}

export const cli: KindCli = {
  command: countCommand,
  formats: FORMATS,
  flags: TEXT_FLAGS,
  print: printTable,
};
