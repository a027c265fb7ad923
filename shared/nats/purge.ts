/**
 * Removing one job's messages from a stream that other jobs share. A filtered purge is the
 * natural tool, but nats-server before 2.9.15 moved every consumer of the stream past the purge,
 * whatever its filter (nats-io/nats-server#3838): another job's queued tasks or unread results
 * were then skipped for good, and that job waited forever (seen with two embedded commands on
 * Debian's nats-server 2.9.10, one failing while the other ran). On such a server the job's
 * messages are deleted one by one instead, which leaves consumers alone.
 */
import type { JetStreamManager } from '@nats-io/jetstream';
import { randomBytes } from 'node:crypto';
import { jetstreamLib } from './client.js';
import { isNoMessage } from './errors.js';
import { TASK_STREAM } from '../subjects.js';

/** Null for a message that is not there any more; any other failure is rethrown. */
function gone(error: unknown): null {
  if (isNoMessage(error)) return null;
  throw error;
}

/** The first release with the fix of nats-io/nats-server#3838. */
const SAFE_FILTERED_PURGE: readonly number[] = [2, 9, 15];

/** True when `version` ("2.10.4", "2.9.10-beta") purges with a filter without moving other consumers. */
export function filteredPurgeIsSafe(version: string | undefined): boolean {
  const parts = /^v?(\d+)\.(\d+)\.(\d+)/.exec(version ?? '');
  if (!parts) return false;
  const have = parts.slice(1, 4).map(Number);
  for (let i = 0; i < 3; i++) if (have[i] !== SAFE_FILTERED_PURGE[i]) return have[i]! > SAFE_FILTERED_PURGE[i]!;
  return true;
}

/**
 * Removes every message of `stream` whose subject matches `filter`, without disturbing the
 * consumers of other subjects.
 * @param serverVersion the server's version (`nc.info.version`)
 */
export async function purgeSubjects(jsm: JetStreamManager, stream: string, filter: string, serverVersion: string | undefined): Promise<void> {
  if (filteredPurgeIsSafe(serverVersion)) {
    await jsm.streams.purge(stream, { filter });
    return;
  }
  // The task stream is a work queue: it refuses a second consumer over its subjects.
  const listed = stream === TASK_STREAM ? null : await sequencesOf(jsm, stream, filter).catch(() => null);
  if (listed) {
    await deleteSequences(jsm, stream, listed);
    return;
  }
  const info = await jsm.streams.info(stream, { subjects_filter: filter });
  // Subjects are independent of each other: several at a time, each a round trip or two (a job
  // of N tasks has N result subjects, and its coordinator exits only once they are gone).
  const subjects = Object.entries(info.state.subjects ?? {});
  const next = () => subjects.shift();
  const deleteSome = async (): Promise<void> => {
    for (let entry = next(); entry; entry = next()) await deleteSubject(jsm, stream, entry[0], entry[1]);
  };
  await Promise.all(Array.from({ length: Math.min(PURGE_CONCURRENCY, subjects.length) }, deleteSome));
}

/** Subjects deleted from at once by purgeSubjects on an old server (64: a 200 MB count's ~90 messages in 44 ms, 56 with 16). */
const PURGE_CONCURRENCY = 64;

/** Deletes the `count` messages of `subject` one by one, newest first. */
async function deleteSubject(jsm: JetStreamManager, stream: string, subject: string, count: number): Promise<void> {
  for (let i = 0; i < count; i++) {
    // A message may go meanwhile (a worker acks a task of a work queue): nothing left to do.
    const message = await jsm.streams.getMessage(stream, { last_by_subj: subject }).catch(gone);
    if (!message) break;
    await deleteOne(jsm, stream, message.seq);
  }
}

/** Deletes message `seq` of `stream`; one already gone is done. */
async function deleteOne(jsm: JetStreamManager, stream: string, seq: number): Promise<void> {
  await jsm.streams.deleteMessage(stream, seq, false).catch(async (error: unknown) => {
    if (isNoMessage(error)) return;
    // Whatever the server called it: if the message is not there any more, it is done.
    const still = await jsm.streams.getMessage(stream, { seq }).catch(() => undefined);
    if (still !== null) throw error;
  });
}

/** Messages a listing consumer is asked for at once. */
const LIST_BATCH = 10_000;

/**
 * The sequences of the messages of `stream` on `filter`, from a consumer of ours that delivers
 * headers only: read back one by one, a job's map outputs (100 KiB each) were sent whole only to
 * be thrown away (a 200 MB count's 50 messages: 45-70 ms against 13). Null when no such consumer
 * can be made (a role not allowed to): the caller reads the messages back instead.
 */
async function sequencesOf(jsm: JetStreamManager, stream: string, filter: string): Promise<number[] | null> {
  const { AckPolicy, DeliverPolicy } = jetstreamLib();
  // Named (a role's permissions name the consumers it may make), gone on its own if we die here.
  const name = `tally-purge-${randomBytes(6).toString('hex')}`;
  const info = await jsm.consumers.add(stream, { name, filter_subject: filter, headers_only: true, ack_policy: AckPolicy.None, deliver_policy: DeliverPolicy.All, mem_storage: true, num_replicas: 1, inactive_threshold: 60 * 1e9 });
  try {
    const sequences: number[] = [];
    // From the info in hand: asking the server for it again is a round trip (and a right) more.
    const consumer = jsm.jetstream().consumers.getConsumerFromInfo(info);
    for (let left = info.num_pending; left > 0; ) {
      const batch = await consumer.fetch({ max_messages: Math.min(left, LIST_BATCH), expires: 5_000 });
      let got = 0;
      for await (const message of batch) {
        sequences.push(message.seq);
        if (++got === Math.min(left, LIST_BATCH)) break;
      }
      if (got === 0) break; // deleted meanwhile (another clean-up of the job): nothing more to list
      left -= got;
    }
    return sequences;
  } finally {
    await jsm.consumers.delete(stream, name).catch(() => undefined);
  }
}

/** Deletes messages by sequence, PURGE_CONCURRENCY at a time. */
async function deleteSequences(jsm: JetStreamManager, stream: string, sequences: number[]): Promise<void> {
  const next = () => sequences.pop();
  const deleteSome = async (): Promise<void> => {
    for (let seq = next(); seq !== undefined; seq = next()) await deleteOne(jsm, stream, seq);
  };
  await Promise.all(Array.from({ length: Math.min(PURGE_CONCURRENCY, sequences.length) }, deleteSome));
}
