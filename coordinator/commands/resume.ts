/**
 * `tally resume JOB_ID`: finishes a job whose coordinator died (killed, machine lost), from its
 * job record and the partial results already in the results stream.
 */
import { Command } from '../commander.js';
import { statSync } from 'node:fs';
import { InputError, UsageError } from '../../shared/errors.js';
import { loadKind } from '../../shared/kinds/index.js';
import { isUrl } from '../../shared/text/url-input.js';
import { isObjectUrl } from '../../shared/text/object-input.js';
import { assertJobId } from '../../shared/subjects.js';
import { checkOutputFile, type Format } from '../output.js';
import { coordinatorLiveness } from '../liveness.js';
import { checkFormat, loadKindCli, printResult } from '../kind-cli.js';
import type { Json } from '../../shared/json.js';
import type { JobStore } from '../job-store.js';
import { formatOption, parseCount, runKindJob, storedInputFiles, withCommonOptions, withSession, type CommonOptions, parsePath } from './common.js';

interface ResumeCliOptions extends CommonOptions {
  format: Format;
  top: number;
  output?: string;
  force?: boolean;
}

export function resumeCommand(): Command {
  const command = new Command('resume')
    .description('finish a job whose coordinator died, with the same result')
    .argument('<job>', 'job id (see tally jobs)')
    .option('--top <n>', 'count jobs: words to show, 0 = every word', (v) => parseCount(v, '--top', 0, Number.MAX_SAFE_INTEGER), 20)
    .addOption(formatOption(['table', 'json', 'tsv', 'csv']))
    .option('--output <file>', 'write the result to FILE (atomically) instead of stdout; - is stdout; not one of the inputs', (v) => parsePath(v, '--output'))
    .option('--force', 'take the job over even if its coordinator may still be running (on this machine or another); that one then stops without touching the job');
  return withCommonOptions(command).action(async (job: string, options: ResumeCliOptions) => {
    assertJobId(job);
    checkOutputFile(options.output);
    const found = await withSession(
      options,
      async (session) => {
        const stored = await session.store.read(job);
        return stored && { stored, args: await session.store.args(stored.record) };
      },
      0,
    );
    if (!found) throw new UsageError(`no job '${job}' (see tally jobs)`);
    const { stored, args: jobArgs } = found;
    const { record } = stored;
    // Resuming reads the inputs again: the output may not replace one, before or after.
    checkOutputFile(options.output, await storedInputFiles(record.kind, jobArgs));
    checkFormat(record.kind, await loadKindCli(record.kind), options.format);
    const print = (result: Json, store: JobStore) => printResult(record.kind, result, { format: options.format, top: options.top }, store, options.output, job);
    if (record.status === 'done') {
      await withSession(
        options,
        async (session) => {
          const result = await session.store.getResult(job);
          if (result === null) throw new UsageError(`job '${job}' is done but its result is no longer stored`);
          await print(result, session.store);
        },
        0,
      );
      return;
    }
    if (record.status !== 'running') {
      throw new UsageError(`job '${job}' was ${record.status}${record.error ? ` (${record.error})` : ''}; resume is for jobs whose coordinator died — submit it again`);
    }
    // Taking over is safe even from a coordinator that lives on (it stops when it finds the job
    // taken), but it should not happen by accident: one that may be alive needs --force.
    const liveness = coordinatorLiveness(record.coordinator);
    if (!options.force && liveness === 'alive') {
      throw new UsageError(`job '${job}' is still being run by process ${record.coordinator}; use --force to take it over`);
    }
    if (!options.force && liveness === 'unknown') {
      throw new UsageError(`job '${job}' is run by ${record.coordinator}, on another machine, which may still be running it; use --force to take it over`);
    }
    const kind = await loadKind(record.kind);
    if (!kind) throw new UsageError(`job '${job}' has unknown kind '${record.kind}'`);
    for (const input of kind.files?.(jobArgs) ?? []) {
      if (input.path === '-') throw new UsageError(`job '${job}' read stdin, which cannot be read again`);
      // An object's size and time are its upload's: resume would need the bucket to check them.
      if (isObjectUrl(input.path)) throw new UsageError(`job '${job}' read ${input.path}, which may have changed since; submit the job again`);
      if (isUrl(input.path)) throw new UsageError(`job '${job}' read ${input.path}, which may have changed since; submit the job again`);
      // Tasks are cut again from the files: the same bytes must give the same task ids. Paths
      // are read from the directory the job was submitted in, wherever resume runs.
      const st = statSync(input.location, { throwIfNoEntry: false, bigint: true });
      const size = st === undefined ? undefined : Number(st.size);
      if (st === undefined || size !== input.size) throw new InputError(input.path, `changed since job '${job}' started (size ${input.size} → ${size ?? 'missing'})`);
      if (input.mtimeMs !== undefined && Number(st.mtimeMs) !== input.mtimeMs) {
        throw new InputError(input.path, `changed since job '${job}' started (modified ${new Date(Number(st.mtimeMs)).toISOString()})`);
      }
    }
    await runKindJob(record.kind, jobArgs, options, print, { resume: stored });
  });
}
