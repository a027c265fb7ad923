/**
 * Workers face whatever arrives on the task subjects. Malformed and oversized messages (fuzzed
 * with fast-check) are rejected with a log line; the worker never crashes and keeps working.
 * A supervisor whose terminal closes (SIGHUP) stops its processes as on SIGTERM.
 */
import test from 'ava';
import fc from 'fast-check';
import { connect } from '@nats-io/transport-node';
import { jetstream } from '@nats-io/jetstream';
import { decodeResult, encodeEnvelope } from '../shared/nats/envelope.js';
import { runTally, startTestServer, startWorkers, type TestServer, type WorkerFleet } from './helpers/tally.js';

let server: TestServer;
let workers: WorkerFleet;

test.before(async () => {
  server = await startTestServer();
  workers = startWorkers(server.url, 1);
  // Let the worker create the streams before we publish into them.
  for (let attempt = 0; ; attempt++) {
    const ready = await runTally(['workers', '--server', server.url, '--format', 'json']);
    if (ready.code === 0 && JSON.parse(ready.stdout).length === 1) break;
    if (attempt > 30) throw new Error(`worker did not come up: ${ready.stderr}`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
});

test.after.always(async () => {
  await workers?.stop();
  await server?.stop();
});

test.serial('fuzzed task messages are rejected and the worker keeps serving real jobs', async (t) => {
  const nc = await connect({ servers: server.url });
  t.teardown(() => nc.close());
  const js = jetstream(nc);
  const header = fc.record({
    v: fc.oneof(fc.constant(1), fc.integer()),
    job: fc.oneof(fc.constant('abc-123'), fc.string(), fc.constant('a.b'), fc.constant('*')),
    task: fc.oneof(fc.nat(), fc.integer(), fc.double(), fc.string()),
    kind: fc.constantFrom('count', 'sum', 'primes', 'factorial', 'nope', ''),
    input: fc.string(),
    spec: fc.anything(),
  });
  const payload = fc.oneof(
    fc.uint8Array({ maxLength: 256 }),
    fc.tuple(header, fc.uint8Array({ maxLength: 64 })).map(([h, body]) => encodeEnvelope(h as never, body)),
    // A header length field pointing far past the end of the message.
    fc.uint8Array({ minLength: 4, maxLength: 16 }).map((b) => Uint8Array.from([0xff, 0xff, 0xff, 0xff, ...b])),
  );
  let published = 0;
  await fc.assert(
    fc.asyncProperty(payload, fc.nat({ max: 20 }), async (data, task) => {
      await js.publish(`tally.task.abc-123.${task}`, data);
      published++;
    }),
    { numRuns: 150 },
  );
  // An oversized, well-formed count task: a spec far over the limits.
  await js.publish('tally.task.abc-123.999', encodeEnvelope({ v: 1, job: 'abc-123', task: 999, kind: 'count', input: 'x', spec: { tokenizer: 'unicode', maxWordBytes: 1e12 } } as never, new Uint8Array(10)));
  published++;

  // The worker is still alive and still computes correctly.
  const run = await runTally(['sum', '1', '1000', '--format', 'json', '--server', server.url]);
  t.is(run.code, 0, run.stderr);
  t.is(JSON.parse(run.stdout).sum, '500500');
  t.is(workers.child.exitCode, null, 'the supervisor is still running');
  // Refusals that were retried first (a map that threw) settle after their last delivery.
  let refused = 0;
  for (let attempt = 0; attempt < 30 && refused < published; attempt++) {
    const listed = JSON.parse((await runTally(['workers', '--server', server.url, '--format', 'json'])).stdout);
    t.is(listed.length, 1);
    refused = listed[0].tasksRejected + listed[0].tasksFailed;
    if (refused < published) await new Promise((resolve) => setTimeout(resolve, 1000));
  }
  t.is(refused, published, `every one of the ${published} bad messages was refused`);
});

test.serial("a task whose kind refuses its spec is answered with that refusal, never with a partial, and is not retried", async (t) => {
  const nc = await connect({ servers: server.url });
  t.teardown(() => nc.close());
  const job = 'abc-555';
  const results: Array<{ header: Record<string, unknown>; body: number }> = [];
  nc.subscribe(`tally.result.${job}.>`, {
    callback: (_error, message) => {
      const { header, body } = decodeResult(message.data);
      results.push({ header: header as never, body: body.length });
    },
  });
  await nc.flush();
  const before = JSON.parse((await runTally(['workers', '--server', server.url, '--format', 'json'])).stdout)[0];
  // A well-formed envelope of a known kind; only the spec is wrong (not an integer).
  await jetstream(nc).publish(`tally.task.${job}.3`, encodeEnvelope({ v: 1, job, task: 3, kind: 'sum', input: 'range 1..ten', spec: { from: '1', to: 'ten' } } as never, new Uint8Array(0)));
  for (let i = 0; i < 300 && results.length === 0; i++) await new Promise((resolve) => setTimeout(resolve, 50));
  t.is(results.length, 1, 'one answer');
  t.is(results[0]!.header.task, 3);
  t.regex(String(results[0]!.header.error), /decimal integer|integer/, 'the answer is the refusal, naming why');
  t.is(results[0]!.body, 0, 'no partial');
  let after = before;
  for (let i = 0; i < 100 && after.tasksRejected + after.tasksFailed === before.tasksRejected + before.tasksFailed; i++) {
    await new Promise((resolve) => setTimeout(resolve, 50));
    after = JSON.parse((await runTally(['workers', '--server', server.url, '--format', 'json'])).stdout)[0];
  }
  t.is(after.tasksRejected + after.tasksFailed - (before.tasksRejected + before.tasksFailed), 1, 'counted as refused by the worker');
  t.is(after.tasksDone, before.tasksDone, 'not counted as done');
});

test.serial('a task in a format no worker reads goes back for another worker, then fails its job with the reason', async (t) => {
  const nc = await connect({ servers: server.url });
  t.teardown(() => nc.close());
  const job = 'abc-777';
  const answered = new Promise<{ header: Record<string, unknown>; at: number }>((resolve) => {
    nc.subscribe(`tally.result.${job}.>`, { max: 1, callback: (_error, message) => resolve({ header: decodeResult(message.data).header as never, at: Date.now() }) });
  });
  await nc.flush();
  // What a later tally version might send: this worker reads version 1 only.
  const sentAt = Date.now();
  await jetstream(nc).publish(`tally.task.${job}.4`, encodeEnvelope({ v: 2, job, task: 4, kind: 'sum', input: 'numbers 1..9', spec: {} } as never, new Uint8Array(0)));
  const timeout = new Promise<never>((_resolve, reject) => setTimeout(() => reject(new Error('no result within 30 s: the task vanished')), 30_000).unref());
  const { header, at } = await Promise.race([answered, timeout]);
  t.is(header.task, 4);
  t.regex(String(header.error), /^no worker could read this task \(unsupported message version 2\); run the same tally version/);
  // Handed back (1 s apart) until its last delivery: at least 4 redeliveries before the answer.
  t.true(at - sentAt >= 4 * 1000, `answered after ${at - sentAt} ms`);
});

test.serial('SIGHUP (its terminal closed) stops `tally worker` as SIGTERM does: exit 0, every process gone', async (t) => {
  const fleet = startWorkers(server.url, 2, {}, ['--log-level', 'info']);
  const pids = () => [...fleet.stderr().matchAll(/"pid":(\d+),"role":"worker".*"msg":"worker ready"/g)].map((m) => Number(m[1]));
  for (let i = 0; i < 400 && pids().length < 2; i++) await new Promise((resolve) => setTimeout(resolve, 50));
  t.is(pids().length, 2, fleet.stderr());
  const exited = new Promise((resolve) => fleet.child.once('exit', resolve));
  fleet.child.kill('SIGHUP');
  await exited;
  // Gone by itself: stop() sends no SIGTERM now, only collects what it wrote.
  const run = await fleet.stop();
  t.is(run.code, 0, `${run.signal ?? ''} ${fleet.stderr().slice(-1000)}`);
  t.regex(fleet.stderr(), /"signal":"SIGHUP".*stopping: each process finishes its task in hand/);
  t.regex(fleet.stderr(), /workers stopped/);
  for (const pid of pids()) t.throws(() => process.kill(pid, 0), undefined, `worker process ${pid} is gone`);
});
