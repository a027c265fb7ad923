/** `tally jobs`: recent jobs from the job records, and deleting them. */
import { Command } from '../commander.js';
import { counted, displayWidth, formatTable, loadDisplayWidth, terminalSafe } from '../output.js';
import type { JobRecord, JobStore } from '../job-store.js';
import { loadKind } from '../../shared/kinds/index.js';
import { coordinatorLiveness } from '../liveness.js';
import { UsageError } from '../../shared/errors.js';
import { MAX_PARTITIONS, assertJobId, partObjectName } from '../../shared/subjects.js';
import { formatOption, parseCount, withCommonOptions, withSession, type CommonOptions } from './common.js';

/**
 * Long arguments are cut to keep the table readable; `--format json` has them whole. Measured
 * as the table shows them (escaped, wide characters 2 columns), cut between code points.
 */
function clip(text: string, max = 48): string {
  if (displayWidth(terminalSafe(text)) <= max) return text;
  let kept = '';
  let width = 0;
  for (const ch of text) {
    width += displayWidth(terminalSafe(ch));
    if (width > max - 1) break;
    kept += ch;
  }
  return `${kept}…`;
}

/** The status, and how many tasks a job skipped (`--skip-failed`): "done, 2 tasks skipped". */
function describeStatus(record: JobRecord): string {
  const skipped = record.skipped ?? 0;
  return skipped > 0 ? `${record.status}, ${counted(skipped, 'task')} skipped` : record.status;
}

function describeProgress(record: JobRecord): string {
  const { tasksDone, tasksTotal } = record.progress;
  return `${tasksDone}/${tasksTotal ?? '?'}`;
}

/**
 * Records of older versions carry no summary of their arguments: their kind writes one from
 * the arguments (kept in those records themselves).
 */
async function summarizeArgs(records: JobRecord[]): Promise<void> {
  for (const record of records) {
    if (record.argsSummary !== undefined) continue;
    const kind = await loadKind(record.kind);
    try {
      record.argsSummary = kind && record.args !== null ? kind.describe(record.args) : '';
    } catch {
      record.argsSummary = ''; // arguments this version cannot read
    }
  }
}

/** The reduce partitions of a job whose kind has them (each may have stored a part); else undefined. */
async function partitionsOf(record: JobRecord, store: JobStore): Promise<number | undefined> {
  const kind = await loadKind(record.kind);
  if (!kind?.partitioned) return undefined;
  const args = await store.args(record).catch(() => null);
  if (args === null || typeof args !== 'object') return undefined;
  try {
    return kind.partitioned.partitions(args);
  } catch {
    return undefined;
  }
}

/** Renders job records as `tally jobs` prints them. */
export function renderJobs(records: JobRecord[], format: 'table' | 'json'): string {
  if (format === 'json') return JSON.stringify(records) + '\n';
  if (records.length === 0) return '(no jobs)\n';
  const rows = records.map((r) => [
    r.id,
    r.kind,
    clip(r.argsSummary ?? ''),
    describeStatus(r),
    describeProgress(r),
    r.created.replace('T', ' ').replace(/\.\d+Z$/, 'Z'),
    r.elapsedMs === null ? '' : `${(r.elapsedMs / 1000).toFixed(2)}s`,
    r.error ?? '',
  ]);
  return formatTable(rows, ['job', 'kind', 'arguments', 'status', 'tasks', 'created', 'elapsed', 'error']);
}

/**
 * One job as `tally jobs JOB` prints it: its row, then its dead-letter record (every task that did
 * not simply succeed on its first delivery, with each event's worker, delivery and error).
 */
export function renderJob(record: JobRecord, format: 'table' | 'json'): string {
  if (format === 'json') return JSON.stringify(record) + '\n';
  let out = renderJobs([record], 'table');
  const incidents = record.incidents ?? [];
  const omitted = record.incidentsOmitted ?? 0;
  if (incidents.length === 0 && omitted === 0) {
    if (record.status !== 'running') out += '\nevery task succeeded on its first delivery\n';
    return out;
  }
  const time = (iso: string) => iso.replace('T', ' ').replace(/\.\d+Z$/, 'Z');
  out += `\ntasks that did not simply succeed (${incidents.length + omitted}${omitted > 0 ? `, the first ${incidents.length} kept` : ''}):\n`;
  for (const incident of incidents) {
    out += `  task ${incident.task}  ${terminalSafe(incident.input || '?')}  ${incident.outcomes.join(', ')}\n`;
    for (const event of incident.events) {
      const who = event.worker ? ` ${event.what === 'backed up' ? 'straggler' : 'worker'} ${terminalSafe(event.worker)}` : '';
      const which = event.delivery !== undefined ? ` (delivery ${event.delivery})` : '';
      out += `    ${time(event.at)}  ${event.what}${which}${who}${event.error ? `: ${terminalSafe(event.error)}` : ''}\n`;
    }
  }
  return out;
}

interface JobsCliOptions extends CommonOptions {
  format: 'table' | 'json';
  delete?: string[];
  limit: number;
  retention?: number;
  force?: boolean;
}

