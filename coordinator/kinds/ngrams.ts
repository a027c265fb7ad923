/** `tally ngrams N paths…`: count's command line with N, and count's table of rows. */
import { Command } from '../commander.js';
import { parseCount, runKindJob } from '../commands/common.js';
import type { NgramsOptions, NgramsResult } from '../../shared/kinds/ngrams.js';
import { MAX_NGRAM } from '../../shared/limits.js';
import type { KindCli } from '../kind-cli.js';
import { FORMATS, TEXT_FLAGS, printTable, textJobOptions, withTextOptions, type TextCliOptions } from './count.js';

function ngramsCommand(): Command {
  const command = new Command('ngrams')
    .description('count the word n-grams (N consecutive words, within a file) of files, directories, globs, URLs, obj://BUCKET[/PREFIX], or - for stdin')
    .argument('<n>', `words per n-gram (1..${MAX_NGRAM}; 2 counts pairs of words)`)
    .argument('[paths...]', 'inputs');
  return withTextOptions(command, 'n-grams').action(async (nText: string, paths: string[], options: TextCliOptions) => {
    const n = parseCount(nText, 'N', 1, MAX_NGRAM);
    const jobOptions: NgramsOptions = { ...(await textJobOptions('ngrams', paths, options)), n };
    await runKindJob('ngrams', jobOptions, options, (result, store) => cli.print(result, { format: options.format, top: options.top }, store, options.output, (result as NgramsResult).job));
  });
}

export const cli: KindCli = {
  command: ngramsCommand,
  formats: FORMATS,
  flags: { ...TEXT_FLAGS, n: 'N' },
  print: printTable,
};
