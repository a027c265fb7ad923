/** `tally factorial N...`: the seed lesson's factorial exercise, every digit exact. */
import { Command } from '../commander.js';
import { resolve } from 'node:path';
import { parseInteger, parsePositiveCount } from '../../shared/integers.js';
import type { FactorialOptions, FactorialResult } from '../../shared/kinds/factorial.js';
import { checkOutputDirectory, emit, formatTable, type Format } from '../output.js';
import type { KindCli } from '../kind-cli.js';
import { formatOption, runKindJob, withCommonOptions, type CommonOptions, parsePath } from '../commands/common.js';

interface FactorialCliOptions extends CommonOptions {
  split?: string;
  output?: string;
  format: 'table' | 'json';
}

const FORMATS: Format[] = ['table', 'json'];

function factorialCommand(): Command {
  const command = new Command('factorial')
    .description('N! for each N: digits, trailing zeros, leading digits, sha256; --output DIR writes DIR/N.txt')
    .argument('<n...>', 'non-negative integers')
    .option('--split <k>', 'sub-range products per N (default: by size)')
    .option('--output <dir>', 'write each full decimal value to DIR/N.txt (atomically)', (v) => parsePath(v, '--output'))
    .addOption(formatOption(FORMATS));
  return withCommonOptions(command).action(async (numbers: string[], options: FactorialCliOptions) => {
    const parsed = numbers.map((text) => parseInteger(text, 'N').toString());
    const split = options.split === undefined ? null : parsePositiveCount(options.split, '--split');
    if (options.output) checkOutputDirectory(options.output);
    const jobOptions: FactorialOptions = { numbers: parsed, split, outputDir: options.output ? resolve(options.output) : null };
    // The decimal ladder of a large N needs only N: start building it while the job starts.
    (await import('../../shared/kinds/factorial.js')).prepareFactorial(parsed);
    // --output names the directory of the values: the table goes to stdout.
    await runKindJob('factorial', jobOptions, options, (result, store) => cli.print(result, { format: options.format, top: 0 }, store));
  });
}

export const cli: KindCli = {
  command: factorialCommand,
  formats: FORMATS,
  flags: { numbers: 'N', split: '--split' },
  print(result, view, _store, output, job) {
    if (view.format === 'json') return emit(JSON.stringify(result) + '\n', output, job);
    const { job: id, results } = result as unknown as FactorialResult;
    const rows = results.map((r) => [`${r.n}!`, r.digits, r.trailingZeros, r.leading, r.sha256]);
    emit(formatTable(rows, ['n', 'digits', 'trailing zeros', 'leading digits', 'sha256 of the decimal value']) + `job ${id}\n`, output, job);
  },
};
