/** `tally jobs`: recent jobs from the job records, and deleting them. */
import { Command } from 'commander';
import { formatTable } from '../output.js';
import type { JobRecord } from '../job-store.js';
import { assertJobId } from '../../shared/subjects.js';
import { formatOption, withCommonOptions, withSession, type CommonOptions } from './common.js';

/** Long arguments are cut to keep the table readable; `--format json` has them whole. */
function clip(text: string, max = 48): string {
  return text.length <= max ? text : `${text.slice(0, max - 1)}…`;
}

function describeArgs(record: JobRecord): string {
  const args = record.args as Record<string, unknown> | null;
  if (!args || typeof args !== 'object') return '';
  if (Array.isArray(args.inputs)) {
    const paths = (args.inputs as Array<{ path: string }>).map((input) => input.path);
    return paths.length <= 3 ? paths.join(' ') : `${paths.slice(0, 3).join(' ')} … (${paths.length} files)`;
  }
  if (Array.isArray(args.numbers)) return (args.numbers as string[]).join(' ');
  if (typeof args.from === 'string' && typeof args.to === 'string') return `${args.from} ${args.to}`;
  return '';
}

function describeProgress(record: JobRecord): string {
  const { tasksDone, tasksTotal } = record.progress;
  return `${tasksDone}/${tasksTotal ?? '?'}`;
}

/** Renders job records as `tally jobs` prints them. */
export function renderJobs(records: JobRecord[], format: 'table' | 'json'): string {
  if (format === 'json') return JSON.stringify(records) + '\n';
  if (records.length === 0) return '(no jobs)\n';
  const rows = records.map((r) => [
    r.id,
    r.kind,
    clip(describeArgs(r)),
    r.status,
    describeProgress(r),
    r.created.replace('T', ' ').replace(/\.\d+Z$/, 'Z'),
    r.elapsedMs === null ? '' : `${(r.elapsedMs / 1000).toFixed(2)}s`,
    r.error ?? '',
  ]);
  return formatTable(rows, ['job', 'kind', 'arguments', 'status', 'tasks', 'created', 'elapsed', 'error']);
}

interface JobsCliOptions extends CommonOptions {
  format: 'table' | 'json';
  delete?: string[];
  limit: number;
}

export function jobsCommand(): Command {
  const command = new Command('jobs')
    .description('recent jobs: id, kind, arguments, status, progress, times')
    .addOption(formatOption(['table', 'json']))
    .option('--delete <job...>', 'delete these finished jobs (record and result)')
    .option('--limit <n>', 'show at most N jobs', (v) => Number(v), 50);
  return withCommonOptions(command).action(async (options: JobsCliOptions) => {
    const toDelete = (options.delete ?? []).map(assertJobId);
    await withSession(
      options,
      async (session) => {
        if (toDelete.length > 0) {
          for (const id of toDelete) await session.store.delete(id);
          process.stdout.write(`deleted ${toDelete.join(' ')}\n`);
          return;
        }
        const records = (await session.store.list()).slice(0, options.limit);
        process.stdout.write(renderJobs(records, options.format));
      },
      0,
    );
  });
}
