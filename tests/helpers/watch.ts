/**
 * Waiting on events rather than on time, for the end-to-end tests of documented behaviour: a
 * condition polled until it holds (a log line, a message seen, a server-side state), the JSON
 * lines a process wrote, its children and its peak memory from /proc.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { REPO_ROOT, TALLY_BIN, cleanEnv, collect, type RunResult } from './tally.js';

/**
 * Resolves once `condition()` is true (checked every 20 ms); rejects naming `what` after
 * `timeoutMs`, so a test that waits for an event that never comes fails instead of hanging.
 */
export async function waitFor(condition: () => boolean | Promise<boolean>, what: string, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await condition()) return;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** The JSON objects among the lines of `text` (pino logs, test-hook lines); other lines skipped. */
export function jsonLines(text: string): Array<Record<string, unknown>> {
  const out: Array<Record<string, unknown>> = [];
  for (const line of text.split('\n')) {
    if (!line.startsWith('{')) continue;
    try {
      out.push(JSON.parse(line) as Record<string, unknown>);
    } catch {
      // a line cut by the end of what was read so far
    }
  }
  return out;
}

/** The child processes of `parent` (a supervisor's worker processes). */
export function childPids(parent: number): number[] {
  try {
    return execFileSync('pgrep', ['-P', String(parent)], { encoding: 'utf8' }).trim().split('\n').filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

/** A process's peak resident set (VmHWM) in bytes, from /proc; null once it is gone. */
export function peakRss(pid: number): number | null {
  try {
    const match = /^VmHWM:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return match ? Number(match[1]) * 1024 : null;
  } catch {
    return null;
  }
}

/**
 * `tally worker` as a child the test owns outright: unlike startWorkers' stop(), nothing here
 * sends a signal, so a test can send exactly the signals it means to (a second SIGTERM would
 * kill the supervisor outright). `done` resolves when it exits.
 */
export interface OwnedFleet {
  child: ChildProcess;
  stderr(): string;
  done: Promise<RunResult>;
  /** SIGKILLs the supervisor and every worker process it has (they run in groups of their own). */
  kill(): void;
}

export function spawnWorker(url: string, processes: number, env: NodeJS.ProcessEnv, extraArgs: string[] = []): OwnedFleet {
  const child = spawn(process.execPath, [TALLY_BIN, 'worker', '--server', url, '--processes', String(processes), ...extraArgs], {
    cwd: REPO_ROOT,
    env: cleanEnv(env),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer | string) => (stderr += String(d)));
  const done = collect(child, Date.now(), 10 * 60_000);
  return {
    child,
    stderr: () => stderr,
    done,
    kill: () => {
      for (const pid of childPids(child.pid!)) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // gone already
        }
      }
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    },
  };
}

/**
 * Watches the result messages published on a server (`tally.result.>`, seen by a plain
 * subscriber as they go into the results stream) and counts, per job, those whose partial went
 * through the Object Store (a header naming an `object`, with an empty body) and those carried
 * inline. The header is read here from the wire format directly (4-byte length, JSON), not with
 * the decoder under test.
 */
export interface ResultWatch {
  /** Results of `job` whose body went through the partials bucket. */
  viaObjectStore(job: string): number;
  /** Results of `job` carried inline in the message. */
  inline(job: string): number;
  /** Every job seen. */
  jobs(): string[];
  stop(): void;
}

export function watchResults(nc: { subscribe: (subject: string, opts: { callback: (error: unknown, message: { subject: string; data: Uint8Array }) => void }) => { unsubscribe(): void } }): ResultWatch {
  const objects = new Map<string, number>();
  const inline = new Map<string, number>();
  const sub = nc.subscribe('tally.result.>', {
    callback: (_error, message) => {
      const data = message.data;
      if (data.length < 4) return;
      const length = new DataView(data.buffer, data.byteOffset, data.byteLength).getUint32(0);
      let header: { job?: unknown; object?: unknown };
      try {
        header = JSON.parse(Buffer.from(data.subarray(4, 4 + length)).toString('utf8')) as { job?: unknown; object?: unknown };
      } catch {
        return;
      }
      const job = String(header.job);
      const bodyBytes = data.length - 4 - length;
      if (typeof header.object === 'string' && header.object.length > 0 && bodyBytes === 0) objects.set(job, (objects.get(job) ?? 0) + 1);
      else inline.set(job, (inline.get(job) ?? 0) + 1);
    },
  });
  return {
    viaObjectStore: (job) => objects.get(job) ?? 0,
    inline: (job) => inline.get(job) ?? 0,
    jobs: () => [...new Set([...objects.keys(), ...inline.keys()])],
    stop: () => sub.unsubscribe(),
  };
}
