/**
 * Small helpers for the benchmark harness: running commands with wall-clock timing, medians,
 * reading peak RSS from /proc, and plain-text tables. No dependencies beyond Node itself.
 */
import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { startNatsServer, type NatsServerProcess } from '../coordinator/nats-server.js';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import type { CorpusFile } from './corpus.js';

/** The repository root (dist/bench/lib.js → ../../). */
export const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));
export const TALLY_BIN = join(REPO_ROOT, 'bin', 'tally.js');
export const BENCH_SRC = join(REPO_ROOT, 'bench');

export function median(values: number[]): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

export function round(value: number, digits = 2): number {
  if (!Number.isFinite(value)) return value;
  const f = 10 ** digits;
  return Math.round(value * f) / f;
}

/** Megabytes (10^6 bytes) per second. */
export function mbps(bytes: number, ms: number): number {
  return bytes / 1e6 / (ms / 1000);
}

export interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  /** Wall time from spawn to exit, ms. */
  ms: number;
  /** Epoch ms at spawn, for lining up log timestamps. */
  startedAt: number;
  /** Epoch ms when the first stdout byte arrived (null if none). */
  firstStdoutAt: number | null;
  pid: number;
}

export interface RunOptions extends SpawnOptions {
  /** Text fed to stdin. */
  input?: string;
  /** Called with the child's pid right after spawn. */
  onSpawn?: (pid: number) => void;
  /** Fail (throw) on a non-zero exit. Default true. */
  check?: boolean;
  /** Kill the child after this many ms. */
  timeoutMs?: number;
}

/** Runs a command to completion and times it (wall clock, spawn to exit). */
export function run(command: string, args: string[], options: RunOptions = {}): Promise<RunResult> {
  const { input, onSpawn, check = true, timeoutMs, ...spawnOptions } = options;
  return new Promise((resolve, reject) => {
    const startedAt = Date.now();
    const t0 = performance.now();
    const child = spawn(command, args, { stdio: ['pipe', 'pipe', 'pipe'], ...spawnOptions });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let firstStdoutAt: number | null = null;
    child.stdout?.on('data', (d: Buffer) => {
      firstStdoutAt ??= Date.now();
      out.push(d);
    });
    child.stderr?.on('data', (d: Buffer) => err.push(d));
    child.once('error', reject);
    if (child.pid !== undefined) onSpawn?.(child.pid);
    if (child.stdin) {
      if (input !== undefined) child.stdin.end(input);
      else child.stdin.end();
    }
    const timer = timeoutMs ? setTimeout(() => child.kill('SIGKILL'), timeoutMs) : undefined;
    child.once('close', (code, signal) => {
      if (timer) clearTimeout(timer);
      const ms = performance.now() - t0;
      const result: RunResult = {
        code,
        signal,
        stdout: Buffer.concat(out).toString('utf8'),
        stderr: Buffer.concat(err).toString('utf8'),
        ms,
        startedAt,
        firstStdoutAt,
        pid: child.pid ?? -1,
      };
      if (check && code !== 0) {
        reject(new Error(`${command} ${args.join(' ')} exited with ${code ?? signal}: ${result.stderr.trim().split('\n').slice(-5).join(' | ')}`));
      } else {
        resolve(result);
      }
    });
  });
}

/** Runs a shell pipeline with bash -o pipefail. */
export function sh(script: string, options: RunOptions = {}): Promise<RunResult> {
  return run('bash', ['-o', 'pipefail', '-c', script], options);
}

/** A /proc/PID/status field in kB (VmHWM = peak RSS, VmRSS = current), or null. */
export function procStatusKb(pid: number, field: 'VmHWM' | 'VmRSS'): number | null {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const match = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status);
    return match ? Number(match[1]) : null;
  } catch {
    return null;
  }
}

/** Direct children of a process (Linux /proc/PID/task/*\/children). */
export function childPids(pid: number): number[] {
  try {
    const text = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim();
    return text ? text.split(/\s+/).map(Number) : [];
  } catch {
    return [];
  }
}

