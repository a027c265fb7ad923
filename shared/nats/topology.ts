/**
 * The JetStream resources tally needs, created on first use by whichever side arrives first
 * (coordinator or worker), so a fresh server needs no set-up step.
 *
 * With least privilege (config/nats/secure/, docs/SECURITY.md) only the coordinator role (or an
 * administrator) may create them: a worker or reader that may not even look at a stream skips
 * it and binds to what exists; one that finds it missing and may not create it fails with
 * "permission denied publishing to $JS.API.STREAM.CREATE.…".
 */
import type { JetStreamManager, StreamConfig } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import type { KV } from '@nats-io/kv';
import type { ObjectStore } from '@nats-io/obj';
import { isAlreadyInUse, isNotFound, isStreamNotReady, isSubjectOverlap, permissionViolation } from './errors.js';
import { jetstreamLib, kvLib, objLib } from './client.js';
import {
  JOBS_BUCKET,
  PARTIALS_BUCKET,
  RESULTS_BUCKET,
  RESULT_STREAM,
  RESULT_SUBJECTS,
  SHUFFLE_STREAM,
  SHUFFLE_SUBJECTS,
  TASK_STREAM,
  TASK_SUBJECTS,
  WORKER_CONSUMER,
  objectStreamName,
} from '../subjects.js';
import { setting } from '../settings.js';

const { AckPolicy, DiscardPolicy, RetentionPolicy, StorageType } = jetstreamLib();

const SECOND_NS = 1_000_000_000;
const DAY_MS = 24 * 60 * 60 * 1000;

/**
 * Delivery settings of the shared worker consumer; workers and the coordinator read them. The
 * consumer is created once with these values by whichever process arrives first.
 */
export const DELIVERY = {
  /**
   * A task not acked within this time is redelivered to another worker (TALLY_ACK_WAIT_MS: the
   * fault tests shorten it so that a killed worker's task comes back in seconds).
   */
  ackWaitMs: setting('TALLY_ACK_WAIT_MS'),
  /** After this many deliveries a task is poison: the job fails naming its input. */
  maxDeliver: 5,
  /** Delay before a stopping worker's task goes back to the queue (not a failure). */
  handBackDelayMs: 1_000,
  /** First delay before a failed task is retried; it doubles with each failed delivery. */
  retryBaseMs: 1_000,
  /** The longest delay before a retry. */
  retryMaxMs: 16_000,
} as const;

/**
 * How long a task whose delivery number `deliveries` failed waits before the next delivery:
 * 1 s, 2 s, 4 s, 8 s (doubling, at most DELIVERY.retryMaxMs), so a failure that lasts a while
 * (a file being rewritten, a server restarting) is not burned through in a second, while a
 * one-off failure costs a second.
 */
export function retryDelayMs(deliveries: number): number {
  return Math.min(DELIVERY.retryMaxMs, DELIVERY.retryBaseMs * 2 ** Math.max(0, deliveries - 1));
}

/** How long job records and results are kept unless told otherwise: 7 days. */
export const DEFAULT_RETENTION_MS = 7 * DAY_MS;

export interface TopologyOptions {
  /** Stream and bucket replicas: 1 on a single server, 3 on a 3-node cluster. Default 1. */
  replicas?: number;
  /** How long job records and final results live. Default 7 days. */
  retentionMs?: number;
}

/** True when the server refused a subject to this user (a permissions violation). */
export function isPermissionDenied(error: unknown): boolean {
  return permissionViolation(error) !== undefined;
}

/**
 * Runs `create`, which looks before it creates, a second time when the server refused the
 * creation because the stream's subjects overlap an existing stream's. nats-server 2.9 checks a
 * new stream's name and its subjects in two steps, so of two processes creating the same stream
 * at one moment (a fresh server: workers and commands starting together) the second can be told
 * that its subjects overlap the very stream it asked for; looking again finds that stream. A real
 * overlap (someone else's stream on tally's subjects) fails the second time too, and is reported.
 */
export async function createOrFind<T>(create: () => Promise<T>): Promise<T> {
  try {
    return await create();
  } catch (error) {
    if (!isSubjectOverlap(error)) throw error;
    return create();
  }
}

function ensureStream(jsm: JetStreamManager, config: Partial<StreamConfig> & { name: string }): Promise<void> {
  return createOrFind(async () => {
    try {
      await jsm.streams.info(config.name);
      return;
    } catch (error) {
      // Not allowed to look: a least-privilege user; whoever may look also creates it.
      if (isPermissionDenied(error)) return;
      if (!isNotFound(error)) throw error;
    }
    try {
      await jsm.streams.add(config);
    } catch (error) {
      // Another process created it between our look and our add: fine.
      if (!isAlreadyInUse(error)) throw error;
    }
  });
}

