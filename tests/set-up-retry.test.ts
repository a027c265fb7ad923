/**
 * Setting up tally's streams and buckets outlives a request the server never answers: on the
 * first use of a brand-new cluster on a loaded machine, creating a replicated stream can take
 * longer than the 5 s JetStream API timeout. A proxy swallows the first create request of one
 * stream; the worker and the coordinator retry it (saying so on stderr) and the job's result
 * is Gauss's. And processes that create tally's streams and buckets at the same moment on a fresh
 * server all succeed: nats-server 2.9 can tell the loser of such a race that its subjects overlap
 * an existing stream (the very one it asked for).
 */
import test, { type ExecutionContext } from 'ava';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { jetstreamManager } from '@nats-io/jetstream';
import { ensureTaskTopology, openJobsBucket, openPartialsStore, openResultsStore } from '../shared/nats/topology.js';
import { isSubjectOverlap } from '../shared/nats/errors.js';
import { TASK_STREAM, TASK_SUBJECTS, WORKER_CONSUMER } from '../shared/subjects.js';
import { runTally, startTestServer, startWorkers, type TestServer } from './helpers/tally.js';
import { startLossyProxy, type LossyProxy } from './helpers/lossy-proxy.js';

/** A fresh server and a proxy to it that swallows the first create request of `stream`; both stop after the test. */
function serverBehindProxy(t: ExecutionContext, stream: string): Promise<{ server: TestServer; proxy: LossyProxy }> {
  return serverBehindProxyDropping(t, { drop: new RegExp(`^\\$JS\\.API\\.STREAM\\.CREATE\\.${stream}$`), times: 1 });
}

/** A fresh server and a proxy to it that swallows (or answers itself) the requests `drop` matches; both stop after the test. */
async function serverBehindProxyDropping(t: ExecutionContext, options: { drop: RegExp; times: number; answer?: string }): Promise<{ server: TestServer; proxy: LossyProxy }> {
  const server = await startTestServer();
  t.teardown(() => server.stop());
  const { hostname, port } = new URL(server.url);
  const proxy = await startLossyProxy({ target: { host: hostname, port: Number(port) }, ...options });
  t.teardown(() => proxy.close());
  return { server, proxy };
}

const gauss = (n: number) => String((n * (n + 1)) / 2);