export const GNU_TIME = '/usr/bin/time';
export const hasGnuTime = (): boolean => existsSync(GNU_TIME);

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Formats rows as an aligned plain-text table. */
export function textTable(header: string[], rows: Array<Array<string | number>>): string {
  const cells = [header, ...rows.map((r) => r.map((c) => String(c)))];
  const widths = header.map((_, i) => Math.max(...cells.map((r) => (r[i] ?? '').length)));
  const line = (r: string[]) => r.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ').trimEnd();
  return [line(cells[0]), widths.map((w) => '-'.repeat(w)).join('  '), ...cells.slice(1).map(line)].join('\n') + '\n';
}

/** Formats rows as a GitHub markdown table. */
export function markdownTable(header: string[], rows: Array<Array<string | number>>, align?: Array<'l' | 'r'>): string {
  const sep = header.map((_, i) => ((align?.[i] ?? (i === 0 ? 'l' : 'r')) === 'r' ? '---:' : ':---'));
  const esc = (c: string | number) => String(c).replace(/\|/g, '\\|');
  return [`| ${header.map(esc).join(' | ')} |`, `| ${sep.join(' | ')} |`, ...rows.map((r) => `| ${r.map(esc).join(' | ')} |`)].join('\n') + '\n';
}

/** Human number formatting: 3 significant figures, at least 0 decimals. */
export function fmt(value: number | null | undefined, digits = 3): string {
  if (value === null || value === undefined || !Number.isFinite(value)) return 'n/a';
  const abs = Math.abs(value);
  if (abs >= 10 ** digits) return Math.round(value).toLocaleString('en-US');
  return Number(value.toPrecision(digits)).toString();
}

/** Logs a progress line on stderr (the table goes to stdout). */
export function say(text: string): void {
  process.stderr.write(`bench: ${text}\n`);
}

/** Busy and total jiffies of the whole machine, from /proc/stat. */
export function machineJiffies(): { busy: number; total: number } {
  const line = readFileSync('/proc/stat', 'utf8').split('\n')[0];
  const v = line.trim().split(/\s+/).slice(1).map(Number);
  const idle = (v[3] ?? 0) + (v[4] ?? 0); // idle + iowait
  const total = v.slice(0, 8).reduce((a, b) => a + b, 0); // user..steal (guest is inside user)
  return { busy: total - idle, total };
}

/** utime+stime+cutime+cstime of one process, in jiffies (0 if gone). */
function processJiffies(pid: number | 'self'): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return Number(rest[11]) + Number(rest[12]) + Number(rest[13]) + Number(rest[14]);
  } catch {
    return 0;
  }
}

/**
 * CPU jiffies of this process tree: this process, its reaped descendants (cutime/cstime) and
 * its live descendants (each with its own reaped ones), so a server or workers that the
 * harness keeps running between runs count as ours.
 */
export function ownJiffies(): number {
  let total = processJiffies('self');
  const visit = (pid: number) => {
    for (const child of childPids(pid)) {
      total += processJiffies(child);
      visit(child);
    }
  };
  visit(process.pid);
  return total;
}

/**
 * Tracks CPU used on the machine by processes that are not ours (other users, other jobs)
 * while runs are timed: machine busy time minus this process tree's, between `start()` and
 * `stop()`. `take()` returns the average number of cores they kept busy over the timed
 * intervals since the last take.
 */
export class Interference {
  private foreign = 0;
  private seconds = 0;
  private mark: { machine: number; own: number; at: number } | null = null;

  start(): void {
    this.mark = { machine: machineJiffies().busy, own: ownJiffies(), at: performance.now() };
  }

  stop(): void {
    if (!this.mark) return;
    const machine = machineJiffies().busy;
    const own = ownJiffies();
    this.foreign += Math.max(0, machine - this.mark.machine - (own - this.mark.own));
    this.seconds += (performance.now() - this.mark.at) / 1000;
    this.mark = null;
  }

