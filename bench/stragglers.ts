/**
 * Bench section `stragglers`: what backup tasks (coordinator/backup-tasks.ts) buy a job with a
 * frozen worker, and what they cost a job without one.
 *
 * One nats-server and a warm `tally worker --processes 2` fleet (startWarmFleet, as the
 * `dashboard` section), one untimed job first, then per repetition, interleaved (the order
 * rotates every repetition so that drift and what one job leaves the next fall on all alike):
 *
 *   1. `ff.on`      fault-free, backups on (the default);
 *   2. `ff.off`     fault-free, `--no-backup-tasks`;
 *   3. `frozen.on`  one worker process SIGSTOPped 1 s after the job was spawned, SIGCONTed once
 *                   the job has ended, backups on;
 *
 * and once, after the repetitions (not with --small: it waits out the 30 s ack wait):
 *
 *   4. `frozen.off` the same frozen case with `--no-backup-tasks`.
 *
 * The job is `tally count FILE --server URL --no-progress --format json --top 1`. The harness
 * follows every job's live feed (`tally.progress.*`, shared/job-feed.ts) with a NATS client of
 * its own and keeps each job's last message: `backedUp.count` (backups fired), `backedUp.won`
 * (backups whose result was the one folded), and the duplicated work, the bytes of the backed-up
 * tasks, read from each backup event's `input` ("FILE bytes A-B"; a count job at this size sends
 * one task per message, so a backup copies one chunk), checked against count x chunk size.
 *
 * With --small (8 MiB, 256 KiB chunks so that the job has 32 tasks, one repetition) the freeze
 * comes as soon as the job's feed shows its first task done, since the whole job takes less
 * than the 1 s of a full run; the SIGSTOP variant with backups still runs.
 *
 * A stopped process is always continued (try/finally) before anything else happens to it, and
 * the fleet is stopped at the end.
 */
import { readFileSync } from 'node:fs';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import type { JobFeed, TaskEvent } from '../shared/job-feed.js';
import { JOB_FEED_SUBJECTS } from '../shared/subjects.js';
import { WORKER_PROGRAM } from '../worker/supervisor.js';
import { Interference, TALLY_BIN, childPids, median, round, run, say, sleep, startWarmFleet, type ServerSectionOptions } from './lib.js';

export interface StragglersBenchOptions extends ServerSectionOptions {
  /** Repetitions of the three interleaved variants. */
  reps: number;
  /** Small mode: freeze on the job's first finished task, smaller chunks, no frozen run without backups. */
  small: boolean;
}

/** A full run freezes a worker this long after the job's process was spawned. */
const FREEZE_AFTER_MS = 1_000;
/** Chunk size of the small run (the default, 1 MiB, would give an 8 MiB job only 8 tasks). */
const SMALL_CHUNK = '256K';
/** The full run's chunk size: tally's default. */
const DEFAULT_CHUNK_BYTES = 1024 * 1024;
/** After a job (and after a thaw): the fleet settles before the next run is timed. */
const SETTLE_MS = 1_000;
/** A thawed worker gets this long to finish or drop its stale task before the next run. */
const THAW_SETTLE_MS = 2_000;
/** No job of this bench may take longer (the frozen run without backups takes ~32 s). */
const JOB_TIMEOUT_MS = 180_000;

type VariantId = 'ff.on' | 'ff.off' | 'frozen.on' | 'frozen.off';

interface JobRun {
  variant: VariantId;
  ms: number;
  totalWords: number;
  jobId: string;
  /** The worker process frozen (-1: none), and when, ms after the job's spawn (null: never, the job ended first). */
  frozenPid: number;
  frozenAtMs: number | null;
  /** From the job's last feed message (null: no feed message of the job arrived). */
  feedStatus: JobFeed['status'] | null;
  backups: number;
  backupsWon: number;
  /** Bytes of the backed-up tasks, from the backup events' inputs (those the feed still lists). */
  duplicatedBytes: number;
  /** Backup events the feed lists (it keeps the newest 50) and how many named a byte range. */
  backupEvents: number;
  backupEventsWithRange: number;
  /** Backup events whose straggler was the frozen worker. */
  backupsOfFrozen: number;
  /** The backup events the feed lists: task, input, straggler(s), why. */
  events: Array<{ task: number; input: string; worker: string; why: string }>;
  /** Tasks and bytes folded from each worker ("host:pid"). */
  shares: Array<{ worker: string; tasks: number; weight: number }>;
}

