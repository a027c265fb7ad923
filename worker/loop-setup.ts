/**
 * A TaskLoop on a connection with what it needs around it: where its partials, shares and
 * parts go, how reduce tasks read big shares and obj:// inputs, and the subscriptions that tell
 * it a job ended or a task's other copy finished. Worker processes run one (process-main.ts); so does the
 * embedded coordinator while its worker processes start (coordinator/embedded/stand-in.ts).
 */
import type { NatsConnection } from '@nats-io/transport-node';
import type { ObjectStore } from '@nats-io/obj';
import { PartialsWriter, inlineLimitFor } from '../shared/nats/partials.js';
import { jetstreamLib, objLib } from '../shared/nats/client.js';
import { JOB_ENDED_SUBJECTS, PARTIALS_BUCKET, RESULTS_BUCKET, SUPERSEDED_SUBJECTS, isJobId } from '../shared/subjects.js';
import type { Logger } from '../shared/log.js';
import { setObjectConnection } from '../shared/text/object-input.js';
import { TaskLoop, type TaskLoopOptions } from './task-loop.js';

/** A task loop and what feeds it, which `close()` lets go of (the connection stays open). */
export interface TaskLoopSetup {
  loop: TaskLoop;
  close(): void;
}

/** Sets up a TaskLoop on `nc` (not started: call its `run`), with `options`' reduce limit, if any. */
export function taskLoopOn(nc: NatsConnection, logger: Logger, options: Pick<TaskLoopOptions, 'reduceKeysLimit' | 'onReduceGivenBack'> = {}): TaskLoopSetup {
  // Tasks over obj:// inputs read their chunks through this connection.
  setObjectConnection(nc);
  const maxPayload = nc.info?.max_payload ?? 1024 * 1024;
  const { jetstream } = jetstreamLib();
  const js = jetstream(nc);
  const partials = new PartialsWriter(js, PARTIALS_BUCKET, maxPayload);
  // Reduce tasks: big shares are read from the partials bucket, parts stored (blind) beside
  // the jobs' results.
  let partialsReader: Promise<ObjectStore> | undefined;
  const openPartials = () => (partialsReader ??= Promise.resolve().then(() => new (objLib().Objm)(nc).open(PARTIALS_BUCKET)));
  const parts = new PartialsWriter(js, RESULTS_BUCKET, maxPayload);
  const loop = new TaskLoop({ nc, js, partials, partialsReader: openPartials, parts, inlineLimit: inlineLimitFor(maxPayload), logger, ...options });
  const ended = nc.subscribe(JOB_ENDED_SUBJECTS, {
    callback: (error, message) => {
      if (error) return;
      const job = message.subject.split('.').pop()!;
      if (isJobId(job)) loop.jobEnded(job);
    },
  });
  const superseded = nc.subscribe(SUPERSEDED_SUBJECTS, {
    callback: (error, message) => {
      if (error) return;
      const job = message.subject.split('.').pop()!;
      let first: unknown;
      try {
        first = message.json<{ first?: unknown }>().first;
      } catch {
        return;
      }
      if (isJobId(job) && Number.isSafeInteger(first)) loop.superseded(job, first as number);
    },
  });
  return {
    loop,
    close: () => {
      ended.unsubscribe();
      superseded.unsubscribe();
      setObjectConnection(null);
    },
  };
}
