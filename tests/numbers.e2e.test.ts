/**
 * sum, primes and factorial end to end through NATS with two worker processes, checked against
 * Gauss's formula, published values of pi(x) and an independent factorial; then result, jobs
 * and workers read back what happened.
 */
import test from 'ava';
import { createHash } from 'node:crypto';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { connect } from '@nats-io/transport-node';
import { runTally, startTestServer, startWorkers, tempDir, type TestServer, type WorkerFleet } from './helpers/tally.js';
import { watchResults } from './helpers/watch.js';

let server: TestServer;
let workers: WorkerFleet;

test.before(async () => {
  server = await startTestServer();
  // The test server allows 8 MB messages, so partials up to 4 MiB would travel inline; these
  // workers send any partial above 512 KiB through the Object Store, about as on a server with
  // NATS's default 1 MiB max_payload.
  workers = startWorkers(server.url, 2, { TALLY_INLINE_PARTIAL_LIMIT: String(512 * 1024 - 1) });
});

test.after.always(async () => {
  await workers?.stop();
  await server?.stop();
});

const gauss = (a: bigint, b: bigint) => ((a + b) * (b - a + 1n)) / 2n;

test('sum equals Gauss, for small, negative and huge bounds', async (t) => {
  const cases: Array<[string, string, bigint, bigint]> = [
    ['1', '100', 1n, 100n],
    ['-1_000', '999', -1000n, 999n],
    ['-10e29', '1e30', -(10n ** 30n), 10n ** 30n],
    ['123456789012345678901234567890', '123456789012345678901234599999', 123456789012345678901234567890n, 123456789012345678901234599999n],
    ['5', '5', 5n, 5n],
  ];
  for (const [from, to, a, b] of cases) {
    const run = await runTally(['sum', from, to, '--tasks', '7', '--format', 'json', '--server', server.url]);
    t.is(run.code, 0, run.stderr);
    const result = JSON.parse(run.stdout);
    t.is(result.sum, gauss(a, b).toString(), `${from}..${to}`);
    t.is(result.from, a.toString());
    t.is(result.to, b.toString());
  }
});

test('sum takes bounds of thousands of digits, up to the documented 10,000, with the default split and with one task', async (t) => {
  const ten = (k: number) => 10n ** BigInt(k);
  const cases: Array<[string, string, bigint, bigint, string[]]> = [
    ['1', '1e4000', 1n, ten(4000), []],
    ['1e2050', '1e2050', ten(2050), ten(2050), []],
    ['-1e9999', '1e9999', -ten(9999), ten(9999), ['--tasks', '3']],
    ['1', '1e4000', 1n, ten(4000), ['--tasks', '1']],
  ];
  for (const [from, to, a, b, extra] of cases) {
    const run = await runTally(['sum', from, to, ...extra, '--format', 'json', '--server', server.url]);
    t.is(run.code, 0, `${from}..${to}: ${run.stderr}`);
    t.is(JSON.parse(run.stdout).sum, gauss(a, b).toString(), `${from}..${to}`);
  }
});

test('primes equal the published pi(10^k)', async (t) => {
  const published: Array<[string, number]> = [
    ['1e3', 168],
    ['1e6', 78_498],
    ['1e8', 5_761_455],
  ];
  for (const [to, pi] of published) {
    const run = await runTally(['primes', '1', to, '--format', 'json', '--server', server.url]);
    t.is(run.code, 0, run.stderr);
    t.is(JSON.parse(run.stdout).count, pi, `pi(${to})`);
  }
});

test('factorial matches an independent computation, and --output writes the full value', async (t) => {
  const dir = tempDir();
  t.teardown(dir.remove);
  const run = await runTally(['factorial', '0', '20', '1000', '5000', '--split', '3', '--format', 'json', '--output', dir.path, '--server', server.url]);
  t.is(run.code, 0, run.stderr);
  const { results } = JSON.parse(run.stdout);
  for (const [i, n] of [0, 20, 1000, 5000].entries()) {
    let value = 1n;
    for (let k = 2n; k <= BigInt(n); k++) value *= k;
    const decimal = value.toString();
    let zeros = 0;
    for (let p = 5; p <= n; p *= 5) zeros += Math.floor(n / p);
    t.is(String(results[i].n), String(n));
    t.is(results[i].digits, decimal.length);
    t.is(results[i].trailingZeros, zeros);
    t.is(results[i].leading, decimal.slice(0, 20));
    t.is(results[i].sha256, createHash('sha256').update(decimal).digest('hex'));
    t.is(readFileSync(join(dir.path, `${n}.txt`), 'utf8').trim(), decimal);
  }
  t.deepEqual(readdirSync(dir.path).sort(), ['0.txt', '1000.txt', '20.txt', '5000.txt']);
});