/**
 * Ensures the task and result streams and the shared worker consumer exist. Idempotent and
 * safe to run concurrently from many processes.
 */
export async function ensureTaskTopology(jsm: JetStreamManager, options: TopologyOptions = {}): Promise<void> {
  const replicas = options.replicas ?? 1;
  // The streams are independent: looked at (and created) in parallel.
  await Promise.all([ensureTaskStream(jsm, replicas), ensureResultStream(jsm, replicas), ensureShuffleStream(jsm, replicas)]);
}

/** The work-queue stream of tasks and the one durable consumer all workers share. */
async function ensureTaskStream(jsm: JetStreamManager, replicas: number): Promise<void> {
  // Where the consumer exists, so does its stream: one look instead of two on every start.
  let mayLook = true;
  try {
    await jsm.consumers.info(TASK_STREAM, WORKER_CONSUMER);
    return;
  } catch (error) {
    // Not allowed to look at the consumer: the stream is still looked at (and created) as
    // before; the consumer is left to whoever may.
    if (isPermissionDenied(error)) mayLook = false;
    else if (!isNotFound(error)) throw error;
  }
  await ensureStream(jsm, {
    name: TASK_STREAM,
    subjects: [TASK_SUBJECTS],
    retention: RetentionPolicy.Workqueue,
    storage: StorageType.File,
    num_replicas: replicas,
    duplicate_window: 120 * SECOND_NS,
    discard: DiscardPolicy.Old,
  });
  if (mayLook) await addWorkerConsumer(jsm, replicas);
}

async function ensureResultStream(jsm: JetStreamManager, replicas: number): Promise<void> {
  await ensureStream(jsm, {
    name: RESULT_STREAM,
    subjects: [RESULT_SUBJECTS],
    retention: RetentionPolicy.Limits,
    storage: StorageType.File,
    num_replicas: replicas,
    duplicate_window: 120 * SECOND_NS,
    // Results of a finished job are purged by its coordinator; this only bounds abandoned ones.
    max_age: DEFAULT_RETENTION_MS * 1_000_000,
  });
}

async function ensureShuffleStream(jsm: JetStreamManager, replicas: number): Promise<void> {
  await ensureStream(jsm, {
    name: SHUFFLE_STREAM,
    subjects: [SHUFFLE_SUBJECTS],
    retention: RetentionPolicy.Limits,
    storage: StorageType.File,
    num_replicas: replicas,
    duplicate_window: 120 * SECOND_NS,
    // Purged by the job's coordinator when the job ends; this only bounds abandoned jobs'.
    max_age: DEFAULT_RETENTION_MS * 1_000_000,
  });
}

/**
 * How often the shared worker consumer's creation is tried while its stream is still being set
 * up by another process (see `isStreamNotReady`), and the pause before the second try, doubling.
 * Setting up a new stream's store takes milliseconds; 5 tries wait 20 + 40 + 80 + 160 ms.
 */
const CONSUMER_CREATE = { attempts: 5, firstPauseMs: 20 } as const;

/** Creates the shared worker consumer, found missing a moment ago. */
async function addWorkerConsumer(jsm: JetStreamManager, replicas: number): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    try {
      await jsm.consumers.add(TASK_STREAM, {
        durable_name: WORKER_CONSUMER,
        ack_policy: AckPolicy.Explicit,
        ack_wait: DELIVERY.ackWaitMs * 1_000_000,
        max_deliver: DELIVERY.maxDeliver,
        max_ack_pending: -1,
        num_replicas: replicas,
      });
      return;
    } catch (error) {
      // Another process created it meanwhile: fine.
      if (isAlreadyInUse(error)) return;
      // Another process created the stream a moment ago and the server is still setting it up.
      if (!isStreamNotReady(error) || attempt === CONSUMER_CREATE.attempts) throw error;
      await new Promise((resolve) => setTimeout(resolve, CONSUMER_CREATE.firstPauseMs * 2 ** (attempt - 1)));
    }
  }
}

/** Why a worker cannot start yet on a server where tally's streams were never created. */
export const MISSING_TOPOLOGY =
  "tally's task streams do not exist yet and this user may not create them: run a job with coordinator credentials (or create them as an administrator, see docs/SECURITY.md)";

/**
 * A worker's start: binds to the shared consumer when it exists (looking at nothing else, so
 * a least-privilege worker raises no permission errors), else creates tally's task streams and
 * consumer when this user may; 'missing' when it may not (the worker role: wait for a
 * coordinator or an administrator to create them).
 */
