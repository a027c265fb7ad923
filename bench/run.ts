/**
 * tally's benchmark harness: tally and its peers side by side, on the same inputs, in one run.
 *
 *   npm run bench                        full run (~10-15 min, ~4 GB at peak with today's
 *                                        single-coordinator reduce): bench/results.json + results.md
 *   node dist/bench/run.js --small       CI smoke run (< 60 s): bench/results.local.json (so does --only)
 *   BENCH_SMALL=1 node dist/bench/run.js same as --small
 *
 * Options: --reps N (repetitions of fast measurements; default 3, 1 with --small),
 * --only calib,count,folder,compressed,tiny,primes,factorial,rss,startup,cardinality,dashboard,stragglers  --corpus english,multilingual
 * --out FILE (results JSON; a .md of the tables is written beside it), --keep (keep temp dirs),
 * --no-wait-quiet (do not wait for a quiet machine before each run; --small never waits).
 *
 * Every figure is the median of its runs; each measurement records how many runs it had.
 * Slow peers (tr|sort|uniq, Python's factorial) run once. The word-count peers run
 * interleaved (rep 1 of every peer, then rep 2, ...) so that a slow spell of a shared machine
 * hits them alike. Each measurement records `interference`: the average number of cores that
 * processes other than the harness's kept busy while it ran (0 on a quiet machine).
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { availableParallelism, cpus, release, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { findNatsServer, startNatsServer } from '../coordinator/nats-server.js';
import { CORPUS_DIR, corpusFile, corpusFolder, englishSeed, multilingualSeed, numbersFile, type CorpusFile, type NumbersFile, type Seed } from './corpus.js';
import { cpuByRole, TreeSampler, type ProcessUsage, type Role } from './procs.js';
import { dashboardSection } from './dashboard.js';
import { stragglersSection } from './stragglers.js';
import {
  BENCH_SRC,
  GNU_TIME,
  Interference,
  waitQuiet,
  REPO_ROOT,
  TALLY_BIN,
  childPids,
  fmt,
  hasGnuTime,
  markdownTable,
  mbps,
  median,
  procStatusKb,
  round,
  run,
  say,
  sh,
  textTable,
  type Measurement,
  type RunResult,
  startWarmFleet,
} from './lib.js';

// ---------------------------------------------------------------------------------------------
// Configuration

const { values: argv } = parseArgs({
  options: {
    small: { type: 'boolean', default: false },
    reps: { type: 'string' },
    only: { type: 'string' },
    corpus: { type: 'string' },
    out: { type: 'string' },
    keep: { type: 'boolean', default: false },
    'wait-quiet': { type: 'boolean', default: true },
  },
  allowNegative: true,
});

const SMALL = argv.small === true || /^(1|true|yes)$/i.test(process.env.BENCH_SMALL ?? '');
const MiB = 1024 * 1024;

interface Sizes {
  countBytes: number;
  multilingualBytes: number;
  rssBytes: [number, number];
  rssLabels: [string, string];
  tinyTasks: number;
  tinyTo: string;
  primesTo: string;
  primesExpected: number;
  /** Width of the window below 10^15 (the primes kind's limit) that tally and primesieve count. */
  primesWindow: string;
  /**
   * TO of the run the primes target is measured on (1..TO, 2 workers vs primesieve -t2): big
   * enough that tally's start-up (~0.3 s) is not most of it, as it is of primesieve's 0.1 s on 1e9.
   */
  primesTargetTo: string;
  primesTargetExpected: number;
  factorialN: number;
  factorialDigits: number;
  cpuSpinIterations: number;
  /** The folder of many small files: how many, and about how big each. */
  folderFiles: number;
  folderFileBytes: number;
  /** The high-cardinality corpus: the numbers 1..N, one per line (N words, all distinct). */
  cardinalityN: number;
}

const SIZES: Sizes = SMALL
  ? {
      countBytes: 8 * MiB,
      multilingualBytes: 4 * MiB,
      rssBytes: [4 * MiB, 16 * MiB],
      rssLabels: ['4MiB', '16MiB'],
      tinyTasks: 500,
      tinyTo: '1e6',
      primesTo: '1e7',
      primesExpected: 664_579,
      primesWindow: '1e7',
      primesTargetTo: '1e8',
      primesTargetExpected: 5_761_455,
      factorialN: 20_000,
      factorialDigits: 77_338,
      cpuSpinIterations: 5e7,
      folderFiles: 2_000,
      folderFileBytes: 2_000,
      cardinalityN: 500_000,
    }
  : {
      countBytes: 200 * MiB,
      multilingualBytes: 200 * MiB,
      rssBytes: [200 * MiB, 1024 * MiB],
      rssLabels: ['200MiB', '1GiB'],
      tinyTasks: 20_000,
      tinyTo: '1e7',
      primesTo: '1e9',
      primesExpected: 50_847_534,
      primesWindow: '1e10',
      primesTargetTo: '1e10',
      primesTargetExpected: 455_052_511,
      // The issue's figure: 10^6! (published digit count), a few seconds a run.
      factorialN: 1_000_000,
      factorialDigits: 5_565_709,
      cpuSpinIterations: 4e8,
      // Like the SpamAssassin corpus: 12,092 mails, 67 MB.
      folderFiles: 12_000,
      folderFileBytes: 5_500,
      // `seq 1 20000000`: 168.9 MB.
      cardinalityN: 20_000_000,
    };

const REPS = argv.reps ? Math.max(1, Number(argv.reps)) : SMALL ? 1 : 3;
const SLOW_REPS = 1;
const SECTIONS = new Set((argv.only ?? 'calib,count,folder,compressed,tiny,primes,factorial,rss,startup,cardinality,dashboard,stragglers').split(',').map((s) => s.trim()));
const CORPORA = new Set((argv.corpus ?? 'english,multilingual').split(',').map((s) => s.trim()));
// A run of some sections (--only) or a small one does not replace the full run's committed results.
const OUT = argv.out ?? join(BENCH_SRC, SMALL || argv.only !== undefined ? 'results.local.json' : 'results.json');
const WORKERS_DEFAULT = availableParallelism();
/**
 * Before each timed run, wait (up to 20 s) for the machine to be < 15% busy, within a budget
 * of 6 minutes of waiting per harness run; after that runs start at once (and say so).
 */
const WAIT_QUIET = !SMALL && argv['wait-quiet'] !== false;
const QUIET_BUDGET_MS = 6 * 60_000;
const interference = new Interference();
let quietWaitMs = 0;

async function quiet(): Promise<void> {
  if (!WAIT_QUIET || quietWaitMs >= QUIET_BUDGET_MS) return;
  quietWaitMs += await waitQuiet(0.15, Math.min(20_000, QUIET_BUDGET_MS - quietWaitMs));
}

const tempRoot = mkdtempSync(join(tmpdir(), 'tally-bench-'));
const dataDir = join(tempRoot, 'data');

/** Environment for tally in its embedded default: a private data dir, no NATS_URL. */
function embeddedEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, TALLY_DATA_DIR: dataDir, ...extra };
  delete env.NATS_URL;
  if (!('LOG_LEVEL' in extra)) delete env.LOG_LEVEL;
  delete env.NODE_OPTIONS;
  return env;
}

const cEnv = (): NodeJS.ProcessEnv => ({ ...process.env, LC_ALL: 'C' });

/** The peers are optional: a machine without python3 skips the Python rows. */
const HAS_PYTHON = (() => {
  try {
    execFileSync('python3', ['-c', 'import multiprocessing, collections, re'], { stdio: 'ignore' });
    return true;
  } catch {
    say('python3 not found: skipping the Python peers');
    return false;
  }
})();

/**
 * The interpreter behind `python3` (sys.executable), for runs whose process tree is measured:
 * a launcher such as a pyenv shim would otherwise sit between the harness and Python.
 */
const PYTHON_EXE = (() => {
  if (!HAS_PYTHON) return 'python3';
  try {
    return execFileSync('python3', ['-c', 'import sys; print(sys.executable)'], { encoding: 'utf8' }).trim() || 'python3';
  } catch {
    return 'python3';
  }
})();

