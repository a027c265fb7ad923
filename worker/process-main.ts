/**
 * Entry point of one worker process, forked by the supervisor. Reads its settings from
 * TALLY_WORKER_SETTINGS, pulls tasks until SIGTERM/SIGINT, then finishes the task in hand,
 * acks it, drains its connection and exits 0.
 */
import { jetstream } from '@nats-io/jetstream';
import { connectToNats, displayServers, jetstreamManagerFor, permissionDenied, redact, reportPermissionErrors, type ConnectionSettings } from '../shared/nats/connection.js';
import { MISSING_TOPOLOGY, bindWorkerTopology, openPartialsStore, replicasFor } from '../shared/nats/topology.js';
import { PartialsWriter } from '../shared/nats/partials.js';
import { PARTIALS_BUCKET } from '../shared/subjects.js';
import { createLogger } from '../shared/log.js';
import { describeError } from '../shared/errors.js';
import { TaskLoop } from './task-loop.js';
import { JOB_ENDED_SUBJECTS, isJobId } from '../shared/subjects.js';
import { registerWorkerService } from './service.js';

export interface WorkerProcessSettings {
  /** Without its password or token: those arrive in TALLY_WORKER_SECRETS. */
  connection: ConnectionSettings;
  logLevel?: string;
  /** Index of this process within its supervisor, for logs. */
  index: number;
}

/** The settings from the environment, the secrets put back in; the secrets leave process.env. */
function readSettings(): WorkerProcessSettings {
  const settings = JSON.parse(process.env.TALLY_WORKER_SETTINGS ?? '{}') as WorkerProcessSettings;
  const secrets = JSON.parse(process.env.TALLY_WORKER_SECRETS ?? '{}') as { password?: string; token?: string };
  delete process.env.TALLY_WORKER_SECRETS;
  if (secrets.password !== undefined || secrets.token !== undefined) settings.connection.auth = { ...settings.connection.auth, ...secrets };
  return settings;
}

let connection: ConnectionSettings | undefined;

async function main(): Promise<void> {
  const settings = readSettings();
  connection = settings.connection;
  const logger = createLogger({ level: settings.logLevel, fallback: 'info', bindings: { role: 'worker', index: settings.index } });
  const nc = await connectToNats({ ...settings.connection, name: `tally-worker-${settings.index}` });
  // A denied subscription (tally.event.ended.*, $SRV) would otherwise fail silently.
  reportPermissionErrors(nc, logger, settings.connection);
  const jsm = await jetstreamManagerFor(nc, settings.connection);
  const replicas = replicasFor(nc);
  // Binds to the existing consumer (all the worker role may do), else creates the topology.
  const topology = await bindWorkerTopology(jsm, { replicas });
  if (topology === 'missing') throw new Error(MISSING_TOPOLOGY);
  if (topology === 'created') {
    // A fresh server: the partials bucket is created here too when allowed. Either way it is
    // written blind (see partials.ts).
    await openPartialsStore(nc, { replicas }).catch(() => undefined);
  }
  const partials = new PartialsWriter(jetstream(nc), PARTIALS_BUCKET, nc.info?.max_payload ?? 1024 * 1024);
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
  const denied = permissionDenied(error);
  const where = connection ? `${displayServers(connection.servers)}: ` : '';
  process.stderr.write(`tally worker: ${denied ? `${where}${denied}` : redact(describeError(error), connection)}\n`);
  process.exit(1);
});