/** Bytes an event's input names ("books/a.txt bytes 0-1048575" → 1048576), or null. */
export function bytesOfInput(input: string): number | null {
  const match = /bytes (\d+)-(\d+)\s*$/.exec(input);
  if (!match) return null;
  const a = Number(match[1]);
  const b = Number(match[2]);
  return b >= a ? b - a + 1 : null;
}

/** The cmdline of a process ('' when gone). */
function cmdline(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ');
  } catch {
    return '';
  }
}

/** Follows every job's feed; keeps the last message of each job and wakes waiters. */
class FeedWatch {
  readonly last = new Map<string, JobFeed>();
  private listeners = new Set<(feed: JobFeed) => void>();

  private constructor(private readonly nc: NatsConnection) {}

  static async open(url: string): Promise<FeedWatch> {
    const nc = await connect({ servers: url, name: 'tally bench stragglers' });
    const watch = new FeedWatch(nc);
    nc.subscribe(JOB_FEED_SUBJECTS, {
      callback: (error, message) => {
        if (error) return;
        let feed: JobFeed;
        try {
          feed = message.json<JobFeed>();
        } catch {
          return;
        }
        if (typeof feed?.job !== 'string') return;
        watch.last.set(feed.job, feed);
        for (const listener of watch.listeners) listener(feed);
      },
    });
    await nc.flush();
    return watch;
  }

