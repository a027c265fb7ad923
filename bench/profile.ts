/**
 * Profiles tally's slow paths, for finding what bounds a missed benchmark target:
 *
 *   node dist/bench/profile.js [--small] [--scenario count,tiny,startup]
 *   node dist/bench/profile.js --summarize FILE.cpuprofile...
 *
 * Each scenario runs the embedded CLI once under node --cpu-prof (the coordinator and every
 * forked worker, which inherits the flag, write a .cpuprofile), samples CPU time of each process (nats-server too)
 * from /proc, and prints per process: busy vs idle, GC, self time by area (nats client, tally
 * text, node internals, ...), the top functions by self time, and inclusive time of tally's
 * main steps. The tiny-task scenario also runs once with --log-level debug and splits each
 * worker's task cycle into "handle" (decode, map, publish result and wait for its ack) and the
 * rest (ackAck round trip + pulling the next task).
 *
 * Profiles and summary.json go to bench/.profiles/<scenario>/ (gitignored).
 */
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { corpusFile, englishSeed } from './corpus.js';
import { BENCH_SRC, TALLY_BIN, childPids, fmt, median, round, run, say, sleep, startWarmFleet } from './lib.js';
import { printSummary, summarizeProfile, type ProfileSummary } from './cpuprofile.js';
import { cpuByRole, TreeSampler, type ProcessUsage } from './procs.js';

interface ScenarioResult {
  scenario: string;
  command: string[];
  wallMs: number;
  cpuMsByRole: Record<string, number>;
  processes: ProcessUsage[];
  profiles: ProfileSummary[];
  taskCycles?: Record<string, unknown>;
}

async function profiled(scenario: string, args: string[], env: NodeJS.ProcessEnv, outDir: string): Promise<ScenarioResult> {
  const dir = join(outDir, scenario);
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  let sampler: TreeSampler | null = null;
  // Node 20 refuses --cpu-prof in NODE_OPTIONS; as node arguments it also reaches the worker
  // processes, because fork() passes the parent's execArgv on.
  const result = await run(process.execPath, ['--cpu-prof', `--cpu-prof-dir=${dir}`, TALLY_BIN, ...args], {
    env,
    onSpawn: (pid) => (sampler = new TreeSampler(pid)),
  });
  const processes = (sampler as TreeSampler | null)?.stop() ?? [];
  const roleOf = new Map(processes.map((p) => [p.pid, p.role]));
  const profiles = readdirSync(dir)
    .filter((f) => f.endsWith('.cpuprofile'))
    .map((f) => {
      const pid = Number(/\.(\d+)\.\d+\.\d+\.cpuprofile$/.exec(f)?.[1] ?? -1);
      return summarizeProfile(join(dir, f), roleOf.get(pid) ?? 'unknown');
    });
  const byRole = cpuByRole(processes);
  return {
    scenario,
    command: ['tally', ...args],
    wallMs: round(result.ms, 1),
    cpuMsByRole: Object.fromEntries(Object.entries(byRole).map(([k, v]) => [k, round(v ?? 0, 0)])),
    processes,
    profiles,
  };
}

/** Splits each worker's task cycle using the debug "task done" lines (handle time in `ms`). */
async function taskCycles(args: string[], env: NodeJS.ProcessEnv): Promise<Record<string, unknown>> {
  const r = await run(process.execPath, [TALLY_BIN, ...args, '--log-level', 'debug'], { env });
  const byPid = new Map<number, Array<{ time: number; ms: number }>>();
  for (const line of r.stderr.split('\n')) {
    if (!line.includes('"task done"')) continue;
    const j = JSON.parse(line) as { pid: number; time: number; ms: number };
    const list = byPid.get(j.pid) ?? [];
    list.push({ time: j.time, ms: j.ms });
    byPid.set(j.pid, list);
  }
  const perWorker = [...byPid.entries()].map(([pid, list]) => {
    const cycles: number[] = [];
    for (let i = 1; i < list.length; i++) cycles.push(list[i].time - list[i - 1].time);
    const handle = list.map((x) => x.ms);
    const span = list.length > 1 ? list[list.length - 1].time - list[0].time : 0;
    const handleSum = handle.reduce((a, b) => a + b, 0);
    return {
      pid,
      tasks: list.length,
      spanMs: span,
      meanCycleMs: round(span / Math.max(1, list.length - 1), 3),
      medianHandleMs: median(handle),
      meanHandleMs: round(handleSum / list.length, 3),
      handleShareOfSpan: round(handleSum / Math.max(1, span), 3),
      cyclesMsP50: median(cycles),
    };
  });
  return { wallMs: round(r.ms, 1), note: 'handleMs = the ms field of the worker\'s "task done" debug line (what the worker times for a task); cycle = time between consecutive "task done" lines of one worker', perWorker };
}

/** CPU ms of a process from /proc (user + system), or 0. */
function cpuMs(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return ((Number(rest[11]) + Number(rest[12])) * 1000) / 100;
  } catch {
    return 0;
  }
}

interface Varz {
  in_msgs: number;
  out_msgs: number;
  in_bytes: number;
  out_bytes: number;
}

/**
 * Runs a job against a server of our own (distributed mode, `tally worker --processes 2`
 * already running) and counts what crossed the server per task: messages in and out (from
 * the monitoring endpoint's /varz) and CPU ms of the server, the workers and the coordinator.
 */