test('a worker whose first stream-create request goes unanswered retries it and then works', async (t) => {
  const { server, proxy } = await serverBehindProxy(t, 'TALLY_TASKS');
  const fleet = startWorkers(proxy.url, 1);
  t.teardown(() => fleet.stop().then(() => undefined));
  // Until the worker has created the streams itself, the job would create them: wait for it.
  for (let i = 0; i < 200 && proxy.dropped.length === 0 && fleet.child.exitCode === null; i++) await new Promise((r) => setTimeout(r, 50));
  t.deepEqual(proxy.dropped, ['$JS.API.STREAM.CREATE.TALLY_TASKS']);
  const run = await runTally(['sum', '1', '1000', '--tasks', '4', '--format', 'json', '--server', server.url], { timeoutMs: 60_000 });
  t.is(run.code, 0, run.stderr);
  t.is(JSON.parse(run.stdout).sum, gauss(1000));
  t.is(fleet.child.exitCode, null, 'the worker is still running');
  const workerLog = (await fleet.stop()).stderr;
  t.regex(workerLog, /setting up tally's task streams failed; retrying/);
});

test('a coordinator whose first bucket-create request goes unanswered retries it and the job completes', async (t) => {
  const { server, proxy } = await serverBehindProxy(t, 'KV_tally-jobs');
  // Workers connect directly and create the task streams; only the coordinator creates the job records bucket.
  const fleet = startWorkers(server.url, 1);
  t.teardown(() => fleet.stop().then(() => undefined));
  const run = await runTally(['sum', '1', '1000', '--tasks', '4', '--format', 'json', '--server', proxy.url], { timeoutMs: 60_000 });
  t.deepEqual(proxy.dropped, ['$JS.API.STREAM.CREATE.KV_tally-jobs']);
  t.is(run.code, 0, run.stderr);
  t.is(JSON.parse(run.stdout).sum, gauss(1000));
  t.regex(run.stderr, /setting up the job records bucket failed; retrying/);
});

test('a worker consumer refused while its stream is still being set up ("invalid stream", as nats-server 2.9 says in that moment) is created on a later try', async (t) => {
  // What nats-server 2.9.10 answers a consumer's creation between listing a new stream and
  // opening its store (consumer.go: JSConsumerCreateErrF, whose reason is "invalid stream").
  const invalidStream = JSON.stringify({ type: 'io.nats.jetstream.api.v1.consumer_create_response', error: { code: 500, err_code: 10012, description: 'invalid stream' } });
  const { server, proxy } = await serverBehindProxyDropping(t, { drop: /^\$JS\.API\.CONSUMER\.(DURABLE\.)?CREATE\.TALLY_TASKS\b/, times: 3, answer: invalidStream });
  const nc = await connect({ servers: proxy.url });
  t.teardown(() => nc.close());
  await ensureTaskTopology(await jetstreamManager(nc));
  t.is(proxy.dropped.length, 3, 'three creations were refused');
  // The consumer exists on the server, with tally's delivery settings.
  const direct = await connect({ servers: server.url });
  t.teardown(() => direct.close());
  const info = await (await jetstreamManager(direct)).consumers.info(TASK_STREAM, WORKER_CONSUMER);
  t.is(info.config.ack_policy, 'explicit');

  // Refused more often than the pauses allow for (on a second fresh server): the server's reason, not a hang.
  const { proxy: stubborn } = await serverBehindProxyDropping(t, { drop: /^\$JS\.API\.CONSUMER\.(DURABLE\.)?CREATE\.TALLY_TASKS\b/, times: 100, answer: invalidStream });
  const nc2 = await connect({ servers: stubborn.url });
  t.teardown(() => nc2.close());
  const error = await t.throwsAsync(ensureTaskTopology(await jetstreamManager(nc2)));
  t.regex(String(error), /invalid stream/);
  t.is(stubborn.dropped.length, 5, 'five tries');
});

test("processes creating tally's streams and buckets at the same moment on a fresh server all succeed; a real overlap is still reported", async (t) => {
  const server = await startTestServer();
  t.teardown(() => server.stop());
  // Eight clients, as eight processes would be: the server handles each connection's requests
  // on its own, so their creations race there.
  const clients: NatsConnection[] = await Promise.all(Array.from({ length: 8 }, () => connect({ servers: server.url })));
  t.teardown(() => Promise.all(clients.map((nc) => nc.close())).then(() => undefined));
  const managers = await Promise.all(clients.map((nc) => jetstreamManager(nc)));
  const [admin] = managers;
  const expected = ['KV_tally-jobs', 'OBJ_tally-partials', 'OBJ_tally-results', 'TALLY_RESULTS', 'TALLY_SHUFFLE', 'TALLY_TASKS'];
  const failures: string[] = [];
  // A round's losers were told "subjects overlap" about once in fifty creations of a stream
  // here, so 60 rounds of six streams each see several races.
  for (let round = 0; round < 60; round++) {
    for (const name of await admin!.streams.names().next()) await admin!.streams.delete(name);
    const made = await Promise.allSettled(
      clients.flatMap((nc, i) => [ensureTaskTopology(managers[i]!), openJobsBucket(nc), openResultsStore(nc), openPartialsStore(nc)]),
    );
    for (const outcome of made) if (outcome.status === 'rejected') failures.push(`round ${round}: ${String(outcome.reason)}`);
    t.deepEqual((await admin!.streams.names().next()).sort(), expected, `round ${round}`);
  }
  t.deepEqual(failures, []);

  // Someone else's stream on tally's task subjects: the overlap is real, and said.
  for (const name of await admin!.streams.names().next()) await admin!.streams.delete(name);
  await admin!.streams.add({ name: 'SOMEONE_ELSES', subjects: [TASK_SUBJECTS] });
  const error = await t.throwsAsync(ensureTaskTopology(admin!));
  t.true(isSubjectOverlap(error), String(error));
});
