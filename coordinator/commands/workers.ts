/** `tally workers`: live worker processes, discovered with the NATS services protocol ($SRV). */
import { Command } from '../commander.js';
import type { NatsConnection } from '@nats-io/transport-node';
import { WORKER_SERVICE } from '../../shared/subjects.js';
import { isNoResponders } from '../../shared/nats/errors.js';
import type { WorkerStats } from '../../worker/task-loop.js';
import { formatTable, loadDisplayWidth } from '../output.js';
import { formatOption, withCommonOptions, withSession, type CommonOptions } from './common.js';
import { servicesLib } from '../../shared/nats/client.js';

/** Asks every worker process for its stats; resolves after `waitMs` with whoever answered. */
export async function discoverWorkers(nc: NatsConnection, waitMs = 1000): Promise<WorkerStats[]> {
  // Loaded here only: the services client (with its own copy of the NATS core) is large.
  const { Svcm } = servicesLib();
  const client = new Svcm(nc as unknown as ConstructorParameters<typeof Svcm>[0]).client({ strategy: 'stall', stall: 300, maxWait: waitMs });
  const workers: WorkerStats[] = [];
  try {
    for await (const stats of await client.stats(WORKER_SERVICE)) {
      const data = stats.endpoints?.[0]?.data as WorkerStats | undefined;
      if (data && typeof data.pid === 'number') workers.push(data);
    }
  } catch (error) {
    // Nobody listening on $SRV.STATS.tally-worker simply means no worker is running.
    if (!isNoResponders(error)) throw error;
  }
  return workers.sort((a, b) => (a.host === b.host ? a.pid - b.pid : a.host < b.host ? -1 : 1));
}

export function renderWorkers(workers: WorkerStats[], format: 'table' | 'json'): string {
  if (format === 'json') return JSON.stringify(workers) + '\n';
  if (workers.length === 0) return '(no workers)\n';
  const rows = workers.map((w) => [w.name, w.host, w.pid, w.tasksDone, w.tasksFailed, w.busy ? `busy ${w.current ?? ''}`.trim() : 'idle', w.started]);
  return formatTable(rows, ['worker', 'host', 'pid', 'tasks', 'failed', 'state', 'started']);
}

interface WorkersCliOptions extends CommonOptions {
  format: 'table' | 'json';
  wait: number;
}

export function workersCommand(): Command {
  const command = new Command('workers')
    .description('live worker processes: name, host, pid, tasks done, busy/idle')
    .addOption(formatOption(['table', 'json']))
    .option('--wait <ms>', 'how long to collect answers', (v) => Number(v), 1000);
  return withCommonOptions(command).action(async (options: WorkersCliOptions) => {
    await withSession(
      options,
      async (session) => {
        const workers = await discoverWorkers(session.nc, options.wait);
        // Host names can be anything a machine is called.
        if (options.format === 'table') await loadDisplayWidth();
        process.stdout.write(renderWorkers(workers, options.format));
      },
      0,
    );
  });
}
