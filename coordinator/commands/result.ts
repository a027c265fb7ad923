/** `tally result JOB_ID`: prints the stored result of a finished job, as the job printed it. */
import { Command } from '../commander.js';
import type { Json } from '../../shared/json.js';
import { UsageError, JobFailedError } from '../../shared/errors.js';
import { assertJobId } from '../../shared/subjects.js';
import { checkOutputFile, type Format } from '../output.js';
import { dataDirectory } from '../embedded/data-dir.js';
import { checkFormat, loadKindCli, printResult } from '../kind-cli.js';
import { formatOption, parseCount, storedInputFiles, withCommonOptions, withSession, type CommonOptions, parsePath } from './common.js';

interface ResultCliOptions extends CommonOptions {
  format: Format;
  top: number;
  output?: string;
}

export function resultCommand(): Command {
  const command = new Command('result')
    .description('the stored result of a finished job')
    .argument('<job>', 'job id (see tally jobs)')
    .option('--top <n>', 'count jobs: words to show, 0 = every word', (v) => parseCount(v, '--top', 0, Number.MAX_SAFE_INTEGER), 20)
    .addOption(formatOption(['table', 'json', 'tsv', 'csv']))
    .option('--output <file>', 'write the result to FILE (atomically) instead of stdout; - is stdout; not one of the inputs', (v) => parsePath(v, '--output'));
  return withCommonOptions(command).action(async (job: string, options: ResultCliOptions) => {
    assertJobId(job);
    checkOutputFile(options.output);
    await withSession(
      options,
      async (session) => {
        const record = await session.store.get(job);
        // An embedded server's address changes every run: its store is what names the place.
        if (!record) throw new UsageError(`no job '${job}' ${session.isEmbedded ? `in ${dataDirectory()}` : `on ${session.server}`} (see tally jobs)`);
        checkOutputFile(options.output, await storedInputFiles(record.kind, await session.store.args(record)));
        checkFormat(record.kind, await loadKindCli(record.kind), options.format);
        if (record.status === 'failed') throw new JobFailedError(job, record.error ?? 'unknown error');
        if (record.status !== 'done') throw new UsageError(`job '${job}' is ${record.status}; it has no result`);
        const result: Json | null = await session.store.getResult(job);
        if (result === null) throw new UsageError(`the result of job '${job}' is no longer stored`);
        await printResult(record.kind, result, { format: options.format, top: options.top }, session.store, options.output, job);
      },
      0,
    );
  });
}
