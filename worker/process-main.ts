/**
 * Entry point of one worker process, forked by the supervisor. Reads its settings from
 * TALLY_WORKER_SETTINGS (or, forked before its server was up, from the supervisor over IPC),
 * pulls tasks until SIGTERM/SIGINT, then finishes the task in hand, acks it, drains its
 * connection and exits 0.
 */
import { displayServers, redact, type ConnectionSettings } from '../shared/nats/connection-settings.js';
import { connectToNats, jetstreamManagerFor } from '../shared/nats/connection.js';
import { permissionDenied, reportPermissionErrors } from '../shared/nats/permissions.js';
import { MISSING_TOPOLOGY, bindWorkerTopology, openPartialsStore, replicasFor } from '../shared/nats/topology.js';
import { setUpWithRetry } from '../shared/nats/retry.js';
import { createLogger } from '../shared/log.js';
import { describeError } from '../shared/errors.js';
import { taskLoopOn } from './loop-setup.js';
import { testHooks } from './test-hooks.js';
import { setFileReads, setUrlFetches } from '../shared/kinds/file-reads.js';
import type { Service } from '@nats-io/services';
import { setting } from '../shared/settings.js';

export interface WorkerProcessSettings {
  /** Without its password or token: those arrive in TALLY_WORKER_SECRETS. */
  connection: ConnectionSettings;
  logLevel?: string;
  /** Index of this process within its supervisor, for logs. */
  index: number;
  /** Tasks may name input files for this process to read. */
  readFiles?: boolean;
  /** Tasks may name URLs for this process to fetch byte ranges of. */
  fetchUrls?: boolean;
}

type Secrets = { password?: string; token?: string };

/** What a supervisor sends a process it forked before it knew where to connect. */
export interface SettingsMessage {
  type: 'settings';
  settings: WorkerProcessSettings;
  secrets?: Secrets;
}

/**
 * The settings of a process forked ahead of its server (the embedded default forks workers
 * first thing, so that they load their modules while the server starts): the supervisor sends
 * them once the server is up (Node keeps the message until we listen), usually before this
 * process has loaded. Saying that it waits also tells the supervisor that it has loaded.
 * Exits if the supervisor goes away first.
 */
function settingsFromSupervisor(): Promise<SettingsMessage> {
  if (!process.send) return Promise.reject(new Error('TALLY_WORKER_SETTINGS is not set (worker processes are started by `tally worker`)'));
  return new Promise((resolve) => {
    const onMessage = (message: Partial<SettingsMessage> | null) => {
      if (message?.type !== 'settings') return;
      process.off('message', onMessage);
      process.off('disconnect', onDisconnect);
      resolve(message as SettingsMessage);
    };
    const onDisconnect = () => process.exit(0);
    process.on('message', onMessage);
    process.once('disconnect', onDisconnect);
    process.send!({ type: 'waiting' });
  });
}

/** The settings from the environment or the supervisor, the secrets put back in; the secrets leave process.env. */
async function readSettings(): Promise<WorkerProcessSettings> {
  let settings: WorkerProcessSettings;
  let secrets: Secrets;
  const fromEnv = setting('TALLY_WORKER_SETTINGS');
  if (fromEnv !== undefined) {
    settings = fromEnv as unknown as WorkerProcessSettings;
    secrets = setting('TALLY_WORKER_SECRETS') as Secrets;
  } else {
    const message = await settingsFromSupervisor();
    settings = message.settings;
    secrets = message.secrets ?? {};
  }
  delete process.env.TALLY_WORKER_SECRETS;
  if (secrets.password !== undefined || secrets.token !== undefined) settings.connection.auth = { ...settings.connection.auth, ...secrets };
  return settings;
}

let connection: ConnectionSettings | undefined;

/** How long after it starts pulling tasks a worker process registers for discovery (see below). */
const SERVICE_DELAY_MS = 250;

async function main(): Promise<void> {
  testHooks.atStart();
  const settings = await readSettings();
  connection = settings.connection;
  setFileReads(settings.readFiles === true);
  setUrlFetches(settings.fetchUrls === true);
  const logger = createLogger({ level: settings.logLevel, fallback: 'info', bindings: { role: 'worker', index: settings.index } });
  const nc = await connectToNats({ ...settings.connection, name: `tally-worker-${settings.index}` });
  // A denied subscription (tally.event.ended.*, $SRV) would otherwise fail silently.
  reportPermissionErrors(nc, logger, settings.connection);
  const jsm = await jetstreamManagerFor(nc, settings.connection);
  const replicas = replicasFor(nc);
  // Binds to the existing consumer (all the worker role may do), else creates the topology.
  const topology = await setUpWithRetry("tally's task streams", () => bindWorkerTopology(jsm, { replicas }), logger);
  if (topology === 'missing') throw new Error(MISSING_TOPOLOGY);
  if (topology === 'created') {
    // A fresh server: the partials bucket is created here too when allowed. Either way it is
    // written blind (see partials.ts).
    await openPartialsStore(nc, { replicas }).catch(() => undefined);
  }
  const { loop } = taskLoopOn(nc, logger);

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

  // Discovery ($SRV, `tally workers`) registers a moment after the process starts pulling
  // tasks: @nats-io/services brings its own copy of the NATS client core (~40 ms of CPU to
  // load), which a job of a few tasks should not wait for, nor pay for if it is over first.
  let service: Promise<Service> | undefined;
  const register = () => {
    service = import('./service.js').then((m) => m.registerWorkerService(nc, () => loop.stats));
    // As at start-up: a worker that cannot register exits (and its supervisor starts another).
    service.catch((error: unknown) => {
      if (!signalled) fail(error);
    });
  };
  let registration: NodeJS.Timeout | undefined;
  await loop.run(() => {
    logger.info({ worker: loop.stats.name }, 'worker ready');
    process.send?.({ type: 'ready', worker: loop.stats.name });
    registration = setTimeout(register, SERVICE_DELAY_MS);
  });
  clearTimeout(registration);
  await service?.then((registered) => registered.stop()).catch(() => undefined);
  await nc.drain().catch(() => undefined);
  logger.info({ tasksDone: loop.stats.tasksDone }, 'worker stopped');
  process.exit(0);
}

function fail(error: unknown): never {
  const denied = permissionDenied(error);
  const where = connection ? `${displayServers(connection.servers)}: ` : '';
  process.stderr.write(`tally worker: ${denied ? `${where}${denied}` : redact(describeError(error), connection)}\n`);
  process.exit(1);
}

main().catch(fail);
