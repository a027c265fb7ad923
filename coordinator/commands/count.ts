/** `tally count`: the word counter's command line and its output formats. */
import { Command, Option } from 'commander';
import type { CountOptions, CountResult } from '../../shared/kinds/count.js';
import { UsageError } from '../../shared/errors.js';
import { resolveConnection } from '../../shared/nats/connection.js';
import { selectInputs, selectionNotes } from '../inputs.js';
import { checkOutputFile, counted, csvField, emit, formatTable, type Format } from '../output.js';
import { formatOption, parseByteSize, parseCount, runKindJob, withCommonOptions, type CommonOptions, parsePath } from './common.js';

export const DEFAULT_CHUNK_SIZE = 1024 * 1024;
export const MIN_CHUNK_SIZE = 16;
export const MAX_WORD_BYTES_LIMIT = 1024 * 1024;

export interface CountView {
  format: Format;
  /** Words to show; 0 shows every word. */
  top: number;
}

/** Renders a count result the way `tally count` and `tally result` print it. */
export function renderCount(result: CountResult, view: CountView): string {
  const counts = view.top === 0 ? result.counts : result.counts.slice(0, view.top);
  switch (view.format) {
    case 'json':
      return JSON.stringify({ ...result, counts }) + '\n';
    case 'tsv':
      return counts.map(([word, count]) => `${word}\t${count}\n`).join('');
    case 'csv':
      return 'word,count\n' + counts.map(([word, count]) => `${csvField(word)},${count}\n`).join('');
    case 'table': {
      const rows = counts.map(([word, count], i) => [i + 1, word, count] as Array<string | number>);
      const table = rows.length > 0 ? formatTable(rows, ['#', 'word', 'count']) : '(no words)\n';
      const totals =
        `${counted(result.totalWords, 'word')}, ${result.uniqueWords} unique, ${result.overlongWords} overlong` +
        ` · ${counted(result.files, 'file')}${result.mergedPaths ? ` (${counted(result.mergedPaths, 'repeated path')} counted once)` : ''}, ${counted(result.bytes, 'byte')}, ${counted(result.tasks, 'task')} · job ${result.job}\n`;
      return table + totals;
    }
  }
}

interface CountCliOptions extends CommonOptions {
  tokenizer: CountOptions['tokenizer'];
  caseSensitive?: boolean;
  top: number;
  format: Format;
  output?: string;
  chunkSize?: number;
  maxWordBytes: number;
  workersReadFiles?: boolean;
}

export function countCommand(): Command {
  const command = new Command('count')
    .description('count the words of files, directories (recursive), globs, or - for stdin')
    .argument('[paths...]', 'inputs')
    .addOption(new Option('--tokenizer <name>', 'what a word is').choices(['unicode', 'whitespace']).default('unicode'))
    .option('--case-sensitive', 'keep case (default: words are folded with toLowerCase)')
    .option('--top <n>', 'words to show, 0 = every word', (v) => parseCount(v, '--top', 0, Number.MAX_SAFE_INTEGER), 20)
    .addOption(formatOption(['table', 'json', 'tsv', 'csv']))
    .option('--output <file>', 'write the result to FILE (atomically) instead of stdout; - is stdout; not one of the inputs', (v) => parsePath(v, '--output'))
    .option('--chunk-size <bytes>', `bytes per task (default 1 MiB; minimum ${MIN_CHUNK_SIZE}; 64K, 1M accepted)`, (v) =>
      parseByteSize(v, '--chunk-size', MIN_CHUNK_SIZE, 16 * 1024 * 1024),
    )
    .option('--max-word-bytes <n>', 'longer words count as overlong, not in the table', (v) => parseCount(v, '--max-word-bytes', 1, MAX_WORD_BYTES_LIMIT), 1024)
    .option('--workers-read-files', 'tasks name the file and byte range and workers read it (default with the embedded server; with --server, every worker must share the files and run with --read-files)')
    .option('--no-workers-read-files', 'every task carries its chunk of text (default with --server)');
  return withCommonOptions(command).action(async (paths: string[], options: CountCliOptions) => {
    if (paths.length === 0) throw new UsageError('count: no input given (files, directories, globs, or - for stdin)');
    const selection = await selectInputs(paths);
    // Before the job: a bad --output would otherwise fail only after it, or replace an input.
    checkOutputFile(options.output, selection.files.map((input) => input.path));
    for (const note of selectionNotes(selection)) process.stderr.write(`${note}
`);
    const jobOptions: CountOptions = {
      inputs: selection.files,
      ...(selection.mergedPaths > 0 ? { mergedPaths: selection.mergedPaths } : {}),
      directory: process.cwd(),
      tokenizer: options.tokenizer,
      caseSensitive: options.caseSensitive === true,
      maxWordBytes: options.maxWordBytes,
      chunkSize: options.chunkSize ?? DEFAULT_CHUNK_SIZE,
      // No server given means the embedded default, whose workers are this machine's own.
      workersReadFiles: options.workersReadFiles ?? resolveConnection(options) === undefined,
    };
    // Job kinds load with the command that runs them, not with the CLI.
    const { countKind } = await import('../../shared/kinds/count.js');
    await runKindJob(countKind, jobOptions, options, (result) =>
      emit(renderCount(result as CountResult, { format: options.format, top: options.top }), options.output, (result as CountResult).job),
    );
  });
}
