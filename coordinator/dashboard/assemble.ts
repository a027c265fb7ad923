/**
 * One dashboard, put together the same way for `tally dashboard` and for a job command's
 * `--dashboard`: the live state (with a NATS session of its own, opened to read), its metrics
 * and its web server, started and closed in order.
 */
import { displayServers, redact, type ConnectionSettings } from '../../shared/nats/connection-settings.js';
import type { Logger } from '../../shared/log.js';
import { Session } from '../session.js';
import { discoverWorkers } from '../commands/workers.js';
import { acquireEmbeddedServer } from '../embedded/server.js';
import { takePrestartedServer } from '../embedded/prestart.js';
import { LiveState } from './live.js';
import { DashboardMetrics } from './metrics.js';
import { DashboardServer, type HttpsFiles } from './server.js';

/** What a dashboard is made of. */
export interface DashboardSetup {
  /** Where its live state connects; undefined: the local embedded server, started or joined as `tally jobs` does. */
  connection: ConnectionSettings | undefined;
  /** How the pages name the server (no credentials); default: its URLs, or "the local embedded server". */
  serverLabel?: string;
  logger: Logger;
  logLevel?: string;
  /** Never offer to cancel a job. */
  readOnly: boolean;
  /** The access token; null on loopback without one. */
  token: string | null;
  /** Serve HTTPS with this certificate. */
  https?: HttpsFiles;
}

/** Where a started dashboard listens. */
export interface DashboardAddress {
  host: string;
  port: number;
  /** `http://HOST:PORT` or `https://HOST:PORT` (an IPv6 host in brackets), no path. */
  origin: string;
}

/** A dashboard: built, then started once and closed once. */
export class Dashboard {
  private constructor(
    private readonly live: LiveState,
    private readonly metrics: DashboardMetrics,
    private readonly server: DashboardServer,
  ) {}

  /** Builds a dashboard; nothing listens or connects before `start`. */
  static build(setup: DashboardSetup): Dashboard {
    const { connection, logger } = setup;
    const live = new LiveState({
      open: () =>
        Session.open({
          connection,
          // Asked on every attempt: the server prestarted for this command is taken once.
          embedded: connection ? undefined : (takePrestartedServer() ?? acquireEmbeddedServer(logger)),
          workers: 0,
          logger,
          logLevel: setup.logLevel,
          purpose: 'read',
        }),
      server: setup.serverLabel ?? (connection ? displayServers(connection.servers) : 'the local embedded server'),
      redact: (text) => redact(text, connection),
      logger,
      discover: (nc) => discoverWorkers(nc, 1000),
      readOnly: setup.readOnly,
    });
    const metrics = new DashboardMetrics(live);
    return new Dashboard(live, metrics, new DashboardServer({ live, metrics, token: setup.token, https: setup.https }));
  }

  /**
   * Listens, then starts following the NATS server in the background (the pages say whether
   * it is reachable meanwhile).
   * @param elseAnyPort when `port` is in use, take any free port instead of failing
   * @throws UsageError naming --host or --port when that address cannot be had
   */
  async start(host: string, port: number, elseAnyPort = false): Promise<DashboardAddress> {
    const address = await this.server.listen(host, port, elseAnyPort);
    this.live.start();
    const shown = address.host.includes(':') ? `[${address.host}]` : address.host;
    return { ...address, origin: `${this.server.scheme}://${shown}:${address.port}` };
  }

  /** Ends the pages' streams and stops listening, then closes the watch and the NATS connection. */
  async close(): Promise<void> {
    await this.server.close().catch(() => undefined);
    this.metrics.close();
    await this.live.close();
  }
}
