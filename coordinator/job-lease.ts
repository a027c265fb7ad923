/**
 * One owner per job, enforced by the server. A coordinator holds its job's record at a known
 * revision and writes it only with a revision check; `tally resume` takes a job over by writing
 * the record with a new lease token. A coordinator that was cut off while that happened finds out
 * at its next write (or its next look at the record) and stops without touching the job, so a
 * resumed job's result can never be overwritten by the coordinator it replaced.
 */
import { randomBytes } from 'node:crypto';
import type { JobRecord, JobStore, StoredJobRecord } from './job-store.js';
import { JobTakenOverError } from './job-store.js';
import { UsageError } from '../shared/errors.js';

export class JobLease {
  /** The token this coordinator wrote into the record. */
  readonly token = randomBytes(9).toString('base64url');
  private revision = 0;
  /** Writes run one after another: each names the revision the previous one produced. */
  private chain: Promise<void> = Promise.resolve();
  /** The newest record waiting to be written by the chain, if any (progress writes coalesce). */
  private pending: JobRecord | null = null;
  private lostTo: JobTakenOverError | null = null;

  private constructor(private readonly store: JobStore) {}

  /**
   * Writes `record` as a new job's, or, with `resumed`, takes over a job from the record read
   * before (the take-over fails if anyone wrote the record since that read).
   * @throws JobTakenOverError when `resumed` is stale
   */
  static async take(store: JobStore, record: JobRecord, resumed?: StoredJobRecord): Promise<JobLease> {
    const lease = new JobLease(store);
    record.lease = lease.token;
    if (!resumed) {
      lease.revision = await store.create(record);
      return lease;
    }
    // The coordinator being replaced may still write progress (a --force take-over): take the
    // record from it at whatever revision it has reached, but never from a third coordinator
    // that took the job since the user decided to resume it.
    for (;;) {
      const now = await store.read(record.id);
      if (now === null) throw new JobTakenOverError(record.id, null);
      if (now.record.lease !== resumed.record.lease || now.record.coordinator !== resumed.record.coordinator) {
        throw new JobTakenOverError(record.id, now.record.coordinator);
      }
      if (now.record.status !== 'running') throw new UsageError(`job '${record.id}' became ${now.record.status} meanwhile; see tally result ${record.id}`);
      try {
        lease.revision = await store.update(record, now.revision);
        return lease;
      } catch (error) {
        if (!(error instanceof JobTakenOverError)) throw error;
      }
    }
  }

  /** Set once another coordinator holds the job (or its record was deleted). */
  get lost(): JobTakenOverError | null {
    return this.lostTo;
  }

  /**
   * Writes a copy of `record` after the writes already queued. Writes queued meanwhile are
   * coalesced: only the newest of them is sent.
   * @throws JobTakenOverError when the job is no longer ours (then, and from then on)
   */
  write(record: JobRecord): Promise<void> {
    if (this.lostTo) return Promise.reject(this.lostTo);
    const queued = this.pending !== null;
    this.pending = { ...record, progress: { ...record.progress }, lease: this.token };
    if (queued) return this.chain;
    this.chain = this.chain
      .catch(() => undefined)
      .then(async () => {
        if (this.lostTo) throw this.lostTo;
        const next = this.pending!;
        this.pending = null;
        try {
          this.revision = await this.store.update(next, this.revision);
        } catch (error) {
          if (error instanceof JobTakenOverError) this.lostTo = error;
          throw error;
        }
      });
    return this.chain;
  }

  /**
   * Reads the record and checks that it is still ours: a round trip to the server that also
   * tells the job the server is there.
   * @throws JobTakenOverError when it is not
   */
  async check(job: string): Promise<void> {
    if (this.lostTo) throw this.lostTo;
    const now = await this.store.read(job);
    if (now === null || now.record.lease !== this.token) {
      this.lostTo = new JobTakenOverError(job, now?.record.coordinator ?? null);
      throw this.lostTo;
    }
  }
}