  take(): number {
    const cores = this.seconds > 0 ? this.foreign / 100 / this.seconds : 0;
    this.foreign = 0;
    this.seconds = 0;
    return cores;
  }
}

/** Fraction of the machine busy over `ms` (all processes). */
export async function machineBusy(ms: number): Promise<number> {
  const a = machineJiffies();
  await sleep(ms);
  const b = machineJiffies();
  return b.total > a.total ? (b.busy - a.busy) / (b.total - a.total) : 0;
}

/**
 * Waits (up to `maxWaitMs`) until the machine is quiet: less than `threshold` of it busy over
 * half a second. Returns the ms waited; benchmarks on a shared machine start from a quiet one.
 */
export async function waitQuiet(threshold: number, maxWaitMs: number): Promise<number> {
  const t0 = performance.now();
  while (performance.now() - t0 < maxWaitMs) {
    if ((await machineBusy(500)) < threshold) return performance.now() - t0;
  }
  return performance.now() - t0;
}

/** A nats-server of the benchmark's own with `tally worker --processes 2` connected and ready. */
export interface WarmFleet {
  server: NatsServerProcess;
  /** The `tally worker` supervisor process (its children are the worker processes). */
  supervisor: ChildProcess;
  /** Stops the workers (SIGTERM, SIGKILL after 15 s), then the server, and removes the store. */
  stop(): Promise<void>;
}

/** Starts a server on `storeDir` and two warm worker processes; resolves once both are ready. */
export async function startWarmFleet(storeDir: string, env: NodeJS.ProcessEnv, options: { monitor?: boolean } = {}): Promise<WarmFleet> {
  const server = await startNatsServer({ storeDir, monitor: options.monitor });
  const supervisor = spawn(process.execPath, [TALLY_BIN, 'worker', '--server', server.url, '--processes', '2', '--log-level', 'info'], { env, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  supervisor.stderr!.on('data', (d: Buffer) => (stderr = (stderr + d.toString('utf8')).slice(-65536)));
  const exited = new Promise<void>((resolve) => supervisor.once('exit', () => resolve()));
  const stop = async () => {
    supervisor.kill('SIGTERM');
    const killer = setTimeout(() => supervisor.kill('SIGKILL'), 15_000);
    await exited;
    clearTimeout(killer);
    await server.stop();
    rmSync(storeDir, { recursive: true, force: true });
  };
  try {
    const deadline = Date.now() + 30_000;
    while ((stderr.match(/"msg":"worker ready"/g) ?? []).length < 2) {
      if (Date.now() > deadline) throw new Error('workers did not become ready');
      await sleep(20);
    }
  } catch (error) {
    await stop();
    throw error;
  }
  return { server, supervisor, stop };
}

/** One measurement of the harness, as bench/results.json holds it. */
export interface Measurement {
  id: string;
  section: string;
  label: string;
  /** Median of `runs`. */
  value: number;
  unit: string;
  runs: number[];
  reps: number;
  /** Wall time of each run, ms (when the unit is not time). */
  wallMs?: number[];
  bytes?: number;
  notes?: string;
  extra?: Record<string, unknown>;
  /** Average cores kept busy by other processes while this was measured. */
  interference?: number;
}

/** What a section hands the harness's record(): a measurement whose median it works out. */
export type Recorded = Omit<Measurement, 'value'>;

/** What run.ts gives a section that runs `tally count --server` jobs on a nats-server of its own. */
export interface ServerSectionOptions {
  /** The English corpus file every job counts. */
  file: CorpusFile;
  /** The nats-server's store (removed afterwards). */
  storeDir: string;
  /** Environment of every tally process (no NATS_URL, a private TALLY_DATA_DIR). */
  env: NodeJS.ProcessEnv;
  /** Waits for a quiet machine, as before every timed run of the harness. */
  quiet: () => Promise<void>;
  record: (m: Recorded) => unknown;
}
