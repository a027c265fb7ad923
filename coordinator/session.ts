/**
 * Everything a CLI command needs to talk to tally's NATS side, opened in one place and closed
 * by one owner: the connection, JetStream handles, the job store and, in the embedded default,
 * the local server and worker processes.
 */
import type { JetStreamClient, JetStreamManager } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import type { ObjectStore } from '@nats-io/obj';
import { displayServers, resolveConnection, type ConnectionSettings } from '../shared/nats/connection-settings.js';
import { connectToNats, jetstreamManagerFor } from '../shared/nats/connection.js';
import { jetstreamLib } from '../shared/nats/client.js';
import { reportPermissionErrors } from '../shared/nats/permissions.js';
import { ensureTaskTopology, openPartialsStore, replicasFor, sweepIdleListConsumers, withQuickList } from '../shared/nats/topology.js';
import { setUpWithRetry } from '../shared/nats/retry.js';
import { watchLink, type LinkWatch } from '../shared/nats/link.js';
import { MAX_TASK_BYTES } from '../shared/limits.js';
import { ServerError, describeError } from '../shared/errors.js';
import type { Logger } from '../shared/log.js';
import { JobStore } from './job-store.js';
import { acquireEmbeddedServer, embeddedConnection, type EmbeddedServer } from './embedded/server.js';
import { takePrestartedWorkers } from './embedded/prestart.js';
import { PARTIALS_BUCKET, TASK_STREAM, WORKER_CONSUMER } from '../shared/subjects.js';
import { Supervisor } from '../worker/supervisor.js';
import { StandIn } from './embedded/stand-in.js';
import { embeddedFleet } from './embedded/fleet.js';
import type { StandInView } from './task-publisher.js';

export interface SessionOptions {
  /** Where and how to connect (credentials, TLS); wins over `server`. */
  connection?: ConnectionSettings;
  /** --server value; else NATS_URL (with the NATS_* credentials); else the embedded default. */
  server?: string;
  /** Embedded mode only: worker processes to start (0 for commands that only read). */
  workers?: number;
  logger: Logger;
  logLevel?: string;
  /**
   * 'read' for commands that only read job records, results and workers: they neither create
   * nor look at the task streams and the partials bucket (a reader may not). Default 'job'.
   */
  purpose?: 'job' | 'read';
  /** Extra environment for embedded workers (test hooks). */
  workerEnv?: NodeJS.ProcessEnv;
  /** The embedded server, when acquisition started already (the first attempt uses it). */
  embedded?: Promise<EmbeddedServer>;
  /**
   * The connection to `embedded`, set up ahead (see prepareSession); the first attempt uses it
   * when it succeeded, else connects as usual.
   */
  prepared?: Promise<PreparedSession>;
}

/** A connection with what a session sets up on it: JetStream, the job store, the partials bucket. */
export interface PreparedSession {
  /** Where it is connected (the embedded server's URL). */
  url: string;
  nc: NatsConnection;
  jsm: JetStreamManager;
  store: JobStore;
  partials: ObjectStore | Error;
}

/**
 * Connects and sets up what a session needs (see Session.open), without the session: the
 * embedded default does this as soon as its server is up, while the command line's modules
 * still load (prestart.ts), so that the round trips to the server overlap that loading.
 * Closes the connection when anything fails.
 */
export async function prepareSession(connection: ConnectionSettings, options: Pick<SessionOptions, 'logger' | 'purpose'>): Promise<PreparedSession> {
  const nc = await connectToNats({ ...connection, name: 'tally-coordinator' });
  // A denied subscription (say, the poison-task advisories) would otherwise fail silently.
  reportPermissionErrors(nc, options.logger, connection);
  try {
    const jsm = await jetstreamManagerFor(nc, connection);
    const replicas = replicasFor(nc);
    const forJobs = options.purpose !== 'read';
    // Independent of each other: asked for at once. A failure is reported as it was when they
    // ran one after the other (the task topology's first).
    // Each is retried through a slow or electing cluster (see `setUpWithRetry`).
    const log = options.logger;
    const [topology, opened, partials] = await Promise.allSettled([
      forJobs ? setUpWithRetry("tally's task streams", () => ensureTaskTopology(jsm, { replicas }), log) : undefined,
      setUpWithRetry('the job records bucket', () => JobStore.open(nc, { replicas }), log),
      forJobs
        ? setUpWithRetry('the partials bucket', () => openPartialsStore(nc, { replicas }), log).then(
            (store) => withQuickList(store, jsm, PARTIALS_BUCKET),
            (error: unknown) => (error instanceof Error ? error : new Error(String(error))),
          )
        : new Error('this session was opened to read only'),
    ]);
    if (topology.status === 'rejected') throw topology.reason;
    if (opened.status === 'rejected') throw opened.reason;
    return { url: connection.servers[0]!, nc, jsm, store: opened.value, partials: (partials as PromiseFulfilledResult<ObjectStore | Error>).value };
  } catch (error) {
    await nc.close().catch(() => undefined);
    throw error;
  }
}

