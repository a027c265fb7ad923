/**
 * Reading V8 .cpuprofile files (node --cpu-prof): self time by area and by function, and
 * inclusive time of tally's main steps. Used by bench/profile.ts.
 */
import { readFileSync } from 'node:fs';
import { basename } from 'node:path';
import { fmt, round, textTable } from './lib.js';

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
}
interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  children?: number[];
}
interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

/** Tally's steps whose inclusive time is worth seeing (function names in dist/). */
const STEPS = [
  'mapChunk',
  'countChunk',
  'encodeLines',
  'reducePartial',
  'finalizeAcc',
  'publishTasks',
  'onResult',
  'push',
  'chunkStream',
  'handle',
  'publishResult',
  'decodeTask',
  'encodeEnvelope',
  'decodeResult',
  'renderCount',
];

function area(frame: CallFrame): string {
  const { url, functionName } = frame;
  if (functionName === '(idle)') return 'idle';
  if (functionName === '(garbage collector)') return 'GC';
  if (functionName === '(program)') return 'program (native, unattributed)';
  if (functionName === '(root)') return 'root';
  const pkg = /node_modules\/(@[^/]+\/[^/]+|[^/]+)\//.exec(url);
  if (pkg) return pkg[1].startsWith('@nats-io/') ? `nats client (${pkg[1]})` : `package ${pkg[1]}`;
  const dist = /\/dist\/(shared\/text|shared\/kinds|shared\/nats|shared|coordinator|worker|bench)\//.exec(url);
  if (dist) return `tally ${dist[1]}`;
  if (url.startsWith('node:')) return 'node internals';
  if (url === '') return `native: ${functionName || '(anonymous)'}`;
  return 'other';
}

function frameKey(frame: CallFrame): string {
  const file = frame.url ? basename(frame.url) : '';
  return `${frame.functionName || '(anonymous)'} ${file}${file ? `:${frame.lineNumber + 1}` : ''}`;
}

export interface ProfileSummary {
  file: string;
  pid: number;
  role: string;
  durationMs: number;
  idleMs: number;
  busyMs: number;
  gcMs: number;
  areas: Array<[string, number]>;
  top: Array<[string, number]>;
  steps: Array<[string, number]>;
}

export function summarizeProfile(path: string, role: string): ProfileSummary {
  const profile = JSON.parse(readFileSync(path, 'utf8')) as CpuProfile;
  const byId = new Map<number, ProfileNode>();
  const parent = new Map<number, number>();
  for (const node of profile.nodes) {
    byId.set(node.id, node);
    for (const child of node.children ?? []) parent.set(child, node.id);
  }
  const self = new Map<number, number>();
  for (let i = 0; i < profile.samples.length; i++) {
    const id = profile.samples[i];
    // timeDeltas[i] is the time before sample i; attribute the following delta to it.
    const dt = (profile.timeDeltas[i + 1] ?? 0) / 1000;
    self.set(id, (self.get(id) ?? 0) + dt);
  }
  const areas = new Map<string, number>();
  const top = new Map<string, number>();
  const steps = new Map<string, number>();
  let idle = 0;
  let gc = 0;
  for (const [id, ms] of self) {
    const node = byId.get(id)!;
    const a = area(node.callFrame);
    areas.set(a, (areas.get(a) ?? 0) + ms);
    if (a === 'idle') idle += ms;
    if (a === 'GC') gc += ms;
    if (a !== 'idle' && a !== 'root') {
      const key = a.startsWith('tally') || a.startsWith('nats') || a.startsWith('node') || a.startsWith('package') ? `${frameKey(node.callFrame)} [${a}]` : frameKey(node.callFrame);
      top.set(key, (top.get(key) ?? 0) + ms);
    }
    // Inclusive time of tally's steps: each sample counts once per step on its stack.
    const seen = new Set<string>();
    for (let n: number | undefined = id; n !== undefined; n = parent.get(n)) {
      const frame = byId.get(n)!.callFrame;
      if (STEPS.includes(frame.functionName) && frame.url.includes('/dist/') && !seen.has(frame.functionName)) {
        seen.add(frame.functionName);
        steps.set(frame.functionName, (steps.get(frame.functionName) ?? 0) + ms);
      }
    }
  }
  const durationMs = (profile.endTime - profile.startTime) / 1000;
  const sorted = (m: Map<string, number>, n: number) => [...m.entries()].sort((a, b) => b[1] - a[1]).slice(0, n).map(([k, v]) => [k, round(v, 1)] as [string, number]);
  const pid = Number(/\.(\d+)\.\d+\.\d+\.cpuprofile$/.exec(path)?.[1] ?? -1);
  return { file: path, pid, role, durationMs: round(durationMs, 1), idleMs: round(idle, 1), busyMs: round(durationMs - idle, 1), gcMs: round(gc, 1), areas: sorted(areas, 12), top: sorted(top, 15), steps: sorted(steps, STEPS.length) };
}

export function printSummary(s: ProfileSummary): string {
  const pct = (v: number) => `${fmt((v / s.durationMs) * 100)}%`;
  let out = `\n== ${s.role} pid ${s.pid}: ${fmt(s.durationMs)} ms profiled, busy ${fmt(s.busyMs)} ms (${pct(s.busyMs)}), idle ${fmt(s.idleMs)} ms, GC ${fmt(s.gcMs)} ms\n`;
  out += textTable(['self time by area', 'ms', 'share'], s.areas.map(([k, v]) => [k, fmt(v), pct(v)]));
  out += textTable(['top functions (self)', 'ms', 'share'], s.top.map(([k, v]) => [k, fmt(v), pct(v)]));
  if (s.steps.length > 0) out += textTable(['tally step (inclusive)', 'ms', 'share'], s.steps.map(([k, v]) => [k, fmt(v), pct(v)]));
  return out;
}

