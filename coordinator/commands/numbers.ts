/**
 * `tally sum`, `tally primes` and `tally factorial`: the seed lesson's range-sum and factorial
 * exercises, plus a CPU-bound prime count, as distributed jobs.
 */
import { Command } from 'commander';
import { resolve } from 'node:path';
import type { Json } from '../../shared/kinds/kind.js';
import { parseInteger, parsePositiveCount } from '../../shared/integers.js';
import { checkOutputDirectory, counted, formatTable } from '../output.js';
import { formatOption, runKindJob, withCommonOptions, type CommonOptions, parsePath } from './common.js';

interface RangeResult {
  job: string;
  from: string;
  to: string;
  tasks: number;
  sum?: string;
  count?: number;
}

interface FactorialEntry {
  n: string | number;
  digits: number;
  trailingZeros: number;
  leading: string;
  sha256: string;
}

/** Renders a sum, primes or factorial result as table or JSON. */
export function renderNumbers(kind: string, result: Json, format: 'table' | 'json'): string {
  if (format === 'json') return JSON.stringify(result) + '\n';
  if (kind === 'factorial') {
    const { job, results } = result as unknown as { job: string; results: FactorialEntry[] };
    const rows = results.map((r) => [`${r.n}!`, r.digits, r.trailingZeros, r.leading, r.sha256]);
    return formatTable(rows, ['n', 'digits', 'trailing zeros', 'leading digits', 'sha256 of the decimal value']) + `job ${job}\n`;
  }
  const r = result as unknown as RangeResult;
  const what = kind === 'sum' ? `sum of ${r.from}..${r.to}` : `primes in ${r.from}..${r.to}`;
  return `${what} = ${kind === 'sum' ? r.sum : r.count}\n${counted(r.tasks, 'task')} · job ${r.job}\n`;
}

interface RangeCliOptions extends CommonOptions {
  tasks?: string;
  format: 'table' | 'json';
}

function rangeCommand(name: 'sum' | 'primes', description: string): Command {
  const command = new Command(name)
    .description(description)
    .argument('<from>', 'first integer (decimal; _ separators, negatives and 1e9 forms accepted)')
    .argument('<to>', 'last integer, inclusive')
    .option('--tasks <n>', 'split the range into N tasks (default: by size)')
    .addOption(formatOption(['table', 'json']));
  return withCommonOptions(command).action(async (fromText: string, toText: string, options: RangeCliOptions) => {
    const from = parseInteger(fromText, 'FROM');
    const to = parseInteger(toText, 'TO');
    const tasks = options.tasks === undefined ? null : parsePositiveCount(options.tasks, '--tasks');
    const jobOptions = { from: from.toString(), to: to.toString(), tasks };
    // Job kinds load with the command that runs them, not with the CLI.
    const kind = name === 'sum' ? (await import('../../shared/kinds/sum.js')).sumKind : (await import('../../shared/kinds/primes.js')).primesKind;
    await runKindJob(kind, jobOptions, options, (result) => {
      process.stdout.write(renderNumbers(name, result, options.format));
    });
  });
}

export function sumCommand(): Command {
  return rangeCommand('sum', 'exact sum of the integers FROM..TO inclusive, any magnitude');
}

export function primesCommand(): Command {
  return rangeCommand('primes', 'how many primes lie in FROM..TO inclusive');
}

interface FactorialCliOptions extends CommonOptions {
  split?: string;
  output?: string;
  format: 'table' | 'json';
}

export function factorialCommand(): Command {
  const command = new Command('factorial')
    .description('N! for each N: digits, trailing zeros, leading digits, sha256; --output DIR writes DIR/N.txt')
    .argument('<n...>', 'non-negative integers')
    .option('--split <k>', 'sub-range products per N (default: by size)')
    .option('--output <dir>', 'write each full decimal value to DIR/N.txt (atomically)', (v) => parsePath(v, '--output'))
    .addOption(formatOption(['table', 'json']));
  return withCommonOptions(command).action(async (numbers: string[], options: FactorialCliOptions) => {
    const parsed = numbers.map((text) => parseInteger(text, 'N').toString());
    const split = options.split === undefined ? null : parsePositiveCount(options.split, '--split');
    if (options.output) checkOutputDirectory(options.output);
    const jobOptions = { numbers: parsed, split, outputDir: options.output ? resolve(options.output) : null };
    const { factorialKind } = await import('../../shared/kinds/factorial.js');
    await runKindJob(factorialKind, jobOptions, options, (result) => {
      process.stdout.write(renderNumbers('factorial', result, options.format));
    });
  });
}
