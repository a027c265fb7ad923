/**
 * `tally dashboard`: a live web view of the jobs, one job and the workers, and Prometheus
 * metrics, over HTTP or (with --https-cert and --https-key) HTTPS, until SIGINT, SIGTERM or
 * SIGHUP (then it closes the pages' streams, the web server, the watch and the connection, and
 * exits 0, as `tally worker` does; a second signal exits at once with 130).
 */
import { setting } from '../../shared/settings.js';
import { Command } from '../commander.js';
import { isIP } from 'node:net';
import { UsageError } from '../../shared/errors.js';
import { resolveConnection } from '../../shared/nats/connection-settings.js';
import { parseCount, withConnectionOptions, commandLogger, type CommonOptions } from './common.js';
import { isLoopbackHost, newAccessToken } from '../dashboard/auth.js';

interface DashboardCliOptions extends CommonOptions {
  host: string;
  port: number;
  accessToken?: string;
  readOnly?: boolean;
  httpsCert?: string;
  httpsKey?: string;
}

/** An IP address or a host name; anything else is refused before anything starts. */
export function parseHost(value: string): string {
  const bare = value.replace(/^\[(.*)\]$/, '$1');
  if (isIP(bare) !== 0 || /^(?=.{1,253}$)[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$/i.test(bare)) return bare;
  throw new UsageError(`--host: '${value}' is not an IP address or host name`);
}

/** An access token given by the user: long enough not to be guessed, and plain enough for a URL. */
function parseAccessToken(value: string): string {
  if (!/^[A-Za-z0-9._~-]{16,256}$/.test(value)) throw new UsageError('--access-token: use 16 to 256 letters, digits or . _ ~ - (or leave it out and one is made)');
  return value;
}

export function dashboardCommand(): Command {
  const command = new Command('dashboard')
    .description('live web view of the jobs, a job, the workers, and Prometheus metrics at /metrics')
    .option('--server <url>', 'NATS server URL(s), comma-separated; nats:// or tls:// (default: $NATS_URL, else the local embedded store)')
    .option('--host <address>', 'address to listen on; any but loopback needs an access token', parseHost, '127.0.0.1')
    .option('--port <n>', 'port to listen on (0: any free port)', (v) => parseCount(v, '--port', 0, 65535), 8040)
    .option('--read-only', 'never offer to cancel a job, even when the NATS credentials allow it')
    // Not --tls-cert/--tls-key: those are the NATS client certificate every command takes.
    .option('--https-cert <file>', 'serve HTTPS with this certificate (PEM; with --https-key)')
    .option('--https-key <file>', 'private key (PEM, unencrypted) of the --https-cert certificate')
    .option('--access-token <token>', 'token the pages and /metrics require (env TALLY_DASHBOARD_TOKEN; prefer the environment: arguments are visible to other local users); made and printed once when --host is not loopback');
  return withConnectionOptions(command)
    .option('--log-level <level>', 'pino log level: trace, debug, info, warn, error, silent (default: $LOG_LEVEL, else warn)')
    .action(async (options: DashboardCliOptions) => {
      if ((options.httpsCert === undefined) !== (options.httpsKey === undefined)) {
        throw new UsageError(`${options.httpsCert === undefined ? '--https-key' : '--https-cert'}: give --https-cert and --https-key together`);
      }
      // Read before anything starts: a bad file is said at once, not on the first page's handshake.
      const https = options.httpsCert !== undefined ? (await import('../dashboard/https.js')).readHttpsFiles(options.httpsCert, options.httpsKey!) : undefined;
      const given = options.accessToken ?? setting('TALLY_DASHBOARD_TOKEN');
      // Empty means unset (as for every setting): then a token is made, and shown.
      const made = given === undefined || given === '';
      // TLS hides the traffic, not the pages: off loopback the token is needed all the same.
      const token = !made ? parseAccessToken(given) : isLoopbackHost(options.host) ? null : newAccessToken();
      const logger = commandLogger({ ...options, progress: false });
      const connection = resolveConnection(options);
      // Loaded only now: the web server and NATS client are large.
      const { Dashboard } = await import('../dashboard/assemble.js');
      const dashboard = Dashboard.build({ connection, logger, logLevel: options.logLevel, readOnly: options.readOnly === true, token, https });
      let resolveStop: () => void = () => undefined;
      const stop = new Promise<void>((resolve) => (resolveStop = resolve));
      let signalled = false;
      // The first signal stops in order; a second one (a stop that hangs) exits at once, 130.
      const stopped = () => {
        if (signalled) process.exit(130);
        signalled = true;
        resolveStop();
      };
      const signals = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;
      for (const signal of signals) process.on(signal, stopped);
      try {
        const { origin } = await dashboard.start(options.host, options.port);
        // The one place a made token is shown: the user opens this address.
        const suffix = token !== null && made ? `/?token=${token}` : '/';
        process.stdout.write(`tally dashboard: ${origin}${suffix}\n`);
        if (token !== null && made) process.stdout.write('tally dashboard: the token above was made for this run and is not shown again; give your own with --access-token\n');
        await stop;
      } finally {
        for (const signal of signals) process.off(signal, stopped);
        await dashboard.close();
      }
    });
}