  /** Calls `listener` with every feed message until the returned function is called. */
  listen(listener: (feed: JobFeed) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** The job's last feed message once it says the job ended (or the newest one after `ms`). */
  async final(job: string, ms = 5_000): Promise<JobFeed | null> {
    const deadline = Date.now() + ms;
    while (Date.now() < deadline) {
      const feed = this.last.get(job);
      if (feed && feed.status !== 'running') return feed;
      await sleep(20);
    }
    return this.last.get(job) ?? null;
  }

  async close(): Promise<void> {
    await this.nc.close();
  }
}

export async function stragglersSection(o: StragglersBenchOptions): Promise<void> {
  const { file, reps, env, small } = o;
  const section = `stragglers: backup tasks, one worker frozen (tally count --server, ${(file.bytes / 1e6).toFixed(0)} MB English)`;
  const chunkBytes = small ? 256 * 1024 : DEFAULT_CHUNK_BYTES;
  const fleet = await startWarmFleet(o.storeDir, env);
  const serverUrl = fleet.server.url;
  /** Worker processes stopped and not yet continued. */
  const stopped = new Set<number>();
  const thaw = (pid: number) => {
    if (!stopped.has(pid)) return;
    try {
      process.kill(pid, 'SIGCONT');
    } catch {
      // gone
    }
    stopped.delete(pid);
  };
  // Should the harness die with a worker stopped (an uncaught error), continue it on the way out.
  const thawAll = () => {
    for (const pid of [...stopped]) thaw(pid);
  };
  process.on('exit', thawAll);
  let watch: FeedWatch | null = null;
  const runs: JobRun[] = [];
  const meters = new Map<VariantId, Interference>((['ff.on', 'ff.off', 'frozen.on', 'frozen.off'] as const).map((v) => [v, new Interference()]));

  /** The supervisor's worker processes (waits up to 15 s for two). */
  const workerPids = async (): Promise<number[]> => {
    const deadline = Date.now() + 15_000;
    for (;;) {
      const pids = childPids(fleet.supervisor.pid!).filter((pid) => cmdline(pid).includes(WORKER_PROGRAM));
      if (pids.length === 2) return pids;
      if (Date.now() > deadline) throw new Error(`stragglers bench: the worker supervisor has ${pids.length} worker processes, not 2`);
      await sleep(50);
    }
  };

  const job = async (variant: VariantId, freezeIndex = 0): Promise<JobRun> => {
    const frozenVariant = variant.startsWith('frozen');
    const args = ['count', file.path, '--server', serverUrl, '--no-progress', '--format', 'json', '--top', '1'];
    if (small) args.push('--chunk-size', SMALL_CHUNK);
    if (variant.endsWith('.off')) args.push('--no-backup-tasks');
    const pids = frozenVariant ? await workerPids() : [];
    const victim = frozenVariant ? pids[freezeIndex % pids.length]! : -1;
    let spawnedAt = 0;
    let frozenAtMs: number | null = null;
    let ended = false;
    let timer: NodeJS.Timeout | null = null;
    let unlisten: (() => void) | null = null;
    const freeze = () => {
      if (ended || frozenAtMs !== null) return;
      if (!cmdline(victim).includes(WORKER_PROGRAM)) {
        say(`stragglers: pid ${victim} is no longer a worker process; nothing frozen in this run`);
        return;
      }
      process.kill(victim, 'SIGSTOP');
      stopped.add(victim);
      frozenAtMs = performance.now() - spawnedAt;
    };
    const meter = meters.get(variant)!;
    meter.start();
    let result;
    try {
      result = await run(process.execPath, [TALLY_BIN, ...args], {
        env,
        timeoutMs: JOB_TIMEOUT_MS,
        onSpawn: () => {
          spawnedAt = performance.now();
          if (!frozenVariant) return;
          if (small) {
            // The whole small job is shorter than a second: freeze once the map is under way.
            const wallStart = Date.now();
            unlisten = watch!.listen((feed) => {
              if (feed.at >= wallStart && feed.status === 'running' && feed.tasksDone > 0) freeze();
            });
          } else timer = setTimeout(freeze, FREEZE_AFTER_MS);
        },
      });
    } finally {
      ended = true;
      meter.stop();
      if (timer) clearTimeout(timer);
      (unlisten as (() => void) | null)?.();
      if (victim > 0) thaw(victim);
    }
    const json = JSON.parse(result.stdout.trim().split('\n').pop() ?? '{}') as { totalWords?: number; job?: string };
    if (typeof json.totalWords !== 'number' || typeof json.job !== 'string') throw new Error(`tally count --server: no totalWords or job in ${result.stdout.slice(0, 200)}`);
    const feed = await watch!.final(json.job);
    const events: TaskEvent[] = feed?.backedUp.recent ?? [];
    const ranges = events.map((e) => bytesOfInput(e.input));
    const r: JobRun = {
      variant,
      ms: result.ms,
      totalWords: json.totalWords,
      jobId: json.job,
      frozenPid: victim,
      frozenAtMs,
      feedStatus: feed?.status ?? null,
      backups: feed?.backedUp.count ?? 0,
      backupsWon: feed?.backedUp.won ?? 0,
      duplicatedBytes: ranges.reduce<number>((a, b) => a + (b ?? 0), 0),
      backupEvents: events.length,
      backupEventsWithRange: ranges.filter((b) => b !== null).length,
      backupsOfFrozen: victim > 0 ? events.filter((e) => e.worker.split(', ').some((w) => w.endsWith(`:${victim}`))).length : 0,
      events: events.map((e) => ({ task: e.task, input: e.input, worker: e.worker || 'unknown', why: e.error ?? '' })),
      shares: (feed?.workers ?? []).map((w) => ({ worker: w.worker, tasks: w.tasks, weight: w.weight })),
    };
    if (feed === null) say(`stragglers: no feed message of job ${r.jobId} arrived; its backups are counted as 0`);
    else if (feed.status !== 'done') say(`stragglers: job ${r.jobId}'s last feed message says ${feed.status}, not done`);
    const frozenNote = frozenVariant ? (frozenAtMs === null ? ', the job ended before the freeze' : `, pid ${victim} frozen at ${(frozenAtMs as number / 1000).toFixed(2)} s`) : '';
    say(`stragglers: ${variant}: ${(r.ms / 1000).toFixed(2)} s, ${r.backups} backup(s), ${r.backupsWon} won, ${(r.duplicatedBytes / 1e6).toFixed(2)} MB duplicated${frozenNote}`);
    return r;
  };

  try {
    watch = await FeedWatch.open(serverUrl);
    await workerPids();
    say('stragglers: one untimed job first (the server makes its streams, the page cache fills)');
    const reference = (await job('ff.on')).totalWords;
    const check = (r: JobRun) => {
      if (r.totalWords !== reference) throw new Error(`stragglers bench: ${r.variant} counted ${r.totalWords} words, the first run ${reference}`);
      runs.push(r);
    };
    const timed = async (variant: VariantId, rep: number) => {
      await sleep(SETTLE_MS);
      await o.quiet();
      const r = await job(variant, rep);
      check(r);
      // A thawed worker finishes (or drops) its stale task before the next run is timed.
      if (variant.startsWith('frozen')) await sleep(THAW_SETTLE_MS);
    };
    const order: VariantId[] = ['ff.on', 'ff.off', 'frozen.on'];
    for (let rep = 0; rep < reps; rep++) {
      for (let k = 0; k < order.length; k++) await timed(order[(k + rep) % order.length]!, rep);
    }
    if (!small) {
      say('stragglers: the frozen run without backup tasks (it waits out the 30 s ack wait)');
      await timed('frozen.off', 0);
    }
    await workerPids();
  } finally {
    thawAll();
    process.off('exit', thawAll);
    await watch?.close();
    await fleet.stop();
  }

  // -------------------------------------------------------------------------------------------
  // Records

  const of = (v: VariantId) => runs.filter((r) => r.variant === v);
  const walls = (v: VariantId) => of(v).map((r) => r.ms);
  const common = { section, bytes: file.bytes };
  const MB = (bytes: number) => round(bytes / 1e6, 2);
  const perRun = (v: VariantId) =>
    of(v).map((r) => ({
      job: r.jobId,
      wallS: round(r.ms / 1000, 3),
      backups: r.backups,
      won: r.backupsWon,
      duplicatedMB: MB(r.duplicatedBytes),
      ...(r.frozenPid > 0 ? { frozenPid: r.frozenPid, frozenAtS: r.frozenAtMs === null ? null : round(r.frozenAtMs / 1000, 2), backupsOfFrozen: r.backupsOfFrozen } : {}),
      shares: r.shares.map((s) => `${s.worker}: ${s.tasks} tasks, ${MB(s.weight)} MB`),
      backupEvents: r.events,
      feed: r.feedStatus,
    }));
  const labels: Record<VariantId, string> = {
    'ff.on': 'tally count --server, 2 warm worker processes, fault-free, backup tasks on (default)',
    'ff.off': '  the same, fault-free, --no-backup-tasks',
    'frozen.on': `  one worker process SIGSTOPped ${small ? 'once the first task is done' : `${FREEZE_AFTER_MS / 1000} s in`}, backup tasks on`,
    'frozen.off': `  one worker process SIGSTOPped ${FREEZE_AFTER_MS / 1000} s in, --no-backup-tasks (once)`,
  };
  for (const v of ['ff.on', 'ff.off', 'frozen.on', 'frozen.off'] as const) {
    const ms = walls(v);
    if (ms.length === 0) continue;
    o.record({
      ...common,
      id: `stragglers.${v}`,
      label: labels[v],
      runs: ms.map((x) => x / 1000),
      unit: 's',
      reps: ms.length,
      wallMs: ms,
      notes: v.startsWith('frozen') ? 'the frozen process is SIGCONTed once the job has ended' : undefined,
      extra: { totalWords: runs[0]?.totalWords, runs: perRun(v) },
      interference: meters.get(v)!.take(),
    });
  }

  const ffOn = walls('ff.on');
  const ffOff = walls('ff.off');
  const frozenOn = walls('frozen.on');
  const frozenOff = walls('frozen.off');
  if (frozenOn.length > 0 && ffOn.length > 0) {
    o.record({
      ...common,
      id: 'stragglers.frozenVsFaultFree',
      label: '  frozen worker, backups on / fault-free (median walls; goal <= 1.5)',
      runs: [median(frozenOn) / median(ffOn)],
      unit: 'x',
      reps: frozenOn.length,
      notes: 'median wall of the frozen runs with backups / median wall of the fault-free runs with backups',
      extra: { perRepetition: frozenOn.map((ms, i) => round(ms / ffOn[i]!, 3)) },
      interference: 0,
    });
  }
  if (frozenOff.length > 0 && ffOn.length > 0) {
    o.record({
      ...common,
      id: 'stragglers.frozenOffVsFaultFree',
      label: '  frozen worker, --no-backup-tasks / fault-free (before backup tasks)',
      runs: [median(frozenOff) / median(ffOn)],
      unit: 'x',
      reps: 1,
      notes: 'bounded by the 30 s ack wait: the frozen task is redelivered to the other worker then',
      interference: 0,
    });
  }
  if (ffOn.length > 0 && ffOff.length > 0) {
    o.record({
      ...common,
      id: 'stragglers.onVsOff',
      label: '  fault-free, backups on / off (median of the repetitions; goal <= 1.02)',
      runs: [median(ffOn.map((ms, i) => ms / ffOff[i]!))],
      unit: 'x',
      reps: ffOn.length,
      notes: 'median over the repetitions of (backups-on wall / backups-off wall), interleaved; ratioOfMedians: median on / median off',
      extra: { perRepetition: ffOn.map((ms, i) => round(ms / ffOff[i]!, 3)), ratioOfMedians: round(median(ffOn) / median(ffOff), 3) },
      interference: 0,
    });
  }
  const faultFree = [...of('ff.on'), ...of('ff.off')];
  o.record({
    ...common,
    id: 'stragglers.faultFreeBackups',
    label: '  backups fired per fault-free run (must be 0)',
    runs: faultFree.map((r) => r.backups),
    unit: 'backups',
    reps: faultFree.length,
    notes: 'backedUp.count of the last feed message of each fault-free job (with --no-backup-tasks it is 0 by construction)',
    extra: { backupsOn: of('ff.on').map((r) => r.backups), backupsOff: of('ff.off').map((r) => r.backups), total: faultFree.reduce((a, r) => a + r.backups, 0) },
    interference: 0,
  });
  for (const v of ['frozen.on', 'frozen.off'] as const) {
    const fr = of(v);
    if (fr.length === 0) continue;
    const eventsListed = fr.reduce((a, r) => a + r.backupEvents, 0);
    const withRange = fr.reduce((a, r) => a + r.backupEventsWithRange, 0);
    const fired = fr.reduce((a, r) => a + r.backups, 0);
    o.record({
      ...common,
      id: `stragglers.${v}.backups`,
      label: `  ${v === 'frozen.on' ? 'frozen, backups on' : 'frozen, --no-backup-tasks'}: backups fired per run`,
      runs: fr.map((r) => r.backups),
      unit: 'backups',
      reps: fr.length,
      extra: {
        won: fr.map((r) => r.backupsWon),
        ofTheFrozenWorker: fr.map((r) => r.backupsOfFrozen),
        // Messages whose start no worker had reported (held unstarted by the frozen worker): the
        // feed counts their backup as lost even when its result is the one folded.
        ofAnUnreportedStart: fr.map((r) => r.events.filter((e) => e.worker === 'unknown').length),
        fired,
        wonTotal: fr.reduce((a, r) => a + r.backupsWon, 0),
        frozenBeforeTheEnd: fr.map((r) => r.frozenAtMs !== null),
      },
      interference: 0,
    });
    o.record({
      ...common,
      id: `stragglers.${v}.duplicatedMB`,
      label: `  ${v === 'frozen.on' ? 'frozen, backups on' : 'frozen, --no-backup-tasks'}: work duplicated by backups per run`,
      runs: fr.map((r) => r.duplicatedBytes / 1e6),
      unit: 'MB',
      reps: fr.length,
      notes: `bytes of the backed-up tasks, from each backup event's input ("FILE bytes A-B"), over the events the feed lists (${withRange} of ${eventsListed} named a byte range; ${fired} fired); count x chunk size (${chunkBytes / 1024} KiB) would say ${MB(fired * chunkBytes)} MB`,
      extra: {
        fromInputsMB: fr.map((r) => MB(r.duplicatedBytes)),
        countTimesChunkMB: fr.map((r) => MB(r.backups * chunkBytes)),
        shareOfInput: fr.map((r) => round(r.duplicatedBytes / file.bytes, 4)),
      },
      interference: 0,
    });
  }
}