export async function bindWorkerTopology(jsm: JetStreamManager, options: TopologyOptions & { create?: boolean } = {}): Promise<'bound' | 'created' | 'missing'> {
  try {
    await jsm.consumers.info(TASK_STREAM, WORKER_CONSUMER);
    return 'bound';
  } catch (error) {
    if (isPermissionDenied(error) || !isNotFound(error)) throw error;
  }
  if (options.create === false) return 'missing';
  try {
    await ensureTaskTopology(jsm, options);
  } catch (error) {
    // Missing, and this user may not create it: a coordinator (or an administrator) will.
    if (isPermissionDenied(error)) return 'missing';
    throw error;
  }
  return 'created';
}

/** The KV bucket of job records, created when missing. */
export async function openJobsBucket(nc: NatsConnection, options: TopologyOptions = {}): Promise<KV> {
  // Loaded when needed: a worker process never opens a bucket on a running system.
  const { Kvm } = kvLib();
  return createOrFind(() =>
    new Kvm(nc).create(JOBS_BUCKET, {
      history: 1,
      replicas: options.replicas ?? 1,
      ttl: options.retentionMs ?? DEFAULT_RETENTION_MS,
      storage: StorageType.File,
    }),
  );
}

/** The Object Store bucket of final results, created when missing. */
export async function openResultsStore(nc: NatsConnection, options: TopologyOptions = {}): Promise<ObjectStore> {
  const { Objm } = objLib();
  return createOrFind(() =>
    new Objm(nc).create(RESULTS_BUCKET, {
      replicas: options.replicas ?? 1,
      ttl: (options.retentionMs ?? DEFAULT_RETENTION_MS) * 1_000_000,
      storage: StorageType.File,
    }),
  );
}

/** The Object Store bucket of oversized partial results, created when missing. */
export async function openPartialsStore(nc: NatsConnection, options: TopologyOptions = {}): Promise<ObjectStore> {
  const { Objm } = objLib();
  return createOrFind(() =>
    new Objm(nc).create(PARTIALS_BUCKET, {
      replicas: options.replicas ?? 1,
      ttl: DAY_MS * 1_000_000,
      storage: StorageType.File,
    }),
  );
}

/** Replicas to use on this server: 3 when it is part of a cluster of 3 or more, else 1. */
export function replicasFor(nc: NatsConnection): number {
  const fromEnv = setting('TALLY_REPLICAS');
  if (fromEnv !== undefined) return fromEnv;
  const info = nc.info;
  // connect_urls lists every node's client URL, this one's included (nats-server 2.9.10).
  const peers = Math.max(info?.connect_urls?.length ?? 1, 1);
  return info?.cluster && peers >= 3 ? 3 : 1;
}

/**
 * `store` with a `list()` that asks the server first whether the bucket holds anything at all,
 * and returns [] without more when it does not: the usual case, since partials are stored only
 * when larger than a message. The library's `list()` creates a consumer each time, which
 * nats-server 2.9 keeps on disk until it has been idle for seconds; an embedded server stopped
 * right after its job never gets there, and these piled up with every job, slowing every later
 * start and stop of the server (see `sweepIdleListConsumers`).
 */
export function withQuickList(store: ObjectStore, jsm: JetStreamManager, bucket: string): ObjectStore {
  const quick = Object.create(store) as ObjectStore;
  quick.list = async () => {
    const info = await jsm.streams.info(objectStreamName(bucket));
    return info.state.messages === 0 ? [] : store.list();
  };
  return quick;
}

/**
 * Deletes the consumers that `list()` calls of an Object Store left behind on `bucket` and
 * that nobody reads any more (see `withQuickList`); the embedded default's owner runs this
 * before stopping its server. Best effort: returns how many were deleted.
 */
export async function sweepIdleListConsumers(jsm: JetStreamManager, bucket: string): Promise<number> {
  const stream = objectStreamName(bucket);
  const info = await jsm.streams.info(stream);
  if (info.state.consumer_count === 0) return 0;
  const idle: string[] = [];
  for await (const consumer of jsm.consumers.list(stream)) {
    // Ephemeral push consumers nobody is subscribed to; a durable one would have its own name.
    if (consumer.config.durable_name === undefined && consumer.config.deliver_subject && !consumer.push_bound) idle.push(consumer.name);
  }
  await Promise.all(idle.map((name) => jsm.consumers.delete(stream, name).catch(() => false)));
  return idle.length;
}
