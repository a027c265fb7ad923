/**
 * Everything a CLI command needs to talk to tally's NATS side, opened in one place and closed
 * by one owner: the connection, JetStream handles, the job store and, in the embedded default,
 * the local server and worker processes.
 */
import { jetstream, type JetStreamClient, type JetStreamManager } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import type { ObjectStore } from '@nats-io/obj';
import { availableParallelism } from 'node:os';
import { connectToNats, displayServers, jetstreamManagerFor, reportPermissionErrors, resolveConnection, type ConnectionSettings } from '../shared/nats/connection.js';
import { ensureTaskTopology, openPartialsStore, replicasFor } from '../shared/nats/topology.js';
import { MAX_TASK_BYTES } from '../shared/nats/envelope.js';
import { ServerError } from '../shared/errors.js';
import type { Logger } from '../shared/log.js';
import { JobStore } from './job-store.js';
import { acquireEmbeddedServer, type EmbeddedServer } from './embedded.js';
import { Supervisor } from '../worker/supervisor.js';

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
}

/** Room left in each message for the envelope header and NATS headers. */
const PAYLOAD_MARGIN = 16 * 1024;

export class Session {
  private constructor(
    readonly nc: NatsConnection,
    readonly js: JetStreamClient,
    readonly jsm: JetStreamManager,
    readonly store: JobStore,
    private readonly partialsStore: ObjectStore | Error,
    readonly server: string,
    private readonly embedded: EmbeddedServer | null,
    private readonly supervisor: Supervisor | null,
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
      const embedded = await acquireEmbeddedServer(options.logger);
      const connection: ConnectionSettings = { servers: [embedded.url] };
      let supervisor: Supervisor | null = null;
      try {
        const workers = options.workers ?? availableParallelism();
        if (workers > 0) {
          supervisor = new Supervisor({ connection, processes: workers, logger: options.logger, logLevel: options.logLevel ?? 'warn', env: options.workerEnv });
          supervisor.start();
        }
        return await Session.connect(connection, embedded, supervisor, options);
      } catch (error) {
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
  ): Promise<Session> {
    const nc = await connectToNats({ ...connection, name: 'tally-coordinator' });
    // A denied subscription (say, the poison-task advisories) would otherwise fail silently.
    reportPermissionErrors(nc, options.logger, connection);
    try {
      const jsm = await jetstreamManagerFor(nc, connection);
      const replicas = replicasFor(nc);
      const forJobs = options.purpose !== 'read';
      if (forJobs) await ensureTaskTopology(jsm, { replicas });
      const [store, partials] = await Promise.all([
        JobStore.open(nc, { replicas }),
        forJobs
          ? openPartialsStore(nc, { replicas }).catch((error: unknown) => (error instanceof Error ? error : new Error(String(error))))
          : new Error('this session was opened to read only'),
      ]);
      return new Session(nc, jetstream(nc), jsm, store, partials, displayServers(connection.servers), embedded, supervisor);
    } catch (error) {
      await nc.close().catch(() => undefined);
      throw error;
    }
  }

  /** Drains the connection, stops embedded workers, then releases the embedded server. */
  async close(): Promise<void> {
    await this.nc.drain().catch(() => undefined);
    await this.supervisor?.stop();
    await this.embedded?.release();
  }
}