/** A drain takes milliseconds with a server there; past this the server is not there. */
const DRAIN_TIMEOUT_MS = 3_000;

/** Room left in each message for the envelope header and NATS headers. */
const PAYLOAD_MARGIN = 16 * 1024;

export class Session {
  /** What must finish before the connection closes (see `defer`). */
  private readonly deferred: Array<Promise<void>> = [];
  /** The embedded workers' stop, once begun (see `stopWorkers`). */
  private workersStopped: Promise<void> | undefined;
  /** The embedded default's stand-in worker while the worker processes start (see stand-in.ts). */
  private standIn: StandIn | null = null;

  private constructor(
    readonly nc: NatsConnection,
    readonly js: JetStreamClient,
    readonly jsm: JetStreamManager,
    readonly store: JobStore,
    private readonly partialsStore: ObjectStore | Error,
    readonly server: string,
    private readonly embedded: EmbeddedServer | null,
    private readonly supervisor: Supervisor | null,
    /** The connection's link to the server, for jobs run in this session and for close(). */
    readonly link: LinkWatch,
    /**
     * What this session connected with (in the embedded default, this run's server and token),
     * for another connection of this process to the same server (a job's --dashboard).
     */
    readonly connection: ConnectionSettings,
  ) {}

  /** True when tally started its own local server for this command. */
  get isEmbedded(): boolean {
    return this.embedded !== null;
  }

  /**
   * The partials bucket. A user without the coordinator role may lack the right to open it;
   * only running a job needs it, so the error surfaces then, naming the denied subject.
   */
  get partials(): ObjectStore {
    if (this.partialsStore instanceof Error) throw this.partialsStore;
    return this.partialsStore;
  }

  /** Largest task body this server accepts, from its advertised max_payload. */
  get maxBodyBytes(): number {
    const maxPayload = this.nc.info?.max_payload ?? 1024 * 1024;
    return Math.max(1024, Math.min(MAX_TASK_BYTES, maxPayload - PAYLOAD_MARGIN));
  }

  static async open(options: SessionOptions): Promise<Session> {
    const remote = options.connection ?? resolveConnection({ server: options.server });
    if (remote) return Session.connect(remote, null, null, options);
    for (let attempt = 1; ; attempt++) {
      const embedded = attempt === 1 && options.embedded ? await options.embedded : await acquireEmbeddedServer(options.logger);
      const connection: ConnectionSettings = embeddedConnection(embedded);
      let supervisor: Supervisor | null = null;
      try {
        const fleet = embeddedFleet(options.workers);
        const workers = fleet.processes;
        if (workers > 0) {
          // Embedded workers are this user's own processes on this machine: they read the
          // input files, and fetch the URLs this coordinator would fetch, themselves instead of
          // receiving every byte through the server.
          const settings = { connection, logger: options.logger, logLevel: options.logLevel ?? 'warn', readFiles: true, fetchUrls: true };
          // Usually forked first thing (coordinator/entry.ts) and loaded by now: they only wait for this.
          supervisor = attempt === 1 && !options.workerEnv ? await takePrestartedWorkers(workers, embedded.url) : null;
          if (supervisor) supervisor.configure(settings);
          else {
            supervisor = new Supervisor({ ...settings, processes: workers, env: options.workerEnv });
            supervisor.start();
          }
        }
        const prepared = attempt === 1 && options.embedded ? await options.prepared?.catch(() => undefined) : undefined;
        if (prepared && prepared.url !== embedded.url) await prepared.nc.close().catch(() => undefined);
        const session = await Session.connect(connection, embedded, supervisor, options, prepared?.url === embedded.url ? prepared : undefined);
        // Not with test hooks for the worker processes: their tests need every task to be theirs.
        if (supervisor && !options.workerEnv && options.purpose !== 'read') session.standIn = StandIn.start(session.nc, supervisor, options.logger, { throughout: fleet.standInThroughout });
        return session;
      } catch (error) {
        // A connection set up ahead and not used must not keep the server (which waits for
        // its last client) from stopping.
        if (attempt === 1) await (await options.prepared?.catch(() => undefined))?.nc.close().catch(() => undefined);
        await supervisor?.stop();
        await embedded.release();
        // A server we joined may have stopped just as we arrived; start or join afresh.
        if (embedded.owned || attempt >= 3 || !(error instanceof ServerError)) throw error;
      }
    }
  }

