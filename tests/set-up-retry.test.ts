/**
 * Setting up tally's streams and buckets outlives a request the server never answers: on the
 * first use of a brand-new cluster on a loaded machine, creating a replicated stream can take
 * longer than the 5 s JetStream API timeout. A proxy swallows the first create request of one
 * stream; the worker and the coordinator retry it (saying so on stderr) and the job's result
 * is Gauss's.
 */
import test, { type ExecutionContext } from 'ava';
import { runTally, startTestServer, startWorkers, type TestServer } from './helpers/tally.js';
import { startLossyProxy, type LossyProxy } from './helpers/lossy-proxy.js';

/** A fresh server and a proxy to it that swallows the first create request of `stream`; both stop after the test. */
async function serverBehindProxy(t: ExecutionContext, stream: string): Promise<{ server: TestServer; proxy: LossyProxy }> {
  const server = await startTestServer();
  t.teardown(() => server.stop());
  const { hostname, port } = new URL(server.url);
  const proxy = await startLossyProxy({ target: { host: hostname, port: Number(port) }, drop: new RegExp(`^\\$JS\\.API\\.STREAM\\.CREATE\\.${stream}$`), times: 1 });
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
