/**
 * A reduce task on a worker: partition p of a job is read back from the shuffle stream (every
 * map task's share, kept there until the job ends), each map task's share folded exactly once,
 * whatever duplicates, redeliveries or differently batched attempts the stream holds; then the
 * kind sorts the partition into a part, which is stored beside the job's result, and its summary
 * goes to the coordinator as the task's result. A reducer that dies leaves its task to be
 * delivered again; the next one reads the same shares and stores the same part.
 */
import type { JetStreamClient, JsMsg } from '@nats-io/jetstream';
import { jetstreamLib } from '../shared/nats/client.js';
import type { ObjectStore } from '@nats-io/obj';
import type { AnyJobKind } from '../shared/kinds/kind.js';
import type { Json } from '../shared/json.js';
import { decodeShuffle, type ReduceOrder } from '../shared/nats/envelope.js';
import { SHUFFLE_STREAM, partObjectName, partitionShuffleSubjects, reduceConsumerName } from '../shared/subjects.js';
import { TaskRejectedError } from '../shared/errors.js';
import type { Logger } from '../shared/log.js';
import type { ReducerProgress } from '../shared/job-feed.js';

/** What a reduce task needs besides the task itself. */
export interface ReduceContext {
  js: JetStreamClient;
  /** Where shares too big for a message wait (opened when first needed). */
  partials: () => Promise<ObjectStore>;
  /** Stores the part (written blind: see shared/nats/partials.ts). */
  storePart: (name: string, pieces: Iterable<Uint8Array>) => Promise<void>;
  logger: Logger;
  /** Renews the reduce task's lease; called while reading and before sorting. */
  working: () => void;
  /** Hears how far the reduce is, at most every PROGRESS_EVERY_MS and at each stage. */
  progress?: (progress: Omit<ReducerProgress, 'partition' | 'worker'>) => void;
  /**
   * The most distinct keys this reducer may hold (the embedded coordinator's stand-in, whose
   * memory is the coordinator's): past it the task is given up with PartitionTooBigError, for
   * a worker process to do. Unlimited when not given, or when the kind cannot tell (keysIn).
   */
  maxKeys?: number;
}

/** A reduce task given up by a reducer whose share of memory its partition outgrew (ReduceContext.maxKeys). */
export class PartitionTooBigError extends Error {
  constructor(
    readonly partition: number,
    readonly maxKeys: number,
  ) {
    super(`partition ${partition} holds more than ${maxKeys} distinct keys`);
  }
}

/**
 * Shares stop arriving for this long while some are missing: the reduce fails (and is tried
 * again). Every share was stored before its map task's result, and reduce tasks are sent only
 * once every map result is in, so a missing share means a stream lost while reading.
 */
const IDLE_MS = 15_000;
const WORKING_EVERY_MS = 2_000;
const PROGRESS_EVERY_MS = 1_000;

/**
 * Runs one reduce task; returns what the task's result carries to the coordinator: the stored
 * part's name and the kind's summary of it.
 */
