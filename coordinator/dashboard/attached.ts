/**
 * A job command's `--dashboard`: the dashboard inside the command's own process, on loopback,
 * watching the NATS server the job runs on (in the embedded default, this run's own server),
 * from before the job starts until the command ends. Loaded only when the flag is given.
 */
import type { Logger } from '../../shared/log.js';
import type { Session } from '../session.js';
import { Dashboard } from './assemble.js';

/** Where the attached dashboard listens: its usual port, else any free one (a job never fails for it). */
const HOST = '127.0.0.1';
const PORT = 8040;

/** A dashboard attached to a job command. */
export interface AttachedDashboard {
  /** Says where the job can be watched: one line on stderr (stdout stays the job's output). */
  announce(job: string): void;
  /** Closes the pages' streams, the web server and the dashboard's connection; never throws. */
  close(): Promise<void>;
}

/**
 * Starts a dashboard on 127.0.0.1 (port 8040 when free) with a connection of its own to the
 * server of `session`. No access token: loopback only, as `tally dashboard` without --host.
 */
export async function attachDashboard(session: Session, logger: Logger, logLevel?: string): Promise<AttachedDashboard> {
  const dashboard = Dashboard.build({
    connection: session.connection,
    serverLabel: session.isEmbedded ? 'the local embedded server' : session.server,
    logger,
    logLevel,
    readOnly: false,
    token: null,
  });
  let origin: string;
  try {
    ({ origin } = await dashboard.start(HOST, PORT, true));
  } catch (error) {
    await dashboard.close();
    throw error;
  }
  return {
    announce: (job) => process.stderr.write(`tally: live view of job ${job} at ${origin}/jobs/${job}\n`),
    close: () => dashboard.close().catch(() => undefined),
  };
}