  private static async connect(
    connection: ConnectionSettings,
    embedded: EmbeddedServer | null,
    supervisor: Supervisor | null,
    options: SessionOptions,
    prepared?: PreparedSession,
  ): Promise<Session> {
    const { nc, jsm, store, partials } = prepared ?? (await prepareSession(connection, options));
    return new Session(nc, jetstreamLib().jetstream(nc), jsm, store, partials, displayServers(connection.servers), embedded, supervisor, watchLink(nc), connection);
  }

  /**
   * Work on the server that `close()` waits for before it drains the connection, while the
   * workers stop (a job's clean-up, which need not delay the printing of its result).
   */
  defer(work: Promise<void>, logger: Logger): void {
    this.deferred.push(work.catch((error: unknown) => logger.warn({ err: describeError(error) }, 'cleaning up after the job failed')));
  }

  /** The coordinator's stand-in worker as a job's publisher sees it (undefined without one). */
  get standInView(): StandInView | undefined {
    const standIn = this.standIn;
    if (!standIn) return undefined;
    return {
      // The only worker while the embedded worker processes are held back for a job that looked small (see prestartEmbedded).
      alone: () => this.supervisor?.holding === true,
      giveWay: () => standIn.giveWay(),
    };
  }

  /**
   * Stops the embedded worker processes (if any) now rather than at `close()`: once a job's
   * results are all in, they have nothing left to do, and their exit overlaps what the
   * coordinator still does (store the result, clean up).
   */
  stopWorkers(): Promise<void> {
    this.workersStopped ??= Promise.all([this.standIn?.stop(), this.supervisor?.stop()]).then(() => undefined);
    return this.workersStopped;
  }

  /** Stops embedded workers, drains the connection, then releases the embedded server. */
  async close(): Promise<void> {
    const owner = this.embedded?.owned === true && !(this.partialsStore instanceof Error);
    // A stopped server keeps the consumers of Object Store listings until they idle out, which
    // an embedded server never lives to see: they would pile up with every job. Swept while
    // the workers stop.
    const swept = owner ? sweepIdleListConsumers(this.jsm, PARTIALS_BUCKET).catch(() => undefined) : undefined;
    await Promise.all([this.stopWorkers(), ...this.deferred]);
    // nats-server 2.9 pauses 50 ms on shutdown when a consumer still holds pull requests, and
    // those of the workers just gone are dropped only when someone looks at the consumer.
    if (owner && this.supervisor) await this.jsm.consumers.info(TASK_STREAM, WORKER_CONSUMER).catch(() => undefined);
    await swept;
    // Draining needs the server. Without it the connection is closed outright: it would go on
    // reconnecting, and keep this process alive. A client that knows the server is gone is not
    // asked (it refuses only after its next reconnect attempt, most of a second); one that has
    // not noticed a dead link yet waits for answers that never come, up to the timeout.
    this.link.stop();
    const drained =
      this.link.disconnectedSince === null &&
      (await Promise.race([
        this.nc.drain().then(
          () => true,
          () => false,
        ),
        new Promise<boolean>((resolve) => setTimeout(resolve, DRAIN_TIMEOUT_MS, false).unref()),
      ]));
    if (!drained) await this.nc.close().catch(() => undefined);
    await this.embedded?.release();
  }
}