async function serverAccounting(name: string, jobArgs: string[], env: NodeJS.ProcessEnv, tasks: number): Promise<Record<string, unknown>> {
  const storeDir = mkdtempSync(join(tmpdir(), 'tally-profile-store-'));
  const fleet = await startWarmFleet(storeDir, env, { monitor: true });
  const { server, supervisor } = fleet;
  try {
    await sleep(200);
    const varz = async () => (await (await fetch(`${server.monitorUrl}/varz`)).json()) as Varz;
    const workers = childPids(supervisor.pid!);
    const before = { varz: await varz(), server: cpuMs(server.pid), workers: workers.map(cpuMs) };
    let coordinatorCpu = 0;
    let coordinatorPid = -1;
    const poll = setInterval(() => (coordinatorCpu = Math.max(coordinatorCpu, cpuMs(coordinatorPid))), 20);
    const r = await run(process.execPath, [TALLY_BIN, ...jobArgs, '--server', server.url], { env, onSpawn: (pid) => (coordinatorPid = pid) });
    clearInterval(poll);
    const after = { varz: await varz(), server: cpuMs(server.pid), workers: workers.map(cpuMs) };
    const d = (k: keyof Varz) => after.varz[k] - before.varz[k];
    const workerCpu = after.workers.reduce((a, b) => a + b, 0) - before.workers.reduce((a, b) => a + b, 0);
    const serverCpu = after.server - before.server;
    return {
      scenario: name,
      command: ['tally', ...jobArgs, '--server', 'URL'],
      note: 'distributed mode: own nats-server with monitoring, `tally worker --processes 2` started (and ready) before the clock',
      wallMs: round(r.ms, 1),
      tasks,
      serverMsgsInPerTask: round(d('in_msgs') / tasks, 2),
      serverMsgsOutPerTask: round(d('out_msgs') / tasks, 2),
      serverBytesIn: d('in_bytes'),
      serverBytesOut: d('out_bytes'),
      cpuMs: { coordinator: coordinatorCpu, workers: workerCpu, natsServer: serverCpu },
      cpuMsPerTask: {
        coordinator: round(coordinatorCpu / tasks, 4),
        workers: round(workerCpu / tasks, 4),
        natsServer: round(serverCpu / tasks, 4),
        total: round((coordinatorCpu + workerCpu + serverCpu) / tasks, 4),
      },
      tasksPerSecond: round(tasks / (r.ms / 1000), 0),
    };
  } finally {
    await fleet.stop();
  }
}

async function main(): Promise<void> {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: { small: { type: 'boolean', default: false }, scenario: { type: 'string', default: 'count,tiny,startup' }, summarize: { type: 'boolean', default: false } },
  });
  if (values.summarize) {
    // node dist/bench/profile.js --summarize FILE.cpuprofile...
    for (const file of positionals) process.stdout.write(printSummary(summarizeProfile(file, 'process')));
    return;
  }
  const small = values.small === true || process.env.BENCH_SMALL === '1';
  const scenarios = new Set(values.scenario!.split(','));
  const outDir = join(BENCH_SRC, '.profiles');
  mkdirSync(outDir, { recursive: true });
  const dataDir = mkdtempSync(join(tmpdir(), 'tally-profile-'));
  const env: NodeJS.ProcessEnv = { ...process.env, TALLY_DATA_DIR: dataDir };
  delete env.NATS_URL;
  delete env.LOG_LEVEL;
  const results: ScenarioResult[] = [];
  const accounting: Array<Record<string, unknown>> = [];
  const MiB = 1024 * 1024;
  try {
    if (scenarios.has('count')) {
      const bytes = small ? 8 * MiB : 200 * MiB;
      const file = corpusFile(englishSeed(), bytes, `english-${bytes / MiB}MiB`);
      say(`profiling tally count on ${file.path}`);
      const args = ['count', file.path, '--no-progress', '--format', 'json'];
      results.push(await profiled('count', [...args, '--workers', '2'], env, outDir));
      accounting.push(await serverAccounting('count', args, env, Math.ceil(file.bytes / MiB)));
    }
    if (scenarios.has('tiny')) {
      const tasks = small ? 500 : 20000;
      const args = ['sum', '1', '1e7', '--tasks', String(tasks), '--no-progress', '--format', 'json'];
      say('profiling tiny tasks');
      const r = await profiled('tiny', [...args, '--workers', '2'], env, outDir);
      r.taskCycles = await taskCycles([...args, '--workers', '2'], env);
      results.push(r);
      accounting.push(await serverAccounting('tiny', args, env, tasks));
    }
    if (scenarios.has('startup')) {
      say('profiling start-up');
      results.push(await profiled('startup', ['sum', '1', '10', '--workers', '2', '--no-progress', '--format', 'json'], env, outDir));
    }
  } finally {
    rmSync(dataDir, { recursive: true, force: true });
  }
  for (const r of results) {
    process.stdout.write(`\n######## ${r.scenario}: ${r.command.join(' ')}\nwall ${fmt(r.wallMs)} ms; CPU ms by process role (from /proc): ${JSON.stringify(r.cpuMsByRole)}\n`);
    for (const p of r.profiles.sort((a, b) => a.role.localeCompare(b.role))) process.stdout.write(printSummary(p));
    if (r.taskCycles) process.stdout.write(`\ntask cycles (debug run): ${JSON.stringify(r.taskCycles, null, 2)}\n`);
  }
  for (const a of accounting) process.stdout.write(`\n######## server accounting: ${JSON.stringify(a, null, 2)}\n`);
  writeFileSync(join(outDir, 'summary.json'), JSON.stringify({ results, accounting }, null, 2) + '\n');
  process.stdout.write(`\nprofiles (open in Chrome DevTools) and summary.json in ${outDir}\n`);
}

main().catch((error) => {
  process.stderr.write(`profile: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exit(1);
});