const UNITS: Record<string, number> = { m: 60_000, h: 3_600_000, d: 86_400_000 };

/** Parses 7d, 36h, 90m into milliseconds (at least one minute). */
export function parseDuration(value: string): number {
  const match = /^(\d+)([mhd])$/.exec(value.trim());
  if (!match || Number(match[1]) === 0) throw new UsageError(`--retention: '${value}' is not a duration like 7d, 36h or 90m`);
  return Number(match[1]) * UNITS[match[2]!]!;
}

function formatDuration(ms: number): string {
  if (ms % UNITS.d! === 0) return `${ms / UNITS.d!}d`;
  if (ms % UNITS.h! === 0) return `${ms / UNITS.h!}h`;
  return `${Math.round(ms / UNITS.m!)}m`;
}

/**
 * Refuses to delete a running job unless its coordinator is gone: a job whose coordinator died
 * and that will not be resumed. `force` also takes one whose coordinator looks alive (a reused
 * pid) or ran on another machine.
 */
function checkDeletable(record: JobRecord, force: boolean): void {
  if (record.status !== 'running' || force) return;
  const liveness = coordinatorLiveness(record.coordinator);
  if (liveness === 'alive') throw new UsageError(`job '${record.id}' is still being run by process ${record.coordinator}; stop it there (Ctrl-C) first; nothing deleted`);
  if (liveness === 'unknown') throw new UsageError(`job '${record.id}' is run by ${record.coordinator}, on another machine; delete it with --force once that coordinator is gone; nothing deleted`);
}

export function jobsCommand(): Command {
  const command = new Command('jobs')
    .description('recent jobs: id, kind, arguments, status, progress, times; with JOB, that job and every task of it that failed, was redelivered, backed up or skipped')
    .argument('[job]', 'show this job in detail')
    .addOption(formatOption(['table', 'json']))
    .option('--delete <job...>', 'delete these jobs (record and result): finished ones, or running ones whose coordinator died (what they left on the server goes too)')
    .option('--force', 'with --delete: also a running job whose coordinator looks alive or ran on another machine (make sure it is gone)')
    .option('--limit <n>', 'show at most N jobs', (v) => parseCount(v, '--limit', 1, 1_000_000), 50)
    .option('--retention <duration>', 'keep job records and results this long from now on (e.g. 7d, 36h; default 7d)', parseDuration);
  return withCommonOptions(command).action(async (job: string | undefined, options: JobsCliOptions) => {
    const shown = job === undefined ? undefined : assertJobId(job);
    if (shown !== undefined && (options.delete !== undefined || options.retention !== undefined)) throw new UsageError('give a job to show, or --delete / --retention, not both');
    const toDelete = [...new Set((options.delete ?? []).map(assertJobId))];
    if (toDelete.length > 0 && options.retention !== undefined) throw new UsageError('give --delete or --retention, not both');
    await withSession(
      options,
      async (session) => {
        if (options.retention !== undefined) {
          const { JobStore } = await import('../job-store.js');
          await JobStore.setRetention(session.jsm, options.retention);
          process.stdout.write(`job records and results are kept ${formatDuration(await JobStore.retention(session.jsm))}\n`);
          return;
        }
        if (toDelete.length > 0) {
          // Every job is looked at before any is deleted: one that may not be deleted stops all.
          const records = await Promise.all(toDelete.map((id) => session.store.get(id)));
          const missing = toDelete.filter((_id, i) => records[i] === null);
          if (missing.length > 0) throw new UsageError(`no job ${missing.map((id) => `'${id}'`).join(', ')}; nothing deleted`);
          const found = records as JobRecord[];
          for (const record of found) checkDeletable(record, options.force === true);
          for (const record of found) {
            // A running job here is one whose coordinator died: what it left on the server goes too.
            const abandoned = record.status === 'running';
            if (abandoned) await (await import('../job-runner.js')).discardAbandonedJob(session.nc, session.jsm, record.id);
            // Parts its reducers may have stored before it was abandoned or failed.
            const reducers = await partitionsOf(record, session.store);
            const parts = typeof reducers === 'number' && Number.isSafeInteger(reducers) && reducers > 0 && reducers <= MAX_PARTITIONS ? Array.from({ length: reducers }, (_, p) => partObjectName(record.id, p)) : undefined;
            await session.store.delete(record.id, { abandoned, parts });
          }
          process.stdout.write(`deleted ${toDelete.join(' ')}\n`);
          return;
        }
        if (shown !== undefined) {
          const record = await session.store.get(shown);
          if (!record) throw new UsageError(`no job '${shown}' ${session.isEmbedded ? 'in the local store' : `on ${session.server}`} (see tally jobs)`);
          await summarizeArgs([record]);
          if (options.format === 'table') await loadDisplayWidth();
          process.stdout.write(renderJob(record, options.format));
          return;
        }
        const records = (await session.store.list()).slice(0, options.limit);
        await summarizeArgs(records);
        if (options.format === 'table') await loadDisplayWidth();
        process.stdout.write(renderJobs(records, options.format));
      },
      0,
    );
  });
}
