/**
 * Jobs that share a server do not disturb each other's queues: a job that ends (here: cancelled
 * while its tasks wait) removes only its own tasks, and another job's tasks queued meanwhile are
 * still delivered once workers come. nats-server before 2.9.15 moved every consumer past a
 * filtered purge (nats-io/nats-server#3838), so withdrawing one job's tasks made the shared
 * worker consumer skip the other's, which then waited forever; Debian's nats-server, which the
 * tests run, is 2.9.10. Also: the filtered-purge version check itself.
 */
import test from 'ava';
import { filteredPurgeIsSafe } from '../shared/nats/purge.js';
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
