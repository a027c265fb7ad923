/** `tally worker`: runs a supervisor with N worker processes until SIGTERM/SIGINT. */
import { Command } from 'commander';
import { availableParallelism } from 'node:os';
import { connectToNats, jetstreamManagerFor, parseServers } from '../../shared/nats/connection.js';
import { ensureTaskTopology, replicasFor } from '../../shared/nats/topology.js';
import { createLogger } from '../../shared/log.js';
import { UsageError } from '../../shared/errors.js';
import { Supervisor } from '../../worker/supervisor.js';
import { parseCount } from './common.js';

interface WorkerCliOptions {
  server?: string;
  processes?: number;
  logLevel?: string;
}

export function workerCommand(): Command {
  return new Command('worker')
    .description('run worker processes that pull tasks from the server until stopped')
    .option('--server <url>', 'NATS server URL(s), comma-separated (default: $NATS_URL)')
    .option('--processes <n>', 'worker processes (default: number of cores)', (v) => parseCount(v, '--processes', 1, 1024))
    .option('--log-level <level>', 'pino log level (default: $LOG_LEVEL, else info)')
    .action(async (options: WorkerCliOptions) => {
      const url = options.server ?? process.env.NATS_URL;
      if (!url) throw new UsageError('worker: give --server URL (or set NATS_URL); workers join a running server');
      const connection = { servers: parseServers(url) };
      const logger = createLogger({ level: options.logLevel, fallback: 'info', bindings: { role: 'supervisor' } });
      // Fail fast, naming the server, before forking anything.
      const nc = await connectToNats({ ...connection, name: 'tally-supervisor' });
      try {
        await ensureTaskTopology(await jetstreamManagerFor(nc, connection), { replicas: replicasFor(nc) });
      } finally {
        await nc.close();
      }
      const supervisor = new Supervisor({ connection, processes: options.processes ?? availableParallelism(), logger, logLevel: options.logLevel });
      supervisor.start();
      logger.info({ processes: supervisor.processes, server: url.replace(/\/\/[^@/]*@/, '//***@') }, 'workers starting');
      await new Promise<void>((resolve) => {
        const stop = (signal: string) => {
          logger.info({ signal }, 'stopping: each process finishes its task in hand');
          void supervisor.stop().then(resolve);
        };
        process.once('SIGTERM', () => stop('SIGTERM'));
        process.once('SIGINT', () => stop('SIGINT'));
      });
      logger.info('workers stopped');
    });
}
