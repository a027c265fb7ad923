/** `tally worker`: runs a supervisor with N worker processes until SIGTERM, SIGINT or SIGHUP. */
import { Command } from '../commander.js';
import { availableParallelism } from 'node:os';
import { displayServers, resolveConnection, type ConnectionFlags, type ConnectionSettings } from '../../shared/nats/connection-settings.js';
import { connectToNats, jetstreamManagerFor } from '../../shared/nats/connection.js';
import { createLogger, type Logger } from '../../shared/log.js';
import { UsageError } from '../../shared/errors.js';
import { setUpWithRetry } from '../../shared/nats/retry.js';
import { Supervisor } from '../../worker/supervisor.js';
import { explainNatsError, parseCount, withConnectionOptions } from './common.js';

interface WorkerCliOptions extends ConnectionFlags {
  server?: string;
  processes?: number;
  logLevel?: string;
  readFiles?: boolean;
  fetchUrls?: boolean;
}

const RETRY_MS = 2000;

/**
 * Connects once as the supervisor, failing fast with what failed (server, credentials, TLS,
 * permissions), and waits while tally's streams do not exist yet and this user may not create
 * them (a least-privilege worker started before any coordinator). False when stopped meanwhile.
 */
async function preflight(connection: ConnectionSettings, logger: Logger, stopped: () => boolean): Promise<boolean> {
  try {
    const { MISSING_TOPOLOGY, bindWorkerTopology, replicasFor } = await import('../../shared/nats/topology.js');
    const nc = await connectToNats({ ...connection, name: 'tally-supervisor' });
    try {
      const jsm = await jetstreamManagerFor(nc, connection);
      for (let waiting = false; !stopped(); waiting = true) {
        // Tries to create it once; then only looks (a denied create is an error line in the server's log).
        const bound = await setUpWithRetry("tally's task streams", () => bindWorkerTopology(jsm, { replicas: replicasFor(nc), create: !waiting }), logger);
        if (bound !== 'missing') return true;
        if (!waiting) logger.warn(`${MISSING_TOPOLOGY}; waiting`);
        await new Promise((resolve) => setTimeout(resolve, RETRY_MS));
      }
      return false;
    } finally {
      await nc.close();
    }
  } catch (error) {
    throw explainNatsError(error, connection, displayServers(connection.servers));
  }
}

export function workerCommand(): Command {
  const command = new Command('worker')
    .description('run worker processes that pull tasks from the server until stopped')
    .option('--server <url>', 'NATS server URL(s), comma-separated; nats:// or tls:// (default: $NATS_URL)');
  return withConnectionOptions(command)
    .option('--processes <n>', 'worker processes (default: number of cores)', (v) => parseCount(v, '--processes', 1, 1024))
    .option('--log-level <level>', 'pino log level (default: $LOG_LEVEL, else info)')
    .option('--read-files', 'let count tasks name input files to read here instead of carrying their bytes (only with a filesystem shared with the coordinators, and only if you trust everyone who may publish tasks: a task can name any file this user can read)')
    .option('--fetch-urls', 'let count tasks name URLs to fetch byte ranges of here instead of carrying their text (only if you trust everyone who may publish tasks: a task can make this machine GET any http(s) URL it can reach)')
    .action(async (options: WorkerCliOptions) => {
      const connection = resolveConnection(options);
      if (!connection) throw new UsageError('worker: give --server URL (or set NATS_URL); workers join a running server');
      const logger = createLogger({ level: options.logLevel, fallback: 'info', bindings: { role: 'supervisor' } });
      let supervisor: Supervisor | null = null;
      let stopSignal: string | null = null;
      const finished = new Promise<void>((resolve) => {
        const stop = (signal: string) => {
          stopSignal = signal;
          logger.info({ signal }, 'stopping: each process finishes its task in hand');
          void (supervisor?.stop() ?? Promise.resolve()).then(resolve);
        };
        // SIGHUP too (its terminal closed): the processes are in sessions of their own, which
        // no terminal signals, and would otherwise be left to notice the supervisor is gone.
        for (const signal of ['SIGTERM', 'SIGINT', 'SIGHUP'] as const) process.once(signal, () => stop(signal));
      });
      if (!(await preflight(connection, logger, () => stopSignal !== null))) return;
      supervisor = new Supervisor({ connection, processes: options.processes ?? availableParallelism(), logger, logLevel: options.logLevel, readFiles: options.readFiles === true, fetchUrls: options.fetchUrls === true });
      supervisor.start();
      logger.info({ processes: supervisor.processes, server: displayServers(connection.servers) }, 'workers starting');
      await finished;
      logger.info('workers stopped');
    });
}
