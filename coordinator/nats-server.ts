/**
 * Starts and stops a local nats-server child process with JetStream on a free loopback port,
 * using the repository's server configuration. The embedded default, the tests and the
 * benchmarks all start servers through this one module.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { accessSync, constants, mkdirSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ServerError } from '../shared/errors.js';
import { setting } from '../shared/settings.js';

/** The single-server configuration shipped in the repo (also mounted by docker compose). */
export const DEFAULT_SERVER_CONFIG = fileURLToPath(new URL('../../config/nats/tally.conf', import.meta.url));

export interface NatsServerOptions {
  /** JetStream store directory; created when missing. */
  storeDir: string;
  /** Client port; default -1 = a free port chosen by the server. */
  port?: number;
  /** Default 127.0.0.1: nothing leaves the machine. */
  host?: string;
  /** Default: the repository's config/nats/tally.conf. */
  configFile?: string;
  /** Also start the HTTP monitoring endpoint on a free port. */
  monitor?: boolean;
  /** More nats-server arguments (cluster routes, a server name). */
  extraArgs?: string[];
  /** Milliseconds to wait for "Server is ready". Default 10 s. */
  startTimeoutMs?: number;
}

const INSTALL_HINT =
  'nats-server not found: install it with `apt-get install nats-server` (or `npm run setup`), ' +
  'set TALLY_NATS_SERVER to its path, or pass --server URL to use a running server';

/** Path of the nats-server binary: TALLY_NATS_SERVER, else PATH, else the Debian location. */
export function findNatsServer(): string {
  const candidates: string[] = [];
  const configured = setting('TALLY_NATS_SERVER');
  if (configured) candidates.push(configured);
  for (const dir of (process.env.PATH ?? '').split(delimiter)) if (dir) candidates.push(join(dir, 'nats-server'));
  candidates.push('/usr/sbin/nats-server', '/usr/local/sbin/nats-server', '/usr/bin/nats-server');
  for (const path of candidates) {
    try {
      accessSync(path, constants.X_OK);
      return path;
    } catch {
      // try the next one
    }
  }
  throw new ServerError('embedded nats-server', INSTALL_HINT);
}

/** A running nats-server child. Its owner must call `stop()`. */
export class NatsServerProcess {
  readonly url: string;
  readonly port: number;
  readonly monitorUrl: string | undefined;
  readonly storeDir: string;
  private readonly child: ChildProcess;
  private readonly exited: Promise<void>;
  private readonly args: string[];

  constructor(child: ChildProcess, args: string[], port: number, storeDir: string, monitorUrl?: string) {
    this.child = child;
    this.args = args;
    this.port = port;
    this.url = `nats://127.0.0.1:${port}`;
    this.monitorUrl = monitorUrl;
    this.storeDir = storeDir;
    this.exited = new Promise((resolve) => {
      if (child.exitCode !== null || child.signalCode !== null) resolve();
      else child.once('exit', () => resolve());
    });
  }

  get pid(): number {
    return this.child.pid ?? -1;
  }

  /** The arguments it was started with, so a test can restart it on the same port and store. */
  get startArgs(): string[] {
    return [...this.args];
  }

  /** Graceful shutdown (SIGTERM lets JetStream flush), then SIGKILL after 10 s. */
  async stop(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    this.child.kill('SIGTERM');
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 10_000);
    await this.exited;
    clearTimeout(timer);
    this.closeLog();
  }

  /**
   * Closes our end of the server's stderr pipe. It closes by itself when the server exits,
   * unless something it started still holds it (a TALLY_NATS_SERVER wrapper's children), which
   * would keep this process from exiting.
   */
  private closeLog(): void {
    this.child.stderr?.destroy();
  }

  /** Abrupt death, for fault tests. */
  async kill(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    this.child.kill('SIGKILL');
    await this.exited;
    this.closeLog();
  }
}

/** Starts nats-server with JetStream and resolves once it accepts clients. */
export async function startNatsServer(options: NatsServerOptions): Promise<NatsServerProcess> {
  const binary = findNatsServer();
  mkdirSync(options.storeDir, { recursive: true });
  const args = [
    '-c', options.configFile ?? DEFAULT_SERVER_CONFIG,
    '-a', options.host ?? '127.0.0.1',
    '-p', String(options.port ?? -1),
    '-js', '-sd', options.storeDir,
    ...(options.monitor ? ['-m', '-1'] : []),
    ...(options.extraArgs ?? []),
  ];
  // In its own process group: a terminal's Ctrl-C reaches only its owner, which drains its
  // clients before it stops the server (killed first, it would leave them hanging).
  const child = spawn(binary, args, { stdio: ['ignore', 'ignore', 'pipe'], detached: true });
  const timeoutMs = options.startTimeoutMs ?? 10_000;
  return new Promise<NatsServerProcess>((resolve, reject) => {
    let log = '';
    let port = 0;
    let monitorUrl: string | undefined;
    const fail = (reason: string) => {
      clearTimeout(timer);
      child.kill('SIGKILL');
      const lastLines = log.trim().split('\n').slice(-3).join(' | ');
      reject(new ServerError('embedded nats-server', `${reason}${lastLines ? `: ${lastLines}` : ''}`));
    };
    const timer = setTimeout(() => fail(`not ready within ${timeoutMs} ms`), timeoutMs);
    child.once('error', (error) => fail(`cannot start ${binary}: ${error.message}`));
    child.once('exit', (code) => fail(`exited with code ${code} while starting`));
    child.stderr!.setEncoding('utf8');
    const onData = (chunk: string) => {
      log += chunk;
      if (log.length > 64 * 1024) log = log.slice(-16 * 1024);
      const client = /Listening for client connections on [^\s]*:(\d+)/.exec(log);
      if (client) port = Number(client[1]);
      const monitor = /Starting http monitor on ([^\s]+)/.exec(log);
      if (monitor) monitorUrl = `http://${monitor[1]}`;
      if (port && /Server is ready/.test(log)) {
        clearTimeout(timer);
        child.removeAllListeners('exit');
        child.removeAllListeners('error');
        child.stderr!.off('data', onData);
        // Keep draining stderr so the server never blocks on a full pipe.
        child.stderr!.resume();
        resolve(new NatsServerProcess(child, args, port, options.storeDir, monitorUrl));
      }
    };
    child.stderr!.on('data', onData);
  });
}