test('a factorial of several MB moves its partials through the Object Store and leaves none behind', async (t) => {
  // The results on the wire, watched while the job runs: its partial must travel as an object.
  const nc = await connect({ servers: server.url });
  t.teardown(() => nc.close());
  const watch = watchResults(nc);
  t.teardown(() => watch.stop());
  await nc.flush();
  const run = await runTally(['factorial', '500000', '--split', '1', '--format', 'json', '--server', server.url]);
  t.is(run.code, 0, run.stderr);
  await nc.flush();
  const job = JSON.parse(run.stdout).job as string;
  t.true(watch.viaObjectStore(job) >= 1, `the job's partial went through the Object Store (${watch.viaObjectStore(job)} object results, ${watch.inline(job)} inline)`);
  const [entry] = JSON.parse(run.stdout).results;
  // Independent checks: Legendre's formula for trailing zeros, Kamenetsky's formula for digits.
  const n = 500000;
  let zeros = 0;
  for (let p = 5; p <= n; p *= 5) zeros += Math.floor(n / p);
  t.is(entry.trailingZeros, zeros);
  const log10 = n * Math.log10(n / Math.E) + Math.log10(2 * Math.PI * n) / 2;
  t.is(entry.digits, Math.floor(log10) + 1);
  const { Objm } = await import('@nats-io/obj');
  const partials = await new Objm(nc).open('tally-partials');
  t.deepEqual(await partials.list(), [], 'partials are deleted when the job ends');
});

test('result prints what the job printed; jobs lists it; workers lists both processes', async (t) => {
  const run = await runTally(['primes', '1', '1e5', '--format', 'json', '--server', server.url]);
  t.is(run.code, 0, run.stderr);
  const job = JSON.parse(run.stdout).job;
  const again = await runTally(['result', job, '--format', 'json', '--server', server.url]);
  t.is(again.stdout, run.stdout);
  const table = await runTally(['result', job, '--server', server.url]);
  t.regex(table.stdout, /= 9592/);
  const jobs = await runTally(['jobs', '--format', 'json', '--server', server.url]);
  const record = JSON.parse(jobs.stdout).find((r: { id: string }) => r.id === job);
  t.is(record.status, 'done');
  t.is(record.kind, 'primes');
  t.deepEqual(record.args, { from: '1', to: '100000', tasks: null });
  const listed = await runTally(['workers', '--format', 'json', '--server', server.url]);
  const live = JSON.parse(listed.stdout);
  t.is(live.length, 2);
  t.true(live.every((w: { pid: number; busy: boolean }) => w.pid > 0 && typeof w.busy === 'boolean'));
  const deleted = await runTally(['jobs', '--delete', job, '--server', server.url]);
  t.is(deleted.code, 0, deleted.stderr);
  const gone = await runTally(['result', job, '--server', server.url]);
  t.is(gone.code, 2);
});

test('bad number input exits 2 with one line', async (t) => {
  for (const args of [['sum', '10', '1'], ['sum', '1.5', '3'], ['primes', '1', '10', '--tasks', '0'], ['sum', 'abc', '3'], ['factorial', '-1']]) {
    const run = await runTally([...args, '--server', server.url]);
    t.is(run.code, 2, `${args.join(' ')}: ${run.stderr}`);
    t.is(run.stderr.trim().split('\n').length, 1, run.stderr);
  }
});

test('retention of job records and results is configurable, and kept when jobs run afterwards', async (t) => {
  const set = await runTally(['jobs', '--retention', '30d', '--server', server.url]);
  t.is(set.code, 0, set.stderr);
  t.is(set.stdout, 'job records and results are kept 30d\n');
  const run = await runTally(['sum', '1', '10', '--server', server.url]);
  t.is(run.code, 0, run.stderr);
  const nc = await connect({ servers: server.url });
  t.teardown(() => nc.close());
  const { jetstreamManager } = await import('@nats-io/jetstream');
  const jsm = await jetstreamManager(nc);
  for (const stream of ['KV_tally-jobs', 'OBJ_tally-results']) {
    t.is((await jsm.streams.info(stream)).config.max_age, 30 * 24 * 3600 * 1e9, stream);
  }
  const bad = await runTally(['jobs', '--retention', 'forever', '--server', server.url]);
  t.is(bad.code, 2);
});
