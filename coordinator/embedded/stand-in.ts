/**
 * The embedded coordinator's stand-in worker. A worker process needs a Node start and its
 * modules before it takes a task (100-250 ms on two cores, most of a small job's wall time),
 * while the coordinator's process is connected and idle by then. So the coordinator takes the
 * job's tasks itself, from the same consumer and through the same TaskLoop as a worker process
 * (the result goes through JetStream as any other), one pull at a time:
 *
 * - with `--workers N`, only until a worker process is ready: a job of a few small tasks is
 *   over before then, a big one is left to the workers;
 * - by default, for the whole job, in place of the worker process it saves (./fleet.ts). Its
 *   reduce tasks too, while their partition fits the WebAssembly table (2^18 words): one that
 *   outgrows it goes back to the queue, the stand-in stops, and a worker process is started in
 *   its place, so a partition of millions of words never grows in the coordinator's memory.
 *
 * A task it has taken runs on the coordinator's event loop to its end: a long one (a default
 * primes task takes up to ~1 s) holds the progress bar and Ctrl-C back until then.
 */
import type { NatsConnection } from '@nats-io/transport-node';
import type { Logger } from '../../shared/log.js';
import { describeError } from '../../shared/errors.js';
import { setFileReads, setUrlFetches } from '../../shared/kinds/file-reads.js';
import { WASM_SHARE_WORDS, releaseIdleScanners } from '../../shared/text/wasm-scanner.js';
import { taskLoopOn, type TaskLoopSetup } from '../../worker/loop-setup.js';
import type { Supervisor } from '../../worker/supervisor.js';
import { testHooks } from '../../worker/test-hooks.js';

/**
 * The most distinct words a reduce task of the stand-in holds: while a partition's table is
 * held in WebAssembly (~40 MiB at most), not once it would grow in the coordinator's heap.
 */
const STAND_IN_REDUCE_KEYS = WASM_SHARE_WORDS;

export class StandIn {
  private readonly running: Promise<void>;
  private ended: Promise<void> | undefined;

  /**
   * @param place the supervisor to start a worker process in the stand-in's place when it
   * gives way (null: it covers the worker processes' start only, and has no place to give)
   */
  private constructor(
    private readonly setup: TaskLoopSetup,
    private place: Supervisor | null,
    private readonly log: Logger,
  ) {
    this.running = setup.loop.runOnePullAtATime();
  }

  /**
   * Stops taking tasks (the one in hand is finished) and has the supervisor start a worker
   * process in its place: its reduce task outgrew the coordinator's share, or the coordinator
   * is busy carrying the job's input. Once; nothing when it maps only while the processes start.
   */
  giveWay(): void {
    const place = this.place;
    if (!place) return;
    this.place = null;
    this.log.info('the stand-in gives its core to a worker process');
    void this.stop({ jobOver: false });
    place.addProcess();
  }

  /**
   * Starts taking tasks on `nc` unless a worker process of `workers` is ready already and the
   * stand-in is not to map `throughout` (or a test armed hooks for the worker processes only);
   * without `throughout`, stops by itself once one is ready. Null when not started.
   */
  static start(nc: NatsConnection, workers: Supervisor, logger: Logger, options: { throughout?: boolean } = {}): StandIn | null {
    const throughout = options.throughout === true;
    if ((workers.anyReady && !throughout) || !testHooks.allowStandIn()) return null;
    // As an embedded worker process may: the same user's files and URLs.
    setFileReads(true);
    setUrlFetches(true);
    // The loop's limit calls back into the stand-in made with it (before the task goes back,
    // so that this loop does not take it again).
    const limits = throughout ? { reduceKeysLimit: testHooks.standInReduceKeys() ?? STAND_IN_REDUCE_KEYS, onReduceGivenBack: () => standIn.giveWay() } : {};
    const log = logger.child({ standIn: true });
    const standIn: StandIn = new StandIn(taskLoopOn(nc, log, limits), throughout ? workers : null, log);
    standIn.running.catch((error: unknown) => logger.warn({ err: describeError(error) }, 'the stand-in worker stopped'));
    if (!throughout) void workers.ready(1).then(() => standIn.stop({ jobOver: false }));
    return standIn;
  }

  /**
   * Stops pulling and resolves once the task in hand (if any) is done and its result stored.
   * In the middle of a job, a pull still open is left to end (a task that comes on it is
   * handled: ended otherwise, a task on its way would be lost until its ack wait); once the
   * job is over, it is ended (it could only bring another command's task on this server).
   */
  stop(options: { jobOver: boolean } = { jobOver: true }): Promise<void> {
    this.setup.loop.stop();
    if (!options.jobOver) return this.setup.loop.settled().then(releaseIdleScanners);
    this.ended ??= (async () => {
      this.setup.loop.abandonPull();
      await this.running.catch(() => undefined);
      this.setup.close();
      releaseIdleScanners();
    })();
    return this.ended;
  }
}
