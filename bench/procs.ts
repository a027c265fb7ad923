/**
 * Watches a process tree through /proc while a benchmark runs: CPU seconds (user + system) and
 * peak RSS (VmHWM) per process, with each process's role guessed from its command line.
 * Sampling every `intervalMs`; a process's last interval before it exits is lost, so CPU
 * figures are low by at most that much per process.
 */
import { readFileSync } from 'node:fs';
import { childPids } from './lib.js';
import { WORKER_PROGRAM } from '../worker/supervisor.js';

const CLK_TCK = 100; // Linux USER_HZ; true on every mainstream kernel config

export type Role = 'coordinator' | 'worker' | 'supervisor' | 'nats-server' | 'python' | 'other';

export interface ProcessUsage {
  pid: number;
  role: Role;
  cpuMs: number;
  /** Of cpuMs, time in the kernel (socket and file I/O, page faults). */
  sysMs: number;
  peakRssKb: number;
}

function readStat(pid: number): { cpuMs: number; sysMs: number } | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the ")" of comm: state is field 3; utime 14, stime 15 (1-based).
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const utime = Number(rest[11]);
    const stime = Number(rest[12]);
    return { cpuMs: ((utime + stime) * 1000) / CLK_TCK, sysMs: (stime * 1000) / CLK_TCK };
  } catch {
    return null;
  }
}

function readHwm(pid: number): number | null {
  try {
    const match = /^VmHWM:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return match ? Number(match[1]) : null;
  } catch {
    return null;
  }
}

/** The role of a process from its command line; null when it has none (gone, or a zombie). */
function roleOf(pid: number, rootPid: number, rootRole: Role): Role | null {
  if (pid === rootPid) return rootRole;
  try {
    const raw = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
    if (raw === '') return null;
    const cmd = raw.split('\0');
    const text = cmd.join(' ');
    if (/nats-server/.test(cmd[0] ?? '')) return 'nats-server';
    if (text.includes(WORKER_PROGRAM)) return 'worker';
    if (/tally\.js worker/.test(text)) return 'supervisor';
    if (/python/.test(cmd[0] ?? '')) return 'python';
    return 'other';
  } catch {
    return null;
  }
}

export class TreeSampler {
  private readonly usage = new Map<number, ProcessUsage>();
  private timer: NodeJS.Timeout | null = null;
  private readonly rootPid: number;
  private readonly rootRole: Role;

  constructor(rootPid: number, rootRole: Role = 'coordinator', intervalMs = 50) {
    this.rootPid = rootPid;
    this.rootRole = rootRole;
    this.sample();
    this.timer = setInterval(() => this.sample(), intervalMs);
  }

  private sample(): void {
    const seen = new Set<number>();
    const visit = (pid: number) => {
      if (seen.has(pid)) return;
      seen.add(pid);
      const stat = readStat(pid);
      if (stat) {
        let entry = this.usage.get(pid);
        if (!entry) {
          entry = { pid, role: roleOf(pid, this.rootPid, this.rootRole) ?? 'other', cpuMs: 0, sysMs: 0, peakRssKb: 0 };
          this.usage.set(pid, entry);
        } else if (pid !== this.rootPid) {
          // A child seen between fork and exec still shows its parent's command line (a worker
          // process would pass for 'other'): the role is settled by the latest look that finds
          // a command line (an exited, unreaped process has none).
          entry.role = roleOf(pid, this.rootPid, this.rootRole) ?? entry.role;
        }
        entry.cpuMs = Math.max(entry.cpuMs, stat.cpuMs);
        entry.sysMs = Math.max(entry.sysMs, stat.sysMs);
        entry.peakRssKb = Math.max(entry.peakRssKb, readHwm(pid) ?? 0);
      }
      for (const child of childPids(pid)) visit(child);
    };
    visit(this.rootPid);
  }

  /** Stops sampling (takes one last sample first) and returns the usage per process. */
  stop(): ProcessUsage[] {
    this.sample();
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    return [...this.usage.values()];
  }
}

/** CPU ms summed by role (or kernel-only ms with `sys`). */
export function cpuByRole(usage: ProcessUsage[], sys = false): Partial<Record<Role, number>> {
  const out: Partial<Record<Role, number>> = {};
  for (const u of usage) out[u.role] = (out[u.role] ?? 0) + (sys ? u.sysMs : u.cpuMs);
  return out;
}

/**
 * CPU ms (user + system) used so far by a live process and its live descendants (0 for any
 * that are gone). Two readings bracket an interval: what the tree used in between.
 */
export function treeCpuMs(pid: number): number {
  let total = readStat(pid)?.cpuMs ?? 0;
  for (const child of childPids(pid)) total += treeCpuMs(child);
  return total;
}
