/**
 * `tally dashboard`: a live web view of the jobs, one job and the workers, and Prometheus
 * metrics, until SIGINT, SIGTERM or SIGHUP (then it closes the pages' streams, the web server,
 * the watch and the connection, and exits 0, as `tally worker` does; a second signal exits at
 * once with 130).
 */
import { setting } from '../../shared/settings.js';
import { Command } from 'commander';
import { isIP } from 'node:net';
import { UsageError } from '../../shared/errors.js';
import { displayServers, redact, resolveConnection } from '../../shared/nats/connection-settings.js';
import { parseCount, withConnectionOptions, commandLogger, type CommonOptions } from './common.js';
import { isLoopbackHost, newAccessToken } from '../dashboard/auth.js';

interface DashboardCliOptions extends CommonOptions {
  host: string;
  port: number;
  accessToken?: string;
  readOnly?: boolean;
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
    .option('--access-token <token>', 'token the pages and /metrics require (env TALLY_DASHBOARD_TOKEN; prefer the environment: arguments are visible to other local users); made and printed once when --host is not loopback');
  return withConnectionOptions(command)
    .option('--log-level <level>', 'pino log level: trace, debug, info, warn, error, silent (default: $LOG_LEVEL, else warn)')
    .action(async (options: DashboardCliOptions) => {
      const given = options.accessToken ?? setting('TALLY_DASHBOARD_TOKEN');
      const token = given !== undefined && given !== '' ? parseAccessToken(given) : isLoopbackHost(options.host) ? null : newAccessToken();
      const logger = commandLogger({ ...options, progress: false });
      const connection = resolveConnection(options);
      // Loaded only now: the web server and NATS client are large.
      const [{ Session }, { LiveState }, { DashboardMetrics }, { DashboardServer }, { discoverWorkers }, { acquireEmbeddedServer }, { takePrestartedServer }] = await Promise.all([
        import('../session.js'),
        import('../dashboard/live.js'),
        import('../dashboard/metrics.js'),
        import('../dashboard/server.js'),
        import('./workers.js'),
        import('../embedded/server.js'),
        import('../embedded/prestart.js'),
      ]);
      const live = new LiveState({
        // The embedded default joins (or starts) this user's local server, as `tally jobs` does.
        open: () => Session.open({ connection, embedded: connection ? undefined : (takePrestartedServer() ?? acquireEmbeddedServer(logger)), workers: 0, logger, logLevel: options.logLevel, purpose: 'read' }),
        server: connection ? displayServers(connection.servers) : 'the local embedded server',
        redact: (text) => redact(text, connection),
        logger,
        discover: (nc) => discoverWorkers(nc, 1000),
        readOnly: options.readOnly === true,
      });
      const metrics = new DashboardMetrics(live);
      const server = new DashboardServer({ live, metrics, token });
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
        const address = await server.listen(options.host, options.port);
        live.start();
        const shown = address.host.includes(':') ? `[${address.host}]` : address.host;
        // The one place a made token is shown: the user opens this address.
        const suffix = token !== null && given === undefined ? `/?token=${token}` : '/';
        process.stdout.write(`tally dashboard: http://${shown}:${address.port}${suffix}\n`);
        if (token !== null && given === undefined) process.stdout.write('tally dashboard: the token above was made for this run and is not shown again; give your own with --access-token\n');
        await stop;
      } finally {
        for (const signal of signals) process.off(signal, stopped);
        await server.close().catch(() => undefined);
        metrics.close();
        await live.close();
      }
    });
}
