/**
 * The command line of the kinds over a range of integers (`tally sum`, `tally primes`): two
 * bounds, --tasks, and a result that is one number.
 */
import { Command } from '../commander.js';
import type { Json } from '../../shared/json.js';
import { parseInteger, parsePositiveCount } from '../../shared/integers.js';
import type { RangeOptions } from '../../shared/kinds/integer-range.js';
import { counted, emit, type Format } from '../output.js';
import type { KindCli } from '../kind-cli.js';
import { formatOption, runKindJob, withCommonOptions, type CommonOptions } from '../commands/common.js';

interface RangeCliOptions extends CommonOptions {
  tasks?: string;
  format: 'table' | 'json';
}

/** What a range kind's result holds (the number is `sum` or `count`). */
interface RangeResult {
  job: string;
  from: string;
  to: string;
  tasks: number;
}

const FORMATS: Format[] = ['table', 'json'];

/**
 * The KindCli of a range kind.
 * @param name the kind and its command
 * @param description the command's help line
 * @param line the result in words: "sum of 1..10 = 55"
 */
export function rangeKindCli(name: string, description: string, line: (result: RangeResult & Record<string, Json>) => string): KindCli {
  const cli: KindCli = {
    formats: FORMATS,
    flags: { from: 'FROM', to: 'TO', tasks: '--tasks' },
    command() {
      const command = new Command(name)
        .description(description)
        .argument('<from>', 'first integer (decimal; _ separators, negatives and 1e9 forms accepted)')
        .argument('<to>', 'last integer, inclusive')
        .option('--tasks <n>', 'split the range into N tasks (default: by size)')
        .addOption(formatOption(FORMATS));
      return withCommonOptions(command).action(async (fromText: string, toText: string, options: RangeCliOptions) => {
        const from = parseInteger(fromText, 'FROM');
        const to = parseInteger(toText, 'TO');
        const tasks = options.tasks === undefined ? null : parsePositiveCount(options.tasks, '--tasks');
        const jobOptions: RangeOptions = { from: from.toString(), to: to.toString(), tasks };
        await runKindJob(name, jobOptions, options, (result, store) => cli.print(result, { format: options.format, top: 0 }, store));
      });
    },
    print(result, view, _store, output, job) {
      if (view.format === 'json') return emit(JSON.stringify(result) + '\n', output, job);
      const r = result as RangeResult & Record<string, Json>;
      emit(`${line(r)}\n${counted(r.tasks, 'task')} · job ${r.job}\n`, output, job);
    },
  };
  return cli;
}