export async function runReduceTask(kind: AnyJobKind, job: string, order: ReduceOrder, spec: unknown, context: ReduceContext): Promise<{ name: string; summary: Json }> {
  const reduce = kind.partitioned;
  if (!reduce) throw new TaskRejectedError(`job kind '${kind.name}' has no partitioned reduce`);
  let acc = reduce.initPartition(spec);
  const folded = new Uint8Array(order.tasks);
  let missing = order.tasks;
  // Skipped map tasks stored no shares; counted as folded, their shares are not awaited, and
  // one left by an earlier attempt is not folded either: the result excludes them everywhere.
  for (const task of order.skipped ?? []) {
    folded[task] = 1;
    missing--;
  }
  let lastProgress = 0;
  const progress = (stage: ReducerProgress['stage']) => {
    lastProgress = Date.now();
    context.progress?.({ folded: order.tasks - missing, total: order.tasks, stage });
  };
  progress('reading');
  let deleted: Promise<void> = Promise.resolve();
  if (missing > 0) {
    // A named consumer with the stream's replicas, not an ordered one: an ordered (ephemeral
    // R1) consumer whose node dies stalls for long (measured: no recovery within 100 s in 2
    // of 3 runs), and the reduce with it.
    // Not checked against the server: the worker's connection already uses JetStream.
    const jsm = await context.js.jetstreamManager(false);
    const { AckPolicy, DeliverPolicy } = jetstreamLib();
    const name = reduceConsumerName(job, order.partition);
    // A consumer left by an earlier attempt is deleted (its deliveries are spent); the stream
    // is looked at meanwhile: each round trip is a step of the job's serial tail.
    const [, stream] = await Promise.all([jsm.consumers.delete(SHUFFLE_STREAM, name).catch(() => undefined), jsm.streams.info(SHUFFLE_STREAM)]);
    const replicas = stream.config.num_replicas;
    const info = await jsm.consumers.add(SHUFFLE_STREAM, {
      name,
      filter_subject: partitionShuffleSubjects(job, order.partition),
      deliver_policy: DeliverPolicy.All,
      // Acked on arrival: without acks, shares delivered while this process was reconnecting
      // would count as delivered and never come again. Folding ignores repeats.
      ack_policy: AckPolicy.Explicit,
      ack_wait: 5_000_000_000,
      max_ack_pending: -1,
      inactive_threshold: 10 * 60 * 1e9,
      num_replicas: replicas,
    });
    // Made a moment ago: its info is the answer to that, not asked for again.
    const consumer = context.js.consumers.getConsumerFromInfo(info);
    const messages = await consumer.consume({ max_messages: 256, expires: 5_000, idle_heartbeat: 2_000 });
    let idle = setTimeout(() => void messages.stop(), IDLE_MS);
    let lastWorking = Date.now();
    try {
      for await (const message of messages) {
        message.ack();
        clearTimeout(idle);
        idle = setTimeout(() => void messages.stop(), IDLE_MS);
        for (const { task, share } of await sharesOf(message, job, order, context)) {
          if (task >= order.tasks || folded[task] === 1) continue;
          acc = reduce.foldPartition(acc, share, task);
          folded[task] = 1;
          missing--;
        }
        if (context.maxKeys !== undefined && reduce.keysIn && reduce.keysIn(acc) > context.maxKeys) throw new PartitionTooBigError(order.partition, context.maxKeys);
        if (Date.now() - lastProgress > PROGRESS_EVERY_MS) progress('reading');
        if (Date.now() - lastWorking > WORKING_EVERY_MS) {
          context.working();
          lastWorking = Date.now();
        }
        if (missing === 0) break;
      }
    } finally {
      clearTimeout(idle);
      await messages.close().catch(() => undefined);
      // Answered while the partition is sorted and stored; awaited before the task's result.
      deleted = jsm.consumers.delete(SHUFFLE_STREAM, name).then(
        () => undefined,
        () => undefined,
      );
    }
    if (missing > 0) {
      await deleted;
      throw new Error(`partition ${order.partition}: the shares of ${missing} map task(s) did not arrive within ${IDLE_MS / 1000} s`);
    }
  }
  context.working();
  progress('sorting');
  const { part, summary } = reduce.finishPartition(acc, spec);
  context.working();
  progress('storing');
  const name = partObjectName(job, order.partition);
  try {
    await context.storePart(name, part);
  } finally {
    await deleted;
  }
  return { name, summary };
}

/** The map tasks' shares one shuffle message carries (one task, or each task of a batch). */
async function sharesOf(message: JsMsg, job: string, order: ReduceOrder, context: ReduceContext): Promise<Array<{ task: number; share: Uint8Array }>> {
  const { header, body } = decodeShuffle(message.data);
  if (header.job !== job || header.partition !== order.partition) return [];
  const data = header.object ? await readObject(await context.partials(), header.object) : body;
  const count = header.count ?? 1;
  const sizes = header.sizes ?? [data.length];
  if (sizes.reduce((a, b) => a + b, 0) !== data.length) throw new Error(`shuffle message ${message.subject}: its sizes do not match its data`);
  const shares: Array<{ task: number; share: Uint8Array }> = [];
  let offset = 0;
  for (let i = 0; i < count; i++) {
    shares.push({ task: header.task + i, share: data.subarray(offset, offset + sizes[i]!) });
    offset += sizes[i]!;
  }
  return shares;
}

async function readObject(store: ObjectStore, name: string): Promise<Uint8Array> {
  const data = await store.getBlob(name);
  if (data === null) throw new Error(`shuffle object '${name}' is missing from the Object Store`);
  return data;
}