/** primesieve, the reference prime counter, is a peer too: without it the primes section skips its rows. */
const HAS_PRIMESIEVE = (() => {
  try {
    execFileSync('primesieve', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    say('primesieve not found: skipping the primesieve peers (npm run setup installs it)');
    return false;
  }
})();

// ---------------------------------------------------------------------------------------------
// Results


const measurements: Measurement[] = [];
const started = Date.now();

function record(m: Omit<Measurement, 'value'> & { value?: number }): Measurement {
  const full: Measurement = { ...m, value: m.value ?? median(m.runs), runs: m.runs.map((v) => round(v, 3)) };
  full.interference = round(m.interference ?? interference.take(), 2);
  full.value = round(full.value, 3);
  if (full.wallMs) full.wallMs = full.wallMs.map((v) => round(v, 1));
  measurements.push(full);
  say(`${full.label}: ${fmt(full.value)} ${full.unit}${full.runs.length > 1 ? ` (runs ${full.runs.map((v) => fmt(v)).join(', ')})` : ''}`);
  return full;
}

const get = (id: string): Measurement | undefined => measurements.find((m) => m.id === id);

/** Runs `fn` n times, each after waiting for a quiet machine, metering interference. */
async function repeat<T>(n: number, fn: (i: number) => Promise<T>, meter: Interference = interference): Promise<T[]> {
  const out: T[] = [];
  for (let i = 0; i < n; i++) {
    await quiet();
    meter.start();
    try {
      out.push(await fn(i));
    } finally {
      meter.stop();
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Machine

function commandVersion(cmd: string, args: string[]): string {
  try {
    return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim().split('\n')[0];
  } catch {
    return 'unknown';
  }
}

function machine() {
  let commit = 'unknown';
  let dirty = false;
  let uncommitted: string[] = [];
  try {
    commit = execFileSync('git', ['rev-parse', 'HEAD'], { cwd: REPO_ROOT, encoding: 'utf8' }).trim();
    uncommitted = execFileSync('git', ['status', '--porcelain', '--untracked-files=no'], { cwd: REPO_ROOT, encoding: 'utf8' })
      .split('\n')
      .map((line) => line.slice(3).trim())
      .filter((path) => path !== '' && !path.startsWith('bench/'));
    dirty = uncommitted.length > 0;
  } catch {
    // not a git checkout
  }
  return {
    cpuModel: cpus()[0]?.model ?? 'unknown',
    cores: availableParallelism(),
    memoryGiB: round(totalmem() / 1024 ** 3, 1),
    kernel: release(),
    node: process.version,
    natsServer: commandVersion(findNatsServer(), ['--version']),
    python: commandVersion('python3', ['--version']),
    coreutils: commandVersion('wc', ['--version']),
    tallyCommit: commit + (dirty ? ' (with uncommitted changes)' : ''),
    uncommittedFiles: uncommitted,
  };
}

// ---------------------------------------------------------------------------------------------
// Calibration: how far does this machine's second core go on pure CPU work?

async function calibrate(): Promise<void> {
  const script = `let x=0;for(let i=0;i<${SIZES.cpuSpinIterations};i++){x=(x+i*7)|0}if(x===42)console.log(x)`;
  const one = await repeat(REPS, async () => (await run(process.execPath, ['-e', script])).ms);
  const two = await repeat(REPS, async () => {
    const t0 = performance.now();
    await Promise.all([run(process.execPath, ['-e', script]), run(process.execPath, ['-e', script])]);
    return performance.now() - t0;
  });
  const ops1 = one.map((ms) => 1000 / ms);
  const ops2 = two.map((ms) => 2000 / ms);
  record({ id: 'calib.cpu1', section: 'calibration', label: 'pure-CPU loop, 1 process', runs: ops1, unit: 'loops/s', reps: REPS, wallMs: one });
  record({ id: 'calib.cpu2', section: 'calibration', label: 'pure-CPU loop, 2 processes at once', runs: ops2, unit: 'loops/s', reps: REPS, wallMs: two });
  record({
    id: 'calib.scaling',
    section: 'calibration',
    label: 'machine scaling ceiling, 2 processes vs 1 (pure CPU)',
    runs: [median(ops2) / median(ops1)],
    unit: 'x',
    reps: REPS,
    notes: 'the most any 2-process speedup can reach on this VM',
  });
}

// ---------------------------------------------------------------------------------------------
// Word counts

interface SampledRun {
  result: RunResult;
  /** CPU and peak RSS (VmHWM) of each process of the command's tree, from bench/procs.ts. */
  usage: ProcessUsage[];
  /**
   * With `gnuTime`: /usr/bin/time's %M, in kB. For a process tree that is the peak RSS of its
   * largest single process (among those reaped inside the tree), not a sum.
   */
  treeMaxRssKb: number | null;
  /** The command's own pid (time's child under /usr/bin/time), or -1. */
  rootPid: number;
}

/**
 * Runs a command while a TreeSampler watches its process tree (the command itself has `role`).
 * With `gnuTime` (and /usr/bin/time present) the command runs under `/usr/bin/time -f %M`, and
 * the sampler watches time's child: the command itself.
 */
async function sampledRun(command: string, args: string[], options: { env?: NodeJS.ProcessEnv; role: Role; gnuTime?: boolean }): Promise<SampledRun> {
  const timed = options.gnuTime === true && hasGnuTime();
  let sampler: TreeSampler | null = null;
  let rootPid = -1;
  let waiting: NodeJS.Timeout | null = null;
  const attach = (pid: number) => {
    if (!timed) {
      rootPid = pid;
      sampler = new TreeSampler(pid, options.role);
      return;
    }
    // CPU time and VmHWM are cumulative: starting a few ms after the fork loses nothing.
    const find = () => {
      const child = childPids(pid)[0];
      if (child !== undefined) {
        rootPid = child;
        sampler = new TreeSampler(child, options.role);
      } else waiting = setTimeout(find, 2);
    };
    find();
  };
  const result = timed
    ? await run(GNU_TIME, ['-f', 'maxrss_kb=%M', command, ...args], { env: options.env, onSpawn: attach })
    : await run(command, args, { env: options.env, onSpawn: attach });
  if (waiting) clearTimeout(waiting);
  const usage = (sampler as TreeSampler | null)?.stop() ?? [];
  const maxrss = timed ? /maxrss_kb=(\d+)/.exec(result.stderr) : null;
  return { result, usage, treeMaxRssKb: maxrss ? Number(maxrss[1]) : null, rootPid };
}

interface TallyRun extends SampledRun {
  json: Record<string, unknown>;
}

async function tally(args: string[], env: NodeJS.ProcessEnv, sampleRole: Role = 'coordinator', gnuTime = false): Promise<TallyRun> {
  const sampled = await sampledRun(process.execPath, [TALLY_BIN, ...args], { env, role: sampleRole, gnuTime });
  const { result } = sampled;
  let json: Record<string, unknown> = {};
  try {
    json = JSON.parse(result.stdout.trim().split('\n').pop() ?? '{}') as Record<string, unknown>;
  } catch {
    throw new Error(`tally ${args.join(' ')}: output is not JSON: ${result.stdout.slice(0, 200)}`);
  }
  return { ...sampled, json };
}

function cpuSummary(runs: TallyRun[]): Record<string, number> {
  // CPU seconds by role, from the median-wall run.
  const sorted = [...runs].sort((a, b) => a.result.ms - b.result.ms);
  const mid = sorted[sorted.length >> 1];
  const byRole = cpuByRole(mid.usage);
  const sysByRole = cpuByRole(mid.usage, true);
  return {
    ...Object.fromEntries(Object.entries(byRole).map(([k, v]) => [`${k}CpuS`, round((v ?? 0) / 1000, 2)])),
    ...Object.fromEntries(Object.entries(sysByRole).map(([k, v]) => [`${k}SysCpuS`, round((v ?? 0) / 1000, 2)])),
  };
}

interface CorpusRun {
  seed: Seed;
  file: CorpusFile;
  /** Reference totals from tally's in-process serial count, to check every tally run. */
  totalWords?: number;
}

/** One contender of the word-count section: how to run it once, and how to record its runs. */
interface Variant<T = unknown> {
  id: string;
  label: string;
  reps: number;
  runOnce: () => Promise<{ ms: number; data: T }>;
  notes?: string;
  extra?: (runs: Array<{ ms: number; data: T }>) => Record<string, unknown>;
}

/**
 * Runs the variants interleaved (rep 1 of every variant, then rep 2, ...), so that a slow spell
 * of a shared machine hits them alike; returns each one's runs and what else loaded the machine.
 */
async function interleaved(variants: Array<Variant<any>>): Promise<{ runs: Map<string, Array<{ ms: number; data: any }>>; meters: Map<string, Interference> }> {
  const runs = new Map<string, Array<{ ms: number; data: any }>>(variants.map((v) => [v.id, []]));
  const meters = new Map<string, Interference>(variants.map((v) => [v.id, new Interference()]));
  const maxReps = Math.max(...variants.map((v) => v.reps));
  for (let rep = 0; rep < maxReps; rep++) {
    for (const v of variants) {
      if (rep >= v.reps) continue;
      say(`${v.label} (run ${rep + 1}/${v.reps})`);
      const [one] = await repeat(1, () => v.runOnce(), meters.get(v.id));
      runs.get(v.id)!.push(one);
    }
  }
  return { runs, meters };
}

async function countSection(corpus: CorpusRun): Promise<void> {
  const { file } = corpus;
  const name = corpus.seed.name;
  const english = name === 'english';
  const prefix = `count.${name}`;
  const section = `count ${name} (${(file.bytes / 1e6).toFixed(0)} MB)`;

  // The reference total, from tally's own code in one process; every tally run must match it.
  const ref = await run(process.execPath, [join(REPO_ROOT, 'dist', 'bench', 'inprocess.js'), '--mode', 'serial', '--threads', '1', '--file', file.path]);
  corpus.totalWords = (JSON.parse(ref.stdout) as { totalWords: number }).totalWords;
  let wcWords = -1;

  const inproc = (mode: string, threads: number, label: string, as = 'count', scanner?: 'js'): Variant<{ totalWords?: number }> => ({
    id: `${prefix}.inproc.${mode === 'serial' ? 'serial' : mode === 'map' ? `map${threads}` : `pipe${threads}`}${as === 'count' ? '' : `.${as}`}${scanner ? `.${scanner}` : ''}`,
    label: `${name}: ${label}`,
    reps: REPS,
    runOnce: async () => {
      const r = await run(process.execPath, [join(REPO_ROOT, 'dist', 'bench', 'inprocess.js'), '--mode', mode, '--threads', String(threads), '--file', file.path, '--as', as], scanner ? { env: { ...process.env, TALLY_SCANNER: scanner } } : {});
      const out = JSON.parse(r.stdout) as { ms: number; totalWords?: number };
      if (out.totalWords !== undefined && out.totalWords !== corpus.totalWords) throw new Error(`in-process ${mode} total ${out.totalWords} != ${corpus.totalWords}`);
      return { ms: out.ms, data: out };
    },
  });
  const tallyCount = (id: string, label: string, args: string[], check: (json: Record<string, unknown>) => void, env: NodeJS.ProcessEnv = {}): Variant<TallyRun> => ({
    id: `${prefix}.${id}`,
    label: `${name}: ${label}`,
    reps: REPS,
    runOnce: async () => {
      const r = await tally(['count', file.path, ...args, '--no-progress', '--format', 'json'], embeddedEnv(env));
      check(r.json);
      return { ms: r.result.ms, data: r };
    },
    extra: (runs) => ({ tasks: runs[0].data.json.tasks, totalWords: runs[0].data.json.totalWords, uniqueWords: runs[0].data.json.uniqueWords, ...cpuSummary(runs.map((x) => x.data)) }),
  });
  const sameTotal = (json: Record<string, unknown>) => {
    if (json.totalWords !== corpus.totalWords) throw new Error(`tally count total ${String(json.totalWords)} != in-process ${corpus.totalWords}`);
  };

  const variants: Variant<any>[] = [
    inproc('serial', 1, 'in-process, 1 thread: read+chunk+map+reduce'),
    inproc('map', 1, 'map function only, 1 thread'),
    inproc('map', 1, 'map function only, 1 thread, JavaScript scanner (A/B: TALLY_SCANNER=js)', 'count', 'js'),
    inproc('map', 2, 'map function only, 2 threads'),
    // What n-grams cost beyond words, both as a job with 2 reduce partitions maps them.
    inproc('map', 1, 'map function only, 1 thread, as a job with 2 reduce partitions (word shares)', 'shares'),
    inproc('map', 1, 'ngrams 2 map function only, 1 thread, 2 reduce partitions', 'ngrams2'),
    inproc('pipeline', 1, 'in-process pipeline, main thread chunks+reduces, 1 map thread'),
    inproc('pipeline', 2, 'in-process pipeline, main thread chunks+reduces, 2 map threads'),
    // What a user runs: without --workers, one worker process per core but one, and the
    // coordinator maps beside them (coordinator/embedded/fleet.ts).
    tallyCount('tally.default', 'tally count, embedded, default fleet (a worker process per core but one; the coordinator maps too)', [], sameTotal),
    tallyCount('tally.w1', 'tally count, embedded, --workers 1', ['--workers', '1'], sameTotal),
    tallyCount('tally.w2', 'tally count, embedded, --workers 2', ['--workers', '2'], sameTotal),
    tallyCount('tally.w2.ship', 'tally count --no-workers-read-files, embedded, --workers 2 (every chunk through NATS, as with --server)', ['--workers', '2', '--no-workers-read-files'], sameTotal),
    tallyCount('tally.w2.coordinatorReduce', 'tally count, embedded, --workers 2, every word folded by the coordinator (A/B: the reduce before reducers ran on the workers)', ['--workers', '2'], sameTotal, { TALLY_REDUCE_ON_COORDINATOR: '1' }),
    tallyCount('tally.w2.chunk1M', 'tally count --chunk-size 1M, embedded, --workers 2 (A/B: the default before it grew with the input)', ['--workers', '2', '--chunk-size', '1M'], sameTotal),
    tallyCount('tally.w2.js', 'tally count, embedded, --workers 2, JavaScript scanner (A/B: TALLY_SCANNER=js)', ['--workers', '2'], sameTotal, { TALLY_SCANNER: 'js' }),
    {
      id: `${prefix}.wc`,
      label: `${name}: LC_ALL=C wc -w`,
      reps: REPS,
      runOnce: async () => {
        const r = await run('wc', ['-w', file.path], { env: cEnv() });
        wcWords = Number(r.stdout.trim().split(/\s+/)[0]);
        return { ms: r.ms, data: wcWords };
      },
      extra: () => ({ words: wcWords }),
    },
    {
      id: `${prefix}.python`,
      label: `${name}: Python multiprocessing.Pool(${WORKERS_DEFAULT}) + Counter (bench/peers/pool_wordcount.py)`,
      reps: REPS,
      runOnce: async () => {
        const r = await run('python3', [join(BENCH_SRC, 'peers', 'pool_wordcount.py'), file.path]);
        return { ms: r.ms, data: JSON.parse(r.stdout) as { totalWords: number; uniqueWords: number } };
      },
      extra: (runs) => ({ totalWords: runs[0].data.totalWords, uniqueWords: runs[0].data.uniqueWords }),
    },
  ];
  if (!HAS_PYTHON) variants.splice(variants.findIndex((v) => v.id.endsWith('.python')), 1);
  if (english) {
    // The same job with wc's tokenizer: its totals must equal wc's (checked once wc has run).
    variants.splice(
      variants.findIndex((v) => v.id.endsWith('.tally.w2.js')) + 1,
      0,
      tallyCount('tally.whitespace', `tally count --tokenizer whitespace, embedded, --workers ${WORKERS_DEFAULT} (same totals as wc -w)`, ['--tokenizer', 'whitespace', '--workers', String(WORKERS_DEFAULT)], () => undefined),
    );
    variants.push({
      id: `${prefix}.trsort`,
      label: `${name}: LC_ALL=C tr -cs 'A-Za-z' '\\n' | sort | uniq -c`,
      reps: SLOW_REPS,
      notes: 'whole file, once (slow)',
      runOnce: async () => {
        const r = await sh(`tr -cs 'A-Za-z' '\\n' < '${file.path}' | sort | uniq -c | wc -l`, { env: cEnv() });
        return { ms: r.ms, data: Number(r.stdout.trim()) };
      },
      extra: (runs) => ({ distinctLines: runs[0].data }),
    });
  }

  const { runs, meters } = await interleaved(variants);
  for (const v of variants) {
    const list = runs.get(v.id)!;
    if (v.id.endsWith('tally.whitespace')) {
      const total = (list[0].data as TallyRun).json.totalWords;
      if (total !== wcWords) throw new Error(`tally --tokenizer whitespace total ${String(total)} != wc -w ${wcWords}`);
    }
    record({
      id: v.id,
      section,
      label: v.label,
      runs: list.map((r) => mbps(file.bytes, r.ms)),
      unit: 'MB/s',
      reps: v.reps,
      wallMs: list.map((r) => r.ms),
      bytes: file.bytes,
      notes: v.notes,
      extra: v.extra?.(list as never),
      interference: meters.get(v.id)!.take(),
    });
  }

  // The coordinator's CPU per byte of input when the workers read the files (the default): how
  // much input one coordinator core could keep up with. Each run's coordinator CPU (the tally
  // count process, /proc sampled every 50 ms, Node start-up included) against the file's bytes.
  const w2 = runs.get(`${prefix}.tally.w2`)!.map((r) => r.data as TallyRun);
  const gb = file.bytes / 1e9;
  // A job's fixed cost (Node's start-up, the embedded server, the session, the record, forking
  // the worker processes) is the coordinator CPU of counting an empty file: the rate is what
  // each further GB costs. In a folder: an empty file named outright is a small job, whose worker
  // processes are never forked (coordinator/embedded/small-job.ts), unlike the measured job's.
  const emptyFolder = join(tempRoot, 'empty-folder');
  mkdirSync(emptyFolder, { recursive: true });
  const empty = join(emptyFolder, 'empty.txt');
  writeFileSync(empty, '');
  const fixedRuns = await repeat(w2.length, async () => (await tally(['count', emptyFolder, '--workers', '2', '--no-progress', '--format', 'json'], embeddedEnv())).usage);
  const fixedS = median(fixedRuns.map((usage) => (cpuByRole(usage).coordinator ?? 0) / 1000));
  const coordinatorS = w2.map((r) => Math.max(0.001, (cpuByRole(r.usage).coordinator ?? 0) / 1000 - fixedS));
  const w2Interference = get(`${prefix}.tally.w2`)?.interference;
  record({
    id: `${prefix}.coordinatorCpuPerGB`,
    section,
    label: `${name}: coordinator CPU per GB of input beyond a job's fixed cost (tally count --workers 2, workers read the files)`,
    runs: coordinatorS.map((cpuS) => cpuS / gb),
    unit: 'core-s/GB',
    reps: w2.length,
    bytes: file.bytes,
    notes: 'CPU (user + system) of the tally count process from /proc, less that of counting an empty file (start-up, session, record), per 10^9 bytes of input',
    extra: { coordinatorCpuS: coordinatorS.map((v) => round(v + fixedS, 3)), fixedCpuS: round(fixedS, 3) },
    interference: w2Interference,
  });
  record({
    id: `${prefix}.coordinatorGBps`,
    section,
    label: `${name}: input one coordinator core could sustain (bytes / coordinator CPU s)`,
    runs: coordinatorS.map((cpuS) => gb / cpuS),
    unit: 'GB/s',
    reps: w2.length,
    bytes: file.bytes,
    notes: 'the same runs: 10^9 bytes of input / coordinator CPU seconds',
    interference: w2Interference,
  });
}

// ---------------------------------------------------------------------------------------------
// Compressed inputs: the English corpus as 20 gzip files, against zcat | wc -w, the Python Pool
// peer reading through gzip, and tally on the same text uncompressed

async function compressedSection(seed: Seed): Promise<void> {
  const file = corpusFile(seed, SIZES.countBytes, `english-${SIZES.countBytes / MiB}MiB`);
  const dir = join(CORPUS_DIR, `english-${SIZES.countBytes / MiB}MiB-gz20`);
  const whole = join(CORPUS_DIR, `english-${SIZES.countBytes / MiB}MiB.txt.gz`);
  const members = join(CORPUS_DIR, `english-${SIZES.countBytes / MiB}MiB-20-members.txt.gz`);
  const parts = Array.from({ length: 20 }, (_, i) => join(dir, `part-${String(i).padStart(2, '0')}.txt.gz`));
  if (!parts.every((part) => existsSync(part)) || !existsSync(whole) || !existsSync(members)) {
    say(`building ${dir} (the English corpus cut at lines into 20 parts, each gzip -6) and ${whole}`);
    mkdirSync(dir, { recursive: true });
    const text = readFileSync(file.path);
    let at = 0;
    for (const [i, part] of parts.entries()) {
      let end = i === parts.length - 1 ? text.length : text.indexOf(0x0a, Math.floor(((i + 1) * text.length) / parts.length));
      end = end < 0 ? text.length : end + (i === parts.length - 1 ? 0 : 1);
      writeFileSync(part, execFileSync('gzip', ['-6', '-c'], { input: text.subarray(at, end), maxBuffer: 1 << 30 }));
      at = end;
    }
    writeFileSync(whole, execFileSync('gzip', ['-6', '-c', file.path], { maxBuffer: 1 << 30 }));
    // The 20 files back to back: one file of 20 gzip members, as `cat *.gz` or Common Crawl make.
    writeFileSync(members, Buffer.concat(parts.map((part) => readFileSync(part))));
  }
  const gzBytes = parts.reduce((sum, part) => sum + statSync(part).size, 0);
  const section = `compressed inputs: the English corpus (${(file.bytes / 1e6).toFixed(0)} MB of text) as 20 gzip files (${(gzBytes / 1e6).toFixed(0)} MB)`;
  const count = async (paths: string[]) => {
    const r = await tally(['count', ...paths, '--workers', String(WORKERS_DEFAULT), '--no-progress', '--format', 'json', '--top', '0'], embeddedEnv());
    return { ms: r.result.ms, data: r };
  };
  const variants: Array<Variant<any>> = [
    { id: 'gz.tally.parts', label: `tally count, the 20 gzip files, embedded, --workers ${WORKERS_DEFAULT} (workers decompress)`, reps: REPS, runOnce: () => count([dir]) },
    { id: 'gz.tally.members', label: `tally count, one file of those 20 gzip members, embedded, --workers ${WORKERS_DEFAULT} (cut at member starts)`, reps: REPS, runOnce: () => count([members]) },
    { id: 'gz.tally.whole', label: `tally count, the corpus as one gzip member (${(statSync(whole).size / 1e6).toFixed(0)} MB), embedded, --workers ${WORKERS_DEFAULT}`, reps: REPS, runOnce: () => count([whole]) },
    { id: 'gz.tally.plain', label: `tally count, the same text uncompressed, embedded, --workers ${WORKERS_DEFAULT}`, reps: REPS, runOnce: () => count([file.path]) },
    {
      id: 'gz.zcatwc',
      label: 'zcat the 20 files | LC_ALL=C wc -w',
      reps: REPS,
      runOnce: async () => {
        const r = await sh(`zcat ${parts.map((part) => `'${part}'`).join(' ')} | wc -w`, { env: cEnv() });
        return { ms: r.ms, data: Number(r.stdout.trim()) };
      },
    },
    {
      id: 'gz.python',
      label: `Python multiprocessing.Pool(${WORKERS_DEFAULT}) + Counter reading the one gzip file (bench/peers/pool_wordcount.py --gzip)`,
      reps: SLOW_REPS,
      runOnce: async () => {
        const r = await run('python3', [join(BENCH_SRC, 'peers', 'pool_wordcount.py'), whole, '--gzip', '--processes', String(WORKERS_DEFAULT)]);
        return { ms: r.ms, data: JSON.parse(r.stdout.trim().split('\n').at(-1)!) };
      },
    },
  ];
  const { runs, meters } = await interleaved(variants);
  // Exact: the compressed files hold the text of the plain one.
  const plain = runs.get('gz.tally.plain')![0]!.data.json;
  for (const id of ['gz.tally.parts', 'gz.tally.members', 'gz.tally.whole']) {
    const got = runs.get(id)![0]!.data.json;
    if (JSON.stringify(got.counts) !== JSON.stringify(plain.counts) || got.totalWords !== plain.totalWords || got.bytes !== plain.bytes) throw new Error(`${id}: tally counts the compressed text differently from the plain text`);
  }
  recordThroughputs(section, variants, runs, meters, { bytes: file.bytes, unit: 'MB/s of text', tallyPrefix: 'gz.tally' });
}

// ---------------------------------------------------------------------------------------------
// A folder of many small files against one file of the same bytes

async function folderSection(seed: Seed): Promise<void> {
  const folder = corpusFolder(seed, SIZES.folderFiles, SIZES.folderFileBytes, `folder-${SIZES.folderFiles}x${SIZES.folderFileBytes}`);
  const section = `count a folder of ${SIZES.folderFiles} files (${(folder.bytes / 1e6).toFixed(0)} MB)`;
  const count = async (path: string) => {
    const r = await tally(['count', path, '--workers', String(WORKERS_DEFAULT), '--no-progress', '--format', 'json', '--top', '0'], embeddedEnv());
    return { ms: r.result.ms, data: r };
  };
  const variants: Array<Variant<any>> = [
    { id: 'folder.tally.one', label: `tally count, one file of the folder's bytes, embedded, --workers ${WORKERS_DEFAULT}`, reps: REPS, runOnce: () => count(folder.file) },
    { id: 'folder.tally.many', label: `tally count, the folder of ${SIZES.folderFiles} files, embedded, --workers ${WORKERS_DEFAULT}`, reps: REPS, runOnce: () => count(folder.dir) },
    {
      id: 'folder.wc',
      label: `LC_ALL=C wc -w over the ${SIZES.folderFiles} files (find | xargs)`,
      reps: REPS,
      runOnce: async () => {
        const r = await sh(`find '${folder.dir}' -type f -print0 | xargs -0 wc -w | awk '$2 == "total" { n += $1 } END { print n }'`, { env: cEnv() });
        return { ms: r.ms, data: Number(r.stdout.trim()) };
      },
    },
  ];
  const { runs, meters } = await interleaved(variants);
  // Exact: the folder and the one file hold the same words.
  const one = runs.get('folder.tally.one')![0]!.data.json;
  const many = runs.get('folder.tally.many')![0]!.data.json;
  if (JSON.stringify(one.counts) !== JSON.stringify(many.counts) || one.totalWords !== many.totalWords) throw new Error('tally counts the folder and the one file of the same bytes differently');
  if (many.files !== SIZES.folderFiles) throw new Error(`tally counted ${String(many.files)} files, not ${SIZES.folderFiles}`);
  recordThroughputs(section, variants, runs, meters, { bytes: folder.bytes, unit: 'MB/s', tallyPrefix: 'folder.tally' });
}

/**
 * Records each variant of an interleaved throughput comparison: MB/s over `bytes`, with a tally
 * run's task count, total and CPU by role (ids starting `tallyPrefix`), a peer's word count.
 */
function recordThroughputs(section: string, variants: Array<Variant<any>>, runs: Map<string, Array<{ ms: number; data: any }>>, meters: Map<string, Interference>, { bytes, unit, tallyPrefix }: { bytes: number; unit: string; tallyPrefix: string }): void {
  for (const v of variants) {
    const list = runs.get(v.id)!;
    record({
      id: v.id,
      section,
      label: v.label,
      runs: list.map((r) => mbps(bytes, r.ms)),
      unit,
      reps: v.reps,
      wallMs: list.map((r) => r.ms),
      bytes,
      extra: v.id.startsWith(tallyPrefix) ? { tasks: list[0]!.data.json.tasks, totalWords: list[0]!.data.json.totalWords, ...cpuSummary(list.map((x) => x.data)) } : { words: list[0]!.data },
      interference: meters.get(v.id)!.take(),
    });
  }
}

// ---------------------------------------------------------------------------------------------
// Number jobs

async function tinySection(): Promise<void> {
  const n = SIZES.tinyTasks;
  const runs = await repeat(REPS, async () => {
    const r = await tally(['sum', '1', SIZES.tinyTo, '--tasks', String(n), '--workers', '2', '--no-progress', '--format', 'json'], embeddedEnv());
    if (r.json.tasks !== n) throw new Error(`tiny tasks: expected ${n} tasks, got ${String(r.json.tasks)}`);
    return r;
  });
  record({
    id: 'tiny.sum',
    section: 'tiny tasks',
    label: `tally sum 1 ${SIZES.tinyTo} --tasks ${n}, embedded, --workers 2`,
    runs: runs.map((r) => n / (r.result.ms / 1000)),
    unit: 'tasks/s',
    reps: REPS,
    wallMs: runs.map((r) => r.result.ms),
    extra: { tasks: n, sum: runs[0].json.sum, ...cpuSummary(runs) },
  });
}

async function primesSection(): Promise<void> {
  for (const workers of [1, 2]) {
    const runs = await repeat(REPS, async () => {
      const r = await tally(['primes', '1', SIZES.primesTo, '--workers', String(workers), '--no-progress', '--format', 'json'], embeddedEnv());
      if (r.json.count !== SIZES.primesExpected) throw new Error(`primes: got ${String(r.json.count)}, expected ${SIZES.primesExpected}`);
      return r;
    });
    record({
      id: `primes.w${workers}`,
      section: 'primes',
      label: `tally primes 1 ${SIZES.primesTo}, embedded, --workers ${workers}`,
      runs: runs.map((r) => r.result.ms / 1000),
      unit: 's',
      reps: REPS,
      extra: { tasks: runs[0].json.tasks, count: runs[0].json.count, ...cpuSummary(runs) },
    });
  }
  const w1 = get('primes.w1')!.value;
  const w2 = get('primes.w2')!.value;
  record({ id: 'primes.speedup', section: 'primes', label: 'tally primes speedup, 2 workers vs 1 (wall, incl. start-up)', runs: [w1 / w2], unit: 'x', reps: REPS });

  const targetRuns = await repeat(REPS, async () => {
    const r = await tally(['primes', '1', SIZES.primesTargetTo, '--workers', '2', '--no-progress', '--format', 'json'], embeddedEnv());
    if (r.json.count !== SIZES.primesTargetExpected) throw new Error(`primes: got ${String(r.json.count)}, expected ${SIZES.primesTargetExpected}`);
    return r;
  });
  record({
    id: 'primes.target.w2',
    section: 'primes',
    label: `tally primes 1 ${SIZES.primesTargetTo}, embedded, --workers 2`,
    runs: targetRuns.map((r) => r.result.ms / 1000),
    unit: 's',
    reps: REPS,
    extra: { tasks: targetRuns[0].json.tasks, count: targetRuns[0].json.count, ...cpuSummary(targetRuns) },
  });

  // A window just below the kind's limit, 10^15: sieving primes up to 3.2×10^7, most of which
  // miss any one segment (the bucket sieve's case), unlike 1..TO.
  const windowHi = 10n ** 15n;
  const windowLo = (windowHi - BigInt(Number(SIZES.primesWindow))).toString();
  const windowRuns = await repeat(REPS, async () => tally(['primes', windowLo, windowHi.toString(), '--workers', '2', '--no-progress', '--format', 'json'], embeddedEnv()));
  const windowCount = windowRuns[0].json.count;
  if (windowRuns.some((r) => r.json.count !== windowCount)) throw new Error(`primes window: counts differ between runs: ${windowRuns.map((r) => String(r.json.count)).join(', ')}`);
  record({
    id: 'primes.window.w2',
    section: 'primes',
    label: `tally primes ${windowLo} ${windowHi} (${SIZES.primesWindow} below 10^15), embedded, --workers 2`,
    runs: windowRuns.map((r) => r.result.ms / 1000),
    unit: 's',
    reps: REPS,
    extra: { tasks: windowRuns[0].json.tasks, count: windowCount as number, ...cpuSummary(windowRuns) },
  });

  if (!HAS_PRIMESIEVE) return;
  const version = commandVersion('primesieve', ['--version']);
  /** primesieve START STOP -t2 -q prints the count alone; it must be tally's. */
  const primesieve = (lo: string, hi: string, expected: unknown) =>
    repeat(REPS, async () => {
      const r = await run('primesieve', [lo, hi, '-t2', '-q']);
      if (Number(r.stdout.trim()) !== expected) throw new Error(`primesieve ${lo} ${hi}: ${r.stdout.trim()}, tally counted ${String(expected)}`);
      return r;
    });
  const ps = await primesieve('1', SIZES.primesTo, SIZES.primesExpected);
  record({ id: 'primes.primesieve', section: 'primes', label: `primesieve ${SIZES.primesTo} -t2`, runs: ps.map((r) => r.ms / 1000), unit: 's', reps: REPS, notes: version });
  const psTarget = await primesieve('1', SIZES.primesTargetTo, SIZES.primesTargetExpected);
  record({ id: 'primes.target.primesieve', section: 'primes', label: `primesieve ${SIZES.primesTargetTo} -t2`, runs: psTarget.map((r) => r.ms / 1000), unit: 's', reps: REPS, notes: version });
  const psWindow = await primesieve(windowLo, windowHi.toString(), windowCount);
  record({ id: 'primes.window.primesieve', section: 'primes', label: `primesieve ${windowLo} ${windowHi} -t2`, runs: psWindow.map((r) => r.ms / 1000), unit: 's', reps: REPS, notes: version });
}

/** Debian's Python has gmpy2 (setup installs python3-gmpy2); a pyenv python3 on PATH does not. */
const GMPY2_PYTHON = '/usr/bin/python3';
const HAS_GMPY2 = (() => {
  try {
    execFileSync(GMPY2_PYTHON, ['-c', 'import gmpy2, hashlib'], { stdio: 'ignore' });
    return true;
  } catch {
    say(`gmpy2 not found for ${GMPY2_PYTHON}: skipping the gmpy2 factorial row`);
    return false;
  }
})();

/** Python's own str(math.factorial(N)) is quadratic on 3.11 (minutes at 10^6): only up to this N. */
const PYTHON_FACTORIAL_MAX_N = 200_000;

async function factorialSection(): Promise<void> {
  const n = SIZES.factorialN;
  // gmpy2 does the work tally reports: N!, all its digits, their sha256 (and checks the count).
  const gmpy2Code = `import gmpy2, hashlib; d = gmpy2.fac(${n}).digits(); h = hashlib.sha256(d.encode()).hexdigest(); assert len(d) == ${SIZES.factorialDigits}`;
  // tally and gmpy2 alternate run by run, so that load from elsewhere hits both alike.
  const runs = await repeat(REPS, async () => {
    const r = await tally(['factorial', String(n), '--workers', String(WORKERS_DEFAULT), '--no-progress', '--format', 'json'], embeddedEnv());
    const digits = (r.json.results as Array<{ digits: number }>)[0].digits;
    if (digits !== SIZES.factorialDigits) throw new Error(`factorial: ${digits} digits, expected ${SIZES.factorialDigits}`);
    const gmpy2 = HAS_GMPY2 ? await run(GMPY2_PYTHON, ['-c', gmpy2Code]) : null;
    // The A/B: V8's BigInts in two threads instead of the GMP addon (shared/gmp-decimal.ts).
    const js = await tally(['factorial', String(n), '--workers', String(WORKERS_DEFAULT), '--no-progress', '--format', 'json'], embeddedEnv({ TALLY_DECIMAL: 'js' }));
    return { tally: r, gmpy2, js };
  });
  record({ id: 'factorial.tally', section: 'factorial', label: `tally factorial ${n} (all digits, sha256), embedded, --workers ${WORKERS_DEFAULT}`, runs: runs.map((r) => r.tally.result.ms / 1000), unit: 's', reps: REPS });
  record({ id: 'factorial.tally.js', section: 'factorial', label: `tally factorial ${n}, decimal digits by V8's BigInts in two threads (A/B: TALLY_DECIMAL=js)`, runs: runs.map((r) => r.js.result.ms / 1000), unit: 's', reps: REPS, notes: 'interleaved with the tally runs' });
  if (HAS_GMPY2) {
    record({ id: 'factorial.gmpy2', section: 'factorial', label: `gmpy2: fac(${n}).digits() and its sha256 (${GMPY2_PYTHON})`, runs: runs.map((r) => r.gmpy2!.ms / 1000), unit: 's', reps: REPS, notes: 'interleaved with the tally runs' });
  }
  if (!HAS_PYTHON) return;
  if (n > PYTHON_FACTORIAL_MAX_N) {
    say(`python3 str(math.factorial(${n})) skipped: quadratic, minutes at this N (gmpy2 is the peer)`);
    return;
  }
  const code = `import math, sys; sys.set_int_max_str_digits(0); s=str(math.factorial(${n})); assert len(s) == ${SIZES.factorialDigits}`;
  const py = await repeat(SLOW_REPS, async () => run('python3', ['-c', code]));
  record({ id: 'factorial.python', section: 'factorial', label: `python3: str(math.factorial(${n}))`, runs: py.map((r) => r.ms / 1000), unit: 's', reps: SLOW_REPS, notes: 'sys.set_int_max_str_digits(0) needed on 3.11+' });
}

// ---------------------------------------------------------------------------------------------
// Memory: distributed mode, a fresh server and `tally worker --processes 2` per input size

async function rssOne(file: CorpusFile, label: string, index: number): Promise<void> {
  const storeDir = join(tempRoot, `rss-${label.replace(/\W+/g, '-')}`);
  const env = embeddedEnv();
  const fleet = await startWarmFleet(storeDir, env);
  const { server, supervisor } = fleet;
  try {
    const args = [TALLY_BIN, 'count', file.path, '--server', server.url, '--no-progress', '--format', 'json'];
    const runs = await repeat(REPS, async () => {
      // The coordinator is node itself, or the child of /usr/bin/time.
      let spawned = -1;
      const nodePid = () => (hasGnuTime() ? (childPids(spawned)[0] ?? -1) : spawned);
      const series: Array<[number, number]> = [];
      const t0 = performance.now();
      let polledPeak = 0;
      const poll = setInterval(() => {
        const pid = nodePid();
        const rss = procStatusKb(pid, 'VmRSS');
        if (rss !== null) series.push([round((performance.now() - t0) / 1000, 2), round(rss / 1024, 1)]);
        polledPeak = Math.max(polledPeak, procStatusKb(pid, 'VmHWM') ?? 0);
      }, 100);
      const result = hasGnuTime()
        ? await run(GNU_TIME, ['-f', 'maxrss_kb=%M', process.execPath, ...args], { env, onSpawn: (pid) => (spawned = pid) })
        : await run(process.execPath, args, { env, onSpawn: (pid) => (spawned = pid) });
      clearInterval(poll);
      const timed = /maxrss_kb=(\d+)/.exec(result.stderr);
      const json = JSON.parse(result.stdout.trim().split('\n').pop()!) as { totalWords: number; tasks: number };
      return { ms: result.ms, coordinatorKb: timed ? Number(timed[1]) : polledPeak, series, json, byGnuTime: timed !== null };
    });
    const workers = childPids(supervisor.pid!).map((pid) => ({ pid, kb: procStatusKb(pid, 'VmHWM') ?? 0 }));
    const supervisorKb = procStatusKb(supervisor.pid!, 'VmHWM') ?? 0;
    const serverKb = procStatusKb(server.pid, 'VmHWM') ?? 0;
    const workerKb = Math.max(0, ...workers.map((w) => w.kb));
    const section = 'memory (distributed mode)';
    const tag = `rss${index}`;
    // RSS over the run of the median one, at each quarter of its duration.
    const mid = [...runs].sort((a, b) => a.coordinatorKb - b.coordinatorKb)[runs.length >> 1];
    const end = mid.series.length > 0 ? mid.series[mid.series.length - 1][0] : 0;
    const quarters = [0.25, 0.5, 0.75, 1].map((q) => Math.max(0, ...mid.series.filter(([t]) => t <= q * end && t > (q - 0.25) * end).map(([, mib]) => mib)));
    // Steady state: the median RSS over the second half of each run (spikes are GC timing).
    const steady = runs.map((r) => {
      const last = r.series.length > 0 ? r.series[r.series.length - 1][0] : 0;
      return median(r.series.filter(([t]) => t >= last / 2).map(([, mib]) => mib));
    });
    record({
      id: `${tag}.coordinator`,
      section,
      label: `${label}: coordinator peak RSS (tally count --server)`,
      runs: runs.map((r) => r.coordinatorKb / 1024),
      unit: 'MiB',
      reps: REPS,
      bytes: file.bytes,
      notes: runs[0].byGnuTime ? '/usr/bin/time %M' : 'polled VmHWM',
      extra: { steadyRssMiB: round(median(steady), 1), peakRssMiBByQuarterOfRun: quarters, rssSeriesMiB: mid.series.filter((_, k) => k % Math.max(1, Math.ceil(mid.series.length / 40)) === 0) },
    });
    record({ id: `${tag}.coordinatorSteady`, section, label: `${label}: coordinator RSS, steady state (median over the 2nd half of the run)`, runs: steady, unit: 'MiB', reps: REPS, bytes: file.bytes, notes: 'polled VmRSS every 100 ms' });
    record({ id: `${tag}.worker`, section, label: `${label}: worker process peak RSS (largest of 2)`, runs: [workerKb / 1024], unit: 'MiB', reps: 1, bytes: file.bytes, notes: `peak over all ${REPS} runs`, extra: { perWorkerMiB: workers.map((w) => round(w.kb / 1024, 1)), supervisorMiB: round(supervisorKb / 1024, 1) } });
    record({ id: `${tag}.server`, section, label: `${label}: nats-server peak RSS`, runs: [serverKb / 1024], unit: 'MiB', reps: 1, bytes: file.bytes, notes: `peak over all ${REPS} runs` });
    record({ id: `${tag}.throughput`, section, label: `${label}: tally count --server, 2 warm worker processes`, runs: runs.map((r) => mbps(file.bytes, r.ms)), unit: 'MB/s', reps: REPS, bytes: file.bytes, wallMs: runs.map((r) => r.ms), extra: { tasks: runs[0].json.tasks, totalWords: runs[0].json.totalWords } });
  } finally {
    await fleet.stop();
  }
}

async function rssSection(seed: Seed): Promise<void> {
  for (let i = 0; i < 2; i++) {
    const file = corpusFile(seed, SIZES.rssBytes[i], `${seed.name}-${SIZES.rssLabels[i]}`);
    await rssOne(file, `${seed.name} ${SIZES.rssLabels[i]}`, i);
  }
}

// ---------------------------------------------------------------------------------------------
// Start-up

interface StartupRun {
  totalMs: number;
  serverReadyMs: number | null;
  firstWorkerReadyMs: number | null;
  workersReady: number;
  resultMs: number | null;
}

async function startupRun(debug: boolean, node = process.execPath, env = embeddedEnv()): Promise<StartupRun> {
  const args = [TALLY_BIN, 'sum', '1', '10', '--workers', '2', '--no-progress', '--format', 'json', ...(debug ? ['--log-level', 'debug'] : [])];
  const r = await run(node, args, { env });
  const t0 = r.startedAt;
  let serverReady: number | null = null;
  const ready: number[] = [];
  for (const line of r.stderr.split('\n')) {
    if (!line.startsWith('{')) continue;
    try {
      const j = JSON.parse(line) as { time: number; msg: string };
      if (j.msg === 'embedded nats-server started') serverReady = j.time - t0;
      if (j.msg === 'worker ready') ready.push(j.time - t0);
    } catch {
      // not a log line
    }
  }
  return {
    totalMs: r.ms,
    serverReadyMs: serverReady,
    firstWorkerReadyMs: ready.length > 0 ? Math.min(...ready) : null,
    workersReady: ready.length,
    resultMs: r.firstStdoutAt !== null ? r.firstStdoutAt - t0 : null,
  };
}

async function startupSection(): Promise<void> {
  const section = 'embedded start-up';
  const nodeBare = await repeat(REPS, async () => (await run(process.execPath, ['-e', '0'])).ms);
  record({ id: 'startup.node', section, label: 'node -e 0 (bare Node start and exit)', runs: nodeBare, unit: 'ms', reps: REPS });
  const version = await repeat(REPS, async () => (await run(process.execPath, [TALLY_BIN, '--version'])).ms);
  record({ id: 'startup.cli', section, label: 'tally --version (Node + loading the CLI)', runs: version, unit: 'ms', reps: REPS });
  const serverOnly = await repeat(REPS, async (i) => {
    const t0 = performance.now();
    const server = await startNatsServer({ storeDir: join(tempRoot, `startup-${i}`) });
    const ms = performance.now() - t0;
    await server.stop();
    return ms;
  });
  record({ id: 'startup.server', section, label: 'startNatsServer() until "Server is ready" (harness process)', runs: serverOnly, unit: 'ms', reps: REPS });
  await startupRun(false); // warm the page cache and the data dir
  const plain = await repeat(REPS, () => startupRun(false));
  record({ id: 'startup.total', section, label: 'tally sum 1 10 --workers 2, embedded: launch to exit', runs: plain.map((r) => r.totalMs), unit: 'ms', reps: REPS, extra: { resultPrintedMs: plain.map((r) => r.resultMs) } });
  const debug = await repeat(REPS, () => startupRun(true));
  const pick = (f: (r: StartupRun) => number | null) => debug.map(f).filter((v): v is number => v !== null);
  record({ id: 'startup.serverReady', section, label: '  with --log-level debug: "embedded nats-server started"', runs: pick((r) => r.serverReadyMs), unit: 'ms after launch', reps: REPS });
  // A small job's worker processes are held back (coordinator/embedded/small-job.ts): the
  // stand-in does its tasks, and a worker process gets ready only on a run that outlasts the hold.
  record({ id: 'startup.workersReadyCount', section, label: '  worker processes that got ready', runs: debug.map((r) => r.workersReady), unit: 'processes', reps: REPS, notes: "a small job's are held back for the stand-in" });
  if (debug.some((r) => r.firstWorkerReadyMs !== null)) record({ id: 'startup.firstWorker', section, label: '  first "worker ready"', runs: pick((r) => r.firstWorkerReadyMs), unit: 'ms after launch', reps: REPS });
  record({ id: 'startup.result', section, label: '  result on stdout', runs: pick((r) => r.resultMs), unit: 'ms after launch', reps: REPS });
  record({ id: 'startup.exit', section, label: '  process exit', runs: debug.map((r) => r.totalMs), unit: 'ms after launch', reps: REPS });
  // Node 20 reads every certificate of NODE_EXTRA_CA_CERTS (and its own bundled roots) as it
  // starts, before any JavaScript: ~40 ms of CPU with Debian's ca-certificates bundle, on a
  // machine that sets it for a proxy. (Node 24 reads them when a TLS connection first needs
  // them.) The same runs without it, when it is set, say what is Node's and what is tally's.
  if (process.env.NODE_EXTRA_CA_CERTS) {
    const plainNode = { ...process.env };
    delete plainNode.NODE_EXTRA_CA_CERTS;
    const bare = await repeat(REPS, async () => (await run(process.execPath, ['-e', '0'], { env: plainNode })).ms);
    record({ id: 'startup.noExtraCa.node', section, label: 'node -e 0 without NODE_EXTRA_CA_CERTS', runs: bare, unit: 'ms', reps: REPS });
    const env = embeddedEnv();
    delete env.NODE_EXTRA_CA_CERTS;
    const total = await repeat(REPS, () => startupRun(false, process.execPath, env));
    record({ id: 'startup.noExtraCa.total', section, label: 'tally sum 1 10 --workers 2 without NODE_EXTRA_CA_CERTS: launch to exit', runs: total.map((r) => r.totalMs), unit: 'ms', reps: REPS });
  }
  // Node 24, the LTS users run, where `npm run test:node24` has installed it (the target is
  // measured on the Node running the harness).
  const other = node24();
  if (other) {
    const bare = await repeat(REPS, async () => (await run(other, ['-e', '0'])).ms);
    record({ id: 'startup.node24.node', section, label: 'node -e 0 on Node 24 (.cache/node24)', runs: bare, unit: 'ms', reps: REPS });
    await startupRun(false, other); // its code cache
    const total = await repeat(REPS, () => startupRun(false, other));
    record({ id: 'startup.node24.total', section, label: 'tally sum 1 10 --workers 2 on Node 24: launch to exit', runs: total.map((r) => r.totalMs), unit: 'ms', reps: REPS });
  }
}

/** Node 24 as `npm run test:node24` installs it, when it is there and this is not Node 24 already. */
function node24(): string | null {
  if (process.version.startsWith('v24.')) return null;
  const bin = join(REPO_ROOT, '.cache', 'node24', 'node_modules', 'node', 'bin', 'node');
  if (!existsSync(bin)) return null;
  try {
    return execFileSync(bin, ['--version'], { encoding: 'utf8' }).startsWith('v24.') ? bin : null;
  } catch {
    return null;
  }
}

// ---------------------------------------------------------------------------------------------
// High cardinality: every word distinct (the numbers 1..N), where the reduce's table is largest

/** "20 M", "500 k": a count of distinct words for labels. */
function countLabel(n: number): string {
  return n >= 1e6 ? `${fmt(n / 1e6)} M` : n >= 1e3 ? `${fmt(n / 1e3)} k` : String(n);
}

/** Peak RSS (VmHWM) of the processes of a role, MiB: each one's, their sum and the largest. */
function rssOf(usage: ProcessUsage[], role: Role, filter: (u: ProcessUsage) => boolean = () => true): { each: number[]; sum: number; max: number } {
  const each = usage.filter((u) => u.role === role && filter(u)).map((u) => u.peakRssKb / 1024);
  return { each, sum: each.reduce((a, b) => a + b, 0), max: Math.max(0, ...each) };
}

async function cardinalitySection(corpus: NumbersFile): Promise<void> {
  const { n, path, bytes } = corpus;
  const section = `high cardinality: ${corpus.command} (${countLabel(n)} distinct words, ${(bytes / 1e6).toFixed(1)} MB)`;
  // Slow with today's single-coordinator reduce (minutes at 20 M): one run unless --reps says more.
  const reps = argv.reps ? REPS : SMALL ? REPS : SLOW_REPS;
  const exact = (who: string, json: { totalWords?: unknown; uniqueWords?: unknown }) => {
    if (json.totalWords !== n || json.uniqueWords !== n) {
      throw new Error(`${who} on ${corpus.command}: ${String(json.totalWords)} words, ${String(json.uniqueWords)} distinct; expected ${n} and ${n}`);
    }
  };
  const variants: Array<Variant<any>> = [
    {
      id: 'cardinality.tally',
      label: `tally count, ${countLabel(n)} distinct words, embedded, default fleet (the stand-in gives its reduce task back)`,
      reps,
      runOnce: async () => {
        const r = await tally(['count', path, '--no-progress', '--format', 'json', '--top', '20'], embeddedEnv(), 'coordinator', true);
        exact('tally count', r.json);
        const counts = r.json.counts as Array<[string, number]>;
        if (!Array.isArray(counts) || counts.length !== Math.min(20, n) || counts.some(([, c]) => c !== 1)) throw new Error(`tally count on ${corpus.command}: --top 20 is not 20 words counted once`);
        return { ms: r.result.ms, data: r };
      },
    },
  ];
  if (HAS_PYTHON) {
    variants.push({
      id: 'cardinality.python',
      label: `Python multiprocessing.Pool(2) + Counter, ${countLabel(n)} distinct words`,
      reps,
      runOnce: async () => {
        const r = await sampledRun(PYTHON_EXE, [join(BENCH_SRC, 'peers', 'pool_wordcount.py'), path, '--processes', '2', '--top', '20'], { role: 'python', gnuTime: true });
        const json = JSON.parse(r.result.stdout) as Record<string, unknown>;
        exact('pool_wordcount.py', json);
        return { ms: r.result.ms, data: { ...r, json } satisfies TallyRun };
      },
    });
  }
  const { runs, meters } = await interleaved(variants);
  const median1 = (values: number[]) => round(median(values), 1);

  // tally: wall, MB/s, CPU by role; peak RSS of the coordinator, the workers and nats-server.
  const t = runs.get('cardinality.tally')!.map((r) => r.data as TallyRun);
  const tRss = t.map((r) => ({
    coordinator: rssOf(r.usage, 'coordinator'),
    workers: rssOf(r.usage, 'worker'),
    server: rssOf(r.usage, 'nats-server'),
    treeMax: r.treeMaxRssKb === null ? null : r.treeMaxRssKb / 1024,
  }));
  const tInterference = meters.get('cardinality.tally')!.take();
  const rssNote = 'VmHWM from /proc every 50 ms (bench/procs.ts TreeSampler), median over runs';
  record({
    id: 'cardinality.tally',
    section,
    label: `tally count ${corpus.command}, embedded, --workers 2 --top 20`,
    runs: t.map((r) => mbps(bytes, r.result.ms)),
    unit: 'MB/s',
    reps,
    wallMs: t.map((r) => r.result.ms),
    bytes,
    extra: {
      n,
      totalWords: t[0].json.totalWords,
      uniqueWords: t[0].json.uniqueWords,
      tasks: t[0].json.tasks,
      ...cpuSummary(t),
      gnuTimeTreeMaxRssMiB: tRss.map((x) => (x.treeMax === null ? null : round(x.treeMax, 1))),
    },
    interference: tInterference,
  });
  record({
    id: 'cardinality.tally.coordinatorRss',
    section,
    label: '  tally: coordinator (the tally count process) peak RSS',
    runs: tRss.map((x) => x.coordinator.max),
    unit: 'MiB',
    reps,
    bytes,
    notes: rssNote,
    interference: tInterference,
  });
  record({
    id: 'cardinality.tally.workersRss',
    section,
    label: `  tally: worker processes' peak RSS, sum of ${tRss[0].workers.each.length}`,
    runs: tRss.map((x) => x.workers.sum),
    unit: 'MiB',
    reps,
    bytes,
    notes: `${rssNote}; the sum of each worker process's own peak`,
    extra: { perWorkerMiB: tRss.map((x) => x.workers.each.map((v) => round(v, 1))) },
    interference: tInterference,
  });
  record({ id: 'cardinality.tally.workerMaxRss', section, label: '  tally: worker process peak RSS, largest', runs: tRss.map((x) => x.workers.max), unit: 'MiB', reps, bytes, notes: rssNote, interference: tInterference });
  record({ id: 'cardinality.tally.serverRss', section, label: '  tally: nats-server peak RSS', runs: tRss.map((x) => x.server.max), unit: 'MiB', reps, bytes, notes: rssNote, interference: tInterference });

  if (!HAS_PYTHON) return;
  // Python: the parent (reads, merges the Counters) and the Pool's 2 processes (map).
  const p = runs.get('cardinality.python')!.map((r) => r.data as TallyRun);
  const pRss = p.map((r) => {
    const all = rssOf(r.usage, 'python');
    const parent = rssOf(r.usage, 'python', (u) => u.pid === r.rootPid);
    const pool = rssOf(r.usage, 'python', (u) => u.pid !== r.rootPid);
    return { all, parent, pool, treeMax: r.treeMaxRssKb === null ? null : r.treeMaxRssKb / 1024 };
  });
  const pInterference = meters.get('cardinality.python')!.take();
  record({
    id: 'cardinality.python',
    section,
    label: `Python multiprocessing.Pool(2) + Counter, ${corpus.command} (bench/peers/pool_wordcount.py)`,
    runs: p.map((r) => mbps(bytes, r.result.ms)),
    unit: 'MB/s',
    reps,
    wallMs: p.map((r) => r.result.ms),
    bytes,
    extra: { n, totalWords: p[0].json.totalWords, uniqueWords: p[0].json.uniqueWords, ...cpuSummary(p) },
    interference: pInterference,
  });
  record({
    id: 'cardinality.python.rss',
    section,
    label: `  Python: peak RSS, sum over its ${pRss[0].all.each.length} processes`,
    runs: pRss.map((x) => x.all.sum),
    unit: 'MiB',
    reps,
    bytes,
    notes: `${rssNote}; the sum of each process's own peak (parent + Pool processes)`,
    extra: {
      parentMiB: pRss.map((x) => round(x.parent.sum, 1)),
      poolProcessesMiB: pRss.map((x) => x.pool.each.map((v) => round(v, 1))),
      gnuTimeTreeMaxRssMiB: pRss.map((x) => (x.treeMax === null ? null : round(x.treeMax, 1))),
    },
    interference: pInterference,
  });
  record({
    id: 'cardinality.vsPython',
    section,
    label: `tally count vs Python Pool(2), ${countLabel(n)} distinct words (wall clock)`,
    runs: [median(p.map((r) => r.result.ms)) / median(t.map((r) => r.result.ms))],
    unit: 'x',
    reps,
    notes: 'median Python wall / median tally wall (= MB/s of tally / MB/s of Python)',
    extra: { tallyWallS: median1(t.map((r) => r.result.ms / 1000)), pythonWallS: median1(p.map((r) => r.result.ms / 1000)) },
    interference: 0,
  });
}

// ---------------------------------------------------------------------------------------------
// Ratios and targets

interface Target {
  id: string;
  label: string;
  comparator: '>=' | '<=';
  target: number;
  unit: string;
  measured: number | null;
  held: boolean | null;
  /** How far off: for >= targets the shortfall as % of the target; for <= the excess. */
  missPercent: number | null;
  /** Factor to improve by to meet the target (1 when met). */
  factorNeeded: number | null;
  definition: string;
}

const ratios: Record<string, number> = {};
const targets: Target[] = [];

function ratio(name: string, a: string, b: string, invert = false): number | null {
  const x = get(a)?.value;
  const y = get(b)?.value;
  if (x === undefined || y === undefined) return null;
  const value = invert ? y / x : x / y;
  ratios[name] = round(value, 3);
  return value;
}

function target(id: string, label: string, comparator: '>=' | '<=', goal: number, unit: string, measured: number | null, definition: string): void {
  if (measured === null || !Number.isFinite(measured)) {
    targets.push({ id, label, comparator, target: goal, unit, measured: null, held: null, missPercent: null, factorNeeded: null, definition });
    return;
  }
  const held = comparator === '>=' ? measured >= goal : measured <= goal;
  const missPercent = held ? 0 : comparator === '>=' ? ((goal - measured) / goal) * 100 : ((measured - goal) / goal) * 100;
  const factorNeeded = held ? 1 : comparator === '>=' ? goal / measured : measured / goal;
  // A goal of 0 (backups fired without a straggler) has no relative miss.
  const relative = (v: number, digits: number) => (Number.isFinite(v) ? round(v, digits) : null);
  targets.push({ id, label, comparator, target: goal, unit, measured: round(measured, 3), held, missPercent: relative(missPercent, 1), factorNeeded: relative(factorNeeded, 2), definition });
}

function evaluate(): void {
  const e = 'count.english';
  const vsPython = ratio('tallyE2eVsPython', `${e}.tally.default`, `${e}.python`);
  const vsWc = ratio('tallyE2eVsWc', `${e}.tally.default`, `${e}.wc`);
  ratio('defaultFleetVsWorkers2', `${e}.tally.default`, `${e}.tally.w2`);
  ratio('multilingualDefaultFleetVsWorkers2', 'count.multilingual.tally.default', 'count.multilingual.tally.w2');
  ratio('tallyWhitespaceVsWc', `${e}.tally.whitespace`, `${e}.wc`);
  ratio('tallyE2eVsTrSortUniq', `${e}.tally.w2`, `${e}.trsort`);
  const scale = ratio('tallyWorkers2vs1', `${e}.tally.w2`, `${e}.tally.w1`);
  ratio('inprocMap2vs1', `${e}.inproc.map2`, `${e}.inproc.map1`);
  ratio('inprocPipeline2vs1', `${e}.inproc.pipe2`, `${e}.inproc.pipe1`);
  const nats2 = ratio('natsVsInprocAt2', `${e}.tally.w2`, `${e}.inproc.pipe2`);
  const nats1 = ratio('natsVsInprocAt1', `${e}.tally.w1`, `${e}.inproc.pipe1`);
  // The same job with every chunk's bytes through the server (what --server does by default).
  ratio('shipVsInprocAt2', `${e}.tally.w2.ship`, `${e}.inproc.pipe2`);
  ratio('workersReadFilesVsShip', `${e}.tally.w2`, `${e}.tally.w2.ship`);
  ratio('reducersVsCoordinatorReduce', `${e}.tally.w2`, `${e}.tally.w2.coordinatorReduce`);
  ratio('wasmVsJsMap1', `${e}.inproc.map1`, `${e}.inproc.map1.js`);
  ratio('wasmVsJsE2e', `${e}.tally.w2`, `${e}.tally.w2.js`);
  ratio('defaultChunkVs1M', `${e}.tally.w2`, `${e}.tally.w2.chunk1M`);
  ratio('multilingualWasmVsJsMap1', 'count.multilingual.inproc.map1', 'count.multilingual.inproc.map1.js');
  ratio('multilingualReducersVsCoordinatorReduce', 'count.multilingual.tally.w2', 'count.multilingual.tally.w2.coordinatorReduce');
  ratio('multilingualE2eVsPython', 'count.multilingual.tally.default', 'count.multilingual.python');
  ratio('factorialTallyVsPython', 'factorial.python', 'factorial.tally');
  const rssGrowth = ratio('coordinatorRssGrowth', 'rss1.coordinator', 'rss0.coordinator');
  const steady0 = get('rss0.coordinator')?.extra?.steadyRssMiB as number | undefined;
  const steady1 = get('rss1.coordinator')?.extra?.steadyRssMiB as number | undefined;
  if (steady0 && steady1) ratios.coordinatorSteadyRssGrowth = round(steady1 / steady0, 3);
  const rss = get('rss1.coordinator')?.value ?? null;
  const tiny = get('tiny.sum')?.value ?? null;
  const map1 = get(`${e}.inproc.map1`)?.value ?? null;
  const startup = get('startup.total')?.value ?? null;
  const folder = ratio('folderVsOneFile', 'folder.tally.many', 'folder.tally.one');
  const coordinatorRate = get(`${e}.coordinatorGBps`)?.value ?? null;
  const distinct = countLabel(SIZES.cardinalityN);
  const cardinality = ratio('cardinalityTallyVsPython', 'cardinality.tally', 'cardinality.python');
  const cardinalityCoordinator = get('cardinality.tally.coordinatorRss')?.value ?? null;
  const reducersVsPool = ratio('cardinalityWorkersVsPoolRss', 'cardinality.tally.workersRss', 'cardinality.python.rss');

  target('gzipVsZcatWc', 'tally count of 20 gzip files vs zcat | LC_ALL=C wc -w', '>=', 1.5, 'x', ratio('gzipVsZcatWc', 'gz.tally.parts', 'gz.zcatwc'), 'MB/s of text: tally count (embedded, 2 workers, workers decompress) / zcat … | wc -w');
  target('e2eVsPython', 'tally count e2e (embedded, default fleet) vs Python Pool', '>=', 6, 'x', vsPython, 'MB/s of tally count (no --workers) / MB/s of pool_wordcount.py, English corpus, wall clock incl. start-up');
  target('e2eVsWc', 'tally count e2e vs LC_ALL=C wc -w', '>=', 1.0, 'x', vsWc, 'MB/s of tally count (unicode tokenizer) / MB/s of wc -w');
  target('map1', 'map throughput, 1 process (unicode, English)', '>=', 150, 'MB/s', map1, 'countKind.map over the 1 MiB chunks, one thread, no NATS');
  target('map1VsWc', 'map throughput, 1 process, vs LC_ALL=C wc -w (English)', '>=', 1.0, 'x', ratio('map1VsWc', `${e}.inproc.map1`, `${e}.wc`), 'MB/s of countKind.map in one thread (unicode tokenizer) / MB/s of wc -w');
  target('multilingualMap1', 'map throughput, 1 process (unicode, multilingual)', '>=', 100, 'MB/s', get('count.multilingual.inproc.map1')?.value ?? null, 'countKind.map over the 1 MiB chunks of the multilingual corpus, one thread, no NATS');
  target('workers2vs1', '2 workers vs 1 (tally count e2e)', '>=', 1.7, 'x', scale, 'MB/s with --workers 2 / MB/s with --workers 1');
  target('natsVsInproc', 'NATS path vs in-process at equal parallelism (2)', '<=', 25, '% slower', nats2 === null ? null : (1 - nats2) * 100, '1 - (tally count --workers 2 MB/s) / (in-process pipeline with 2 map threads MB/s)');
  target('tinyTasks', 'tiny tasks (sum, 2 workers)', '>=', 10_000, 'tasks/s', tiny, `tasks / wall time of tally sum 1 ${SIZES.tinyTo} --tasks ${SIZES.tinyTasks}, incl. start-up`);
  target('coordinatorRss', `coordinator peak RSS on ${SIZES.rssLabels[1]}`, '<=', 300, 'MiB', rss, 'VmHWM (maxrss) of tally count --server FILE');
  target('coordinatorRssFlat', `coordinator peak RSS flat ${SIZES.rssLabels[0]} → ${SIZES.rssLabels[1]}`, '<=', 1.1, 'x', rssGrowth, 'peak RSS on the large input / on the small one (flat = at most +10%); the same ~11 k distinct words at both sizes: growth with distinct words is the cardinality targets');
  target('folder', `a folder of ${SIZES.folderFiles} small files vs one file of the same bytes`, '>=', 0.8, 'x', folder, 'MB/s of tally count FOLDER / MB/s of tally count FILE, embedded, same words');
  target('factorialVsGmpy2', `tally factorial ${SIZES.factorialN} vs gmpy2 (N!, all digits, sha256)`, '>=', 0.5, 'x', ratio('factorialVsGmpy2', 'factorial.gmpy2', 'factorial.tally'), 'seconds of gmpy2 fac(N).digits() + sha256 (/usr/bin/python3) / seconds of tally factorial N (embedded, 2 workers, wall incl. start-up), interleaved');
  target('startup', 'embedded start-up (tally sum 1 10 --workers 2)', '<=', 200, 'ms', startup, 'launch to exit, wall clock, in the environment the harness runs in; startup.noExtraCa.total: the same without NODE_EXTRA_CA_CERTS when it is set (Node 20 reads that bundle at every start), startup.node24.total: on Node 24');
  target('primesVsPrimesieve', `tally primes 1 ${SIZES.primesTargetTo} (embedded, 2 workers) vs primesieve -t2`, '>=', 0.33, 'x', ratio('primesVsPrimesieve', 'primes.target.primesieve', 'primes.target.w2'), 'wall of primesieve TO -t2 / wall of tally primes 1 TO --workers 2, incl. start-up; ratios primes1e9VsPrimesieve and primesWindowVsPrimesieve: the same on 1..1e9 and on the window below 10^15');
  ratio('factorialGmpVsJs', 'factorial.tally.js', 'factorial.tally');
  ratio('primes1e9VsPrimesieve', 'primes.primesieve', 'primes.w2');
  ratio('primesWindowVsPrimesieve', 'primes.window.primesieve', 'primes.window.w2');
  target('coordinatorCoreRate', 'one coordinator core keeps up with the input when workers read the files (English)', '>=', 1, 'GB/s', coordinatorRate, '10^9 bytes of input / CPU seconds of the tally count process (embedded, --workers 2, workers read the files), start-up included');
  target('cardinalityVsPython', `${distinct} distinct words: tally count vs Python Pool(2)`, '>=', 1.5, 'x', cardinality, `MB/s of tally count --workers 2 / MB/s of pool_wordcount.py --processes 2 on seq 1 ${SIZES.cardinalityN}, wall clock incl. start-up`);
  target('cardinalityCoordinatorRss', `coordinator peak RSS, ${distinct} distinct words`, '<=', 300, 'MiB', cardinalityCoordinator, 'VmHWM of the tally count process (embedded, --workers 2), /proc sampled every 50 ms');
  target('cardinalityReducersRss', `reducers (worker processes) together vs Pool(2)'s peak RSS, ${distinct} distinct words`, '<=', 1, 'x', reducersVsPool, "sum of the worker processes' VmHWM / sum of the Python processes' VmHWM (parent + Pool)");
  const dashboard = get('dashboard.ratio')?.value ?? null;
  if (dashboard !== null) ratios.dashboardOpenVsClosed = round(dashboard, 3);
  target('dashboardOverhead', 'a job with tally dashboard open (3 pages, /metrics every 5 s) vs without', '<=', 1.02, 'x', dashboard, 'median wall of tally count --server with a dashboard open / without, interleaved, same warm fleet');
  const frozen = get('stragglers.frozenVsFaultFree')?.value ?? null;
  if (frozen !== null) ratios.stragglerFrozenVsFaultFree = round(frozen, 3);
  const frozenOff = get('stragglers.frozenOffVsFaultFree')?.value ?? null;
  if (frozenOff !== null) ratios.stragglerFrozenNoBackupsVsFaultFree = round(frozenOff, 3);
  const backupsOnOff = get('stragglers.onVsOff')?.value ?? null;
  if (backupsOnOff !== null) ratios.backupsOnVsOffFaultFree = round(backupsOnOff, 3);
  const faultFreeBackups = get('stragglers.faultFreeBackups');
  target('stragglerFrozen', 'a job with one worker process frozen 1 s in (backup tasks on) vs fault-free', '<=', 1.5, 'x', frozen, 'median wall of tally count --server with one of the 2 worker processes SIGSTOPped 1 s after the job started / median wall fault-free, interleaved, same warm fleet');
  target('backupsFaultFreeCost', 'fault-free job, backup tasks on vs --no-backup-tasks', '<=', 1.02, 'x', backupsOnOff, 'median over the repetitions of (backups-on wall / backups-off wall), fault-free, interleaved');
  target('backupsFaultFreeFired', 'backups fired in fault-free jobs', '<=', 0, 'backups', faultFreeBackups ? faultFreeBackups.runs.reduce((a, b) => a + b, 0) : null, 'sum of backedUp.count over the fault-free runs (from each job\'s last feed message)');
  if (nats1 !== null) ratios.natsSlowdownAt1Percent = round((1 - nats1) * 100, 1);
}

// ---------------------------------------------------------------------------------------------
// Output

function tables(): { text: string; markdown: string } {
  const header = ['benchmark', 'median', 'unit', 'runs', 'wall (median)', 'other load'];
  const rows = measurements.map((m) => [
    m.label,
    fmt(m.value),
    m.unit,
    String(m.runs.length),
    m.wallMs ? `${fmt(median(m.wallMs) / 1000)} s` : '',
    (m.interference ?? 0) >= 0.15 ? `${fmt(m.interference)} cores (!)` : (m.interference ?? 0) >= 0.05 ? `${fmt(m.interference)} cores` : '',
  ]);
  const theader = ['target', 'required', 'measured', 'status', 'miss'];
  const trows = targets.map((t) => [
    t.label,
    `${t.comparator} ${fmt(t.target)} ${t.unit}`,
    t.measured === null ? 'n/a' : `${fmt(t.measured)} ${t.unit}`,
    t.held === null ? 'not run' : t.held ? 'MET' : 'MISSED',
    t.held === false ? (t.missPercent === null ? `${fmt(t.measured)} ${t.unit} over` : `${fmt(t.missPercent)}% off (needs ${fmt(t.factorNeeded)}x)`) : '',
  ]);
  const text = textTable(header, rows) + '\n' + textTable(theader, trows);
  const markdown = markdownTable(header, rows) + '\n' + markdownTable(theader, trows, ['l', 'r', 'r', 'l', 'l']);
  return { text, markdown };
}

const loadavgAtStart = readFileSync('/proc/loadavg', 'utf8').trim();

async function main(): Promise<void> {
  say(`${SMALL ? 'small' : 'full'} run, ${REPS} repetition(s) for fast measurements, ${SLOW_REPS} for slow ones; temp dir ${tempRoot}`);
  const info = machine();
  const english = englishSeed();
  const multilingual = multilingualSeed();
  const corpora: CorpusRun[] = [];
  if (SECTIONS.has('count')) {
    if (CORPORA.has('english')) corpora.push({ seed: english, file: corpusFile(english, SIZES.countBytes, `english-${SIZES.countBytes / MiB}MiB`) });
    if (CORPORA.has('multilingual')) corpora.push({ seed: multilingual, file: corpusFile(multilingual, SIZES.multilingualBytes, `multilingual-${SIZES.multilingualBytes / MiB}MiB`) });
  }
  const numbers = SECTIONS.has('cardinality') ? numbersFile(SIZES.cardinalityN, `numbers-1-${SIZES.cardinalityN}`) : null;
  try {
    if (SECTIONS.has('calib')) await calibrate();
    for (const corpus of corpora) await countSection(corpus);
    if (SECTIONS.has('folder')) await folderSection(english);
    if (SECTIONS.has('compressed')) await compressedSection(english);
    if (SECTIONS.has('tiny')) await tinySection();
    if (SECTIONS.has('primes')) await primesSection();
    if (SECTIONS.has('factorial')) await factorialSection();
    if (SECTIONS.has('rss')) await rssSection(english);
    if (SECTIONS.has('startup')) await startupSection();
    if (numbers) await cardinalitySection(numbers);
    if (SECTIONS.has('dashboard')) {
      // What an open `tally dashboard` costs a job: bench/dashboard.ts.
      await dashboardSection({
        file: corpusFile(english, SIZES.countBytes, `english-${SIZES.countBytes / MiB}MiB`),
        reps: REPS,
        storeDir: join(tempRoot, 'dashboard-store'),
        env: embeddedEnv(),
        quiet,
        record,
      });
    }
    if (SECTIONS.has('stragglers')) {
      // Backup tasks for stragglers: a frozen worker with and without them, and their cost: bench/stragglers.ts.
      await stragglersSection({
        file: corpusFile(english, SIZES.countBytes, `english-${SIZES.countBytes / MiB}MiB`),
        reps: REPS,
        small: SMALL,
        storeDir: join(tempRoot, 'stragglers-store'),
        env: embeddedEnv(),
        quiet,
        record,
      });
    }
  } finally {
    if (!argv.keep) rmSync(tempRoot, { recursive: true, force: true });
  }
  evaluate();
  const { text, markdown } = tables();
  const results = {
    schema: 1,
    mode: SMALL ? 'small' : 'full',
    date: new Date(started).toISOString(),
    durationS: round((Date.now() - started) / 1000, 1),
    command: SMALL ? 'node dist/bench/run.js --small' : 'npm run bench',
    machine: info,
    repetitions: {
      fast: REPS,
      slow: SLOW_REPS,
      rule: 'each figure is the median of its runs; slow measurements (tr|sort|uniq, Python factorial) run once; word-count peers run interleaved',
    },
    sharedMachine: {
      waitForQuiet: WAIT_QUIET ? 'before each timed run, waited (up to 20 s; 6 min in all) for < 15% machine CPU use' : 'off',
      quietWaitTotalS: round(quietWaitMs / 1000, 1),
      loadavgAtStart: loadavgAtStart,
      interference: 'per measurement: average cores kept busy by other processes during its timed runs',
    },
    corpus: {
      english: { seed: english.description, seedBytes: english.bytes.length, seedSha256: english.sha256 },
      multilingual: { seed: multilingual.description, seedBytes: multilingual.bytes.length, seedSha256: multilingual.sha256 },
      files: corpora.map((c) => ({ name: c.seed.name, bytes: c.file.bytes, copies: c.file.copies })),
      cardinality: numbers ? { command: numbers.command, words: numbers.n, distinct: numbers.n, bytes: numbers.bytes, sha256: numbers.sha256 } : null,
      rssSizesBytes: SIZES.rssBytes,
    },
    settings: { chunkSize: '1 MiB (tally default)', tokenizer: 'unicode (tally default) unless noted', caseFolding: true, workersDefault: WORKERS_DEFAULT },
    measurements,
    ratios,
    targets,
  };
  writeFileSync(OUT, JSON.stringify(results, null, 2) + '\n');
  writeFileSync(OUT.replace(/\.json$/, '') + '.md', `<!-- generated by ${results.command} on ${results.date} -->\n\n${markdown}`);
  process.stdout.write(`\ntally benchmarks (${results.mode}) · ${info.cpuModel}, ${info.cores} cores, ${info.memoryGiB} GiB · node ${info.node} · ${info.natsServer}\n\n`);
  process.stdout.write(text);
  if (SMALL) process.stdout.write('\n--small: tiny inputs, one run each: the figures and targets above are not meaningful; this run checks that every contender works and that the totals agree.\n');
  process.stdout.write(`\nwrote ${OUT} in ${results.durationS} s\n`);
}

main().catch((error) => {
  process.stderr.write(`bench: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  if (!argv.keep) rmSync(tempRoot, { recursive: true, force: true });
  process.exit(1);
});
