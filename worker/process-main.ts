/**
 * Entry point of one worker process, forked by the supervisor. Reads its settings from
 * TALLY_WORKER_SETTINGS, pulls tasks until SIGTERM/SIGINT, then finishes the task in hand,
 * acks it, drains its connection and exits 0.
 */
import { jetstream } from '@nats-io/jetstream';
import { connectToNats, jetstreamManagerFor, type ConnectionSettings } from '../shared/nats/connection.js';
import { ensureTaskTopology, openPartialsStore, replicasFor } from '../shared/nats/topology.js';
import { createLogger } from '../shared/log.js';
import { describeError } from '../shared/errors.js';
import { TaskLoop } from './task-loop.js';
import { JOB_ENDED_SUBJECTS, isJobId } from '../shared/subjects.js';
import { registerWorkerService } from './service.js';

export interface WorkerProcessSettings {
  connection: ConnectionSettings;
  logLevel?: string;
  /** Index of this process within its supervisor, for logs. */
  index: number;
}

async function main(): Promise<void> {
  const settings = JSON.parse(process.env.TALLY_WORKER_SETTINGS ?? '{}') as WorkerProcessSettings;
  const logger = createLogger({ level: settings.logLevel, fallback: 'info', bindings: { role: 'worker', index: settings.index } });
  const nc = await connectToNats({ ...settings.connection, name: `tally-worker-${settings.index}` });
  const jsm = await jetstreamManagerFor(nc, settings.connection);
  const replicas = replicasFor(nc);
  await ensureTaskTopology(jsm, { replicas });
  const partials = await openPartialsStore(nc, { replicas });
  const loop = new TaskLoop({ js: jetstream(nc), partials, logger });
  const service = await registerWorkerService(nc, () => loop.stats);
  nc.subscribe(JOB_ENDED_SUBJECTS, {
    callback: (error, message) => {
      if (error) return;
      const job = message.subject.split('.').pop()!;
      if (isJobId(job)) loop.jobEnded(job);
    },
  });

  let signalled = false;
  const stop = (signal: string) => {
    if (signalled) return;
    signalled = true;
    logger.info({ signal }, 'stopping after the task in hand');
    loop.stop();
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
  // The supervisor going away (IPC closed) means we should go too.
  process.on('disconnect', () => stop('disconnect'));

  void nc.closed().then((error) => {
    if (!signalled) {
      logger.error({ err: error ? describeError(error) : 'closed' }, 'connection closed; exiting');
      process.exit(1);
    }
  });

  await loop.run(() => {
    logger.info({ worker: loop.stats.name }, 'worker ready');
    process.send?.({ type: 'ready', worker: loop.stats.name });
  });
  await service.stop().catch(() => undefined);
  await nc.drain().catch(() => undefined);
  logger.info({ tasksDone: loop.stats.tasksDone }, 'worker stopped');
  process.exit(0);
}

main().catch((error) => {
  process.stderr.write(`tally worker: ${describeError(error)}\n`);
  process.exit(1);
});
