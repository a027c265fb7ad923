/**
 * Jobs that share a server do not disturb each other's queues: a job that ends (here: cancelled
 * while its tasks wait) removes only its own tasks, and another job's tasks queued meanwhile are
 * still delivered once workers come. nats-server before 2.9.15 moved every consumer past a
 * filtered purge (nats-io/nats-server#3838), so withdrawing one job's tasks made the shared
 * worker consumer skip the other's, which then waited forever; Debian's nats-server, which the
 * tests run, is 2.9.10. Also: the filtered-purge version check itself.
 */
import test from 'ava';
import { filteredPurgeIsSafe, purgeSubjects } from '../shared/nats/purge.js';
import { connectToNats } from '../shared/nats/connection.js';
import { jetstreamLib } from '../shared/nats/client.js';
import { ensureTaskTopology } from '../shared/nats/topology.js';
import { SHUFFLE_STREAM, jobShuffleSubjects, shuffleSubject } from '../shared/subjects.js';
import { waitFor } from './helpers/watch.js';
import { cleanEnv, collect, spawnTally, startTestServer, startWorkers, type TestServer, type WorkerFleet } from './helpers/tally.js';

let server: TestServer;
let fleet: WorkerFleet | undefined;
test.before(async () => {
  server = await startTestServer();
});
test.after.always(async () => {
  await fleet?.stop();
  await server?.stop();
});

test("a job cancelled while its tasks wait leaves another job's queued tasks to the workers that come", async (t) => {
  const env = cleanEnv();
  const start = (args: string[]) => {
    const child = spawnTally([...args, '--format', 'json', '--server', server.url], { env });
    const out = { stderr: '', child, done: collect(child) };
    child.stderr!.on('data', (d: Buffer | string) => (out.stderr += String(d)));
    return out;
  };
  // No worker yet: both jobs publish their tasks and wait.
  const kept = start(['sum', '1', '1000', '--tasks', '20']);
  const cancelled = start(['sum', '1', '2000', '--tasks', '20']);
  await waitFor(() => /waiting for workers/.test(kept.stderr) && /waiting for workers/.test(cancelled.stderr), 'both jobs to wait for workers');
  cancelled.child.kill('SIGINT');
  const gone = await cancelled.done;
  t.is(gone.code, 130, gone.stderr);
  fleet = startWorkers(server.url, 2, env);
  const run = await kept.done;
  t.is(run.code, 0, run.stderr);
  t.is(JSON.parse(run.stdout).sum, '500500');
});

test('filtered purges are trusted from nats-server 2.9.15 on', (t) => {
  for (const version of ['2.9.10', '2.9.14', '2.8.4', '1.4.0', undefined, 'nonsense']) t.false(filteredPurgeIsSafe(version), String(version));
  for (const version of ['2.9.15', '2.9.25', '2.10.0', '2.11.3-beta', 'v2.12.1', '3.0.0']) t.true(filteredPurgeIsSafe(version), version);
});

test("one job's map outputs removed on this server (2.9.10: listed by a headers-only consumer, deleted one by one) leave another job's messages and its reader where they were", async (t) => {
  const nc = await connectToNats({ servers: [server.url], name: 'test-purge' });
  t.teardown(() => nc.close());
  const { jetstream, jetstreamManager, AckPolicy, DeliverPolicy } = jetstreamLib();
  const jsm = await jetstreamManager(nc);
  await ensureTaskTopology(jsm);
  const js = jetstream(nc);
  const body = new Uint8Array(100_000).fill(0x61);
  for (let task = 0; task < 6; task++) {
    for (const job of ['purged-job', 'kept-job']) for (let partition = 0; partition < 2; partition++) await js.publish(shuffleSubject(job, partition, task), body);
  }
  // The kept job's reader has taken 5 of its 12 messages when the other job is cleaned up.
  await jsm.consumers.add(SHUFFLE_STREAM, { name: 'kept-reader', filter_subject: jobShuffleSubjects('kept-job'), ack_policy: AckPolicy.Explicit, deliver_policy: DeliverPolicy.All });
  const reader = await js.consumers.get(SHUFFLE_STREAM, 'kept-reader');
  for (let i = 0; i < 5; i++) (await reader.next({ expires: 2_000 }))!.ack();
  t.false(filteredPurgeIsSafe(nc.info?.version), `the test server ${nc.info?.version} is one whose filtered purge is unsafe`);
  await purgeSubjects(jsm, SHUFFLE_STREAM, jobShuffleSubjects('purged-job'), nc.info?.version);
  const subjectsOf = async (job: string) => Object.values((await jsm.streams.info(SHUFFLE_STREAM, { subjects_filter: jobShuffleSubjects(job) })).state.subjects ?? {}).reduce((a, b) => a + b, 0);
  t.is(await subjectsOf('purged-job'), 0);
  t.is(await subjectsOf('kept-job'), 12);
  const info = await jsm.consumers.info(SHUFFLE_STREAM, 'kept-reader');
  t.is(info.num_pending, 7, 'the kept job\'s reader still has its 7 unread messages');
  t.deepEqual((await jsm.consumers.list(SHUFFLE_STREAM).next()).map((c) => c.name), ['kept-reader'], 'the listing consumer is gone');
});
