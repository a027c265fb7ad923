/**
 * What the end-to-end tests need: a real nats-server on a free loopback port with JetStream in
 * a temp dir, the real `tally` CLI as a child process, and real worker processes.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startNatsServer, type NatsServerProcess } from '../../coordinator/nats-server.js';

export const REPO_ROOT = fileURLToPath(new URL('../../../', import.meta.url));
export const TALLY_BIN = join(REPO_ROOT, 'bin', 'tally.js');

/** A fresh temp directory, removed by the returned function. */
export function tempDir(prefix = 'tally-test-'): { path: string; remove(): void } {
  const path = mkdtempSync(join(tmpdir(), prefix));
  return { path, remove: () => rmSync(path, { recursive: true, force: true }) };
}

/** A nats-server for one test file: started on a free port, JetStream in a temp dir. */
export interface TestServer {
  server: NatsServerProcess;
  url: string;
  storeDir: string;
  stop(): Promise<void>;
}

export async function startTestServer(): Promise<TestServer> {
  const dir = tempDir('tally-nats-');
  const server = await startNatsServer({ storeDir: dir.path });
  return {
    server,
    url: server.url,
    storeDir: dir.path,
    stop: async () => {
      await server.stop();
      dir.remove();
    },
  };
}

export interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  ms: number;
}

export interface RunOptions {
  env?: NodeJS.ProcessEnv;
  /** Written to the child's stdin, which is then closed. */
  input?: string | Uint8Array;
  cwd?: string;
  timeoutMs?: number;
}

/**
 * Where embedded runs of this test process keep their store unless a test says otherwise: a
 * temporary $XDG_DATA_HOME, never the developer's own ~/.local/share/tally. Removed at exit.
 */
let testDataHome: string | undefined;
function dataHome(): string {
  if (testDataHome === undefined) {
    const made = mkdtempSync(join(tmpdir(), 'tally-test-home-'));
    testDataHome = made;
    process.once('exit', () => rmSync(made, { recursive: true, force: true }));
  }
  return testDataHome;
}

/**
 * An environment with no NATS_URL, LOG_LEVEL or TALLY_DATA_DIR leaking in from the developer's
 * shell, and the embedded store in a temporary $XDG_DATA_HOME (unless `extra` names one).
 */
export function cleanEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const env = { ...process.env };
  delete env.NATS_URL;
  delete env.LOG_LEVEL;
  delete env.TALLY_DATA_DIR;
  return { ...env, XDG_DATA_HOME: dataHome(), ...extra };
}

/** Starts `tally ARGS` without waiting; the caller owns the child. */
export function spawnTally(args: string[], options: RunOptions = {}): ChildProcess {
  const child = spawn(process.execPath, [TALLY_BIN, ...args], {
    cwd: options.cwd ?? REPO_ROOT,
    env: options.env ?? cleanEnv(),
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  if (options.input !== undefined) child.stdin!.end(options.input);
  else child.stdin!.end();
  return child;
}

/** Runs `tally ARGS` to completion and collects its output. */
export function runTally(args: string[], options: RunOptions = {}): Promise<RunResult> {
  const started = Date.now();
  const child = spawnTally(args, options);
  return collect(child, started, options.timeoutMs ?? 120_000);
}

/** Collects a child's output until it exits (killing it after `timeoutMs`). */
export function collect(child: ChildProcess, started = Date.now(), timeoutMs = 120_000): Promise<RunResult> {
  let stdout = '';
  let stderr = '';
  child.stdout!.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  return new Promise((resolve) => {
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr, ms: Date.now() - started });
    });
  });
}

/** `tally worker` with N processes against `url`; stop() sends SIGTERM and waits. */
export interface WorkerFleet {
  child: ChildProcess;
  /** What the supervisor and its processes have written to stderr so far. */
  stderr(): string;
  stop(): Promise<RunResult>;
}

export function startWorkers(url: string, processes: number, env: NodeJS.ProcessEnv = {}, extraArgs: string[] = []): WorkerFleet {
  const child = spawn(process.execPath, [TALLY_BIN, 'worker', '--server', url, '--processes', String(processes), '--log-level', 'warn', ...extraArgs], {
    cwd: REPO_ROOT,
    env: cleanEnv(env),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const done = collect(child, Date.now(), 10 * 60_000);
  let stderr = '';
  child.stderr!.on('data', (d: string) => (stderr += d));
  return {
    child,
    stderr: () => stderr,
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      return done;
    },
  };
}
