/**
 * URL inputs whose server serves byte ranges: workers fetch their own ranges (Range: bytes=lo-hi)
 * and the coordinator reads none of the body; any other server is fetched by the coordinator and
 * carried, as before. Against real HTTP servers this test starts on loopback, which log every
 * request:
 * - a range-capable server and one without ranges give the counts an independent counter gives,
 *   and the same as counting those bytes as a local file; the first is read in several distinct
 *   ranges with no full-body GET, the second in one full-body GET;
 * - a body that changes between the probe and a worker's read (ETag, Last-Modified, length)
 *   fails the job with one line naming the URL and writes no result;
 * - a server that claims ranges but answers 200 falls back to carrying; one that answers the
 *   probe's range and later a 200 is refused, naming the URL, never counted;
 * - a worker fetches URLs only when allowed (embedded workers; `tally worker --fetch-urls`).
 */
import test from 'ava';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { startHttpServer, type TestHttpServer } from './helpers/http-server.js';
import { existsSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { REPO_ROOT, cleanEnv, runTally, startTestServer, tempDir } from './helpers/tally.js';
import { spawnWorker, waitFor } from './helpers/watch.js';
import { referenceUnicodeCount, referenceWhitespaceCount } from './helpers/reference-counter.js';
import { probeUrl, readUrlRange } from '../shared/text/url-input.js';
import { checkRangeEntry, type RangeEntry } from '../shared/text/file-input.js';
import { countKind } from '../shared/kinds/count.js';
import { setUrlFetches } from '../shared/kinds/file-reads.js';
import { InputChangedError, TaskRejectedError } from '../shared/errors.js';

/** Every sample text back to back (several languages, ~50 KB): many 4 KiB ranges. */
function samples(dir: string): Buffer[] {
  return readdirSync(dir)
    .sort()
    .flatMap((name) => {
      const path = join(dir, name);
      return statSync(path).isDirectory() ? samples(path) : name.endsWith('.txt') ? [readFileSync(path)] : [];
    });
}
const TEXT = Buffer.concat(samples(join(REPO_ROOT, 'samples')));
const LAST_MODIFIED = 'Tue, 01 Dec 2026 10:00:00 GMT';

/** One request as the server saw it. */
interface Seen {
  range: string | undefined;
  status: number;
}

/** How a path is served. */
interface Resource {
  body: Buffer;
  /** 'yes': honours Range; 'claims': says Accept-Ranges but always sends 200; 'probe-only': honours only a range from 0. */
  ranges: 'yes' | 'no' | 'claims' | 'probe-only';
  etag?: string;
  lastModified?: string;
  /** Called after each answer: lets a resource change once it was probed. */
  after?: (resource: Resource, seen: Seen[]) => void;
}

const resources = new Map<string, Resource>();
const log = new Map<string, Seen[]>();
let server: TestHttpServer | undefined;
let base = '';

/** Answers a request for `resource` as its server kind would; returns the status sent. */
function answer(request: IncomingMessage, response: ServerResponse, resource: Resource): number {
  const { body } = resource;
  const headers: Record<string, string | number> = { 'content-type': 'text/plain' };
  if (resource.etag) headers.etag = resource.etag;
  if (resource.lastModified) headers['last-modified'] = resource.lastModified;
  if (resource.ranges !== 'no') headers['accept-ranges'] = 'bytes';
  const match = /^bytes=(\d+)-(\d*)$/.exec(request.headers.range ?? '');
  const honours = resource.ranges === 'yes' || (resource.ranges === 'probe-only' && match?.[1] === '0');
  if (!match || !honours) {
    response.writeHead(200, { ...headers, 'content-length': body.length });
    response.end(body);
    return 200;
  }
  const from = Number(match[1]);
  const to = Math.min(body.length - 1, match[2] === '' ? body.length - 1 : Number(match[2]));
  if (from >= body.length) {
    response.writeHead(416, { 'content-range': `bytes */${body.length}` });
    response.end();
    return 416;
  }
  response.writeHead(206, { ...headers, 'content-length': to - from + 1, 'content-range': `bytes ${from}-${to}/${body.length}` });
  response.end(body.subarray(from, to + 1));
  return 206;
}

test.before(async () => {
  server = await startHttpServer((request, response) => {
    const path = request.url ?? '/';
    const resource = resources.get(path);
    if (!resource) {
      response.writeHead(404);
      response.end();
      return;
    }
    const seen = log.get(path) ?? [];
    log.set(path, seen);
    seen.push({ range: request.headers.range, status: answer(request, response, resource) });
    resource.after?.(resource, seen);
  });
  base = server.base;
});

test.after.always(async () => {
  await server?.close();
});

/** Serves `resource` at a fresh path; returns its URL. */
function serve(name: string, resource: Resource): string {
  resources.set(`/${name}`, resource);
  return `${base}/${name}`;
}

function seen(url: string): Seen[] {
  return log.get(new URL(url).pathname) ?? [];
}

/** Requests that sent the whole body (no range asked, or a range ignored). */
function fullBodies(url: string): number {
  return seen(url).filter((request) => request.status === 200).length;
}

// No test here waits on a slow server (url-inputs.test.ts does): the timeout only bounds a hang,
// and 3 s was once too short for this file's test server while the whole suite ran on 2 cores.
const env = cleanEnv({ TALLY_URL_TIMEOUT_MS: '20000' });

async function count(args: string[]) {
  return runTally(['count', ...args, '--format', 'json', '--top', '0', '--workers', '2', '--no-progress'], { env });
}

test('a server that serves ranges: workers fetch several distinct ranges, the coordinator no full body; counts equal the reference and the same bytes as a file', async (t) => {
  const url = serve('ranged.txt', { body: TEXT, ranges: 'yes', etag: '"v1"', lastModified: LAST_MODIFIED });
  const run = await count([url, '--chunk-size', '4K']);
  t.is(run.code, 0, run.stderr);
  const json = JSON.parse(run.stdout);
  const reference = referenceUnicodeCount([TEXT]);
  t.is(json.totalWords, reference.totalWords);
  t.deepEqual(json.counts, reference.counts);
  t.is(json.bytes, TEXT.length);
  t.is(json.tasks, Math.ceil(TEXT.length / 4096));

  const ranges = new Set(seen(url).map((request) => request.range));
  t.is(fullBodies(url), 0, 'nobody fetched the whole body');
  t.true(ranges.size >= json.tasks, `${ranges.size} distinct ranges for ${json.tasks} tasks`);
  t.true(
    seen(url).every((request) => request.status === 206 && /^bytes=\d+-\d+$/.test(request.range ?? '')),
    'every request asked for a range and got it',
  );

  const dir = tempDir('tally-url-ranges-');
  t.teardown(dir.remove);
  const file = join(dir.path, 'ranged.txt');
  writeFileSync(file, TEXT);
  const local = await count([file, '--chunk-size', '4K']);
  t.is(local.code, 0, local.stderr);
  const localJson = JSON.parse(local.stdout);
  t.is(json.totalWords, localJson.totalWords);
  t.deepEqual(json.counts, localJson.counts);
});

test('whitespace tokenizer over ranges, with no validators at all: equal to the reference', async (t) => {
  const url = serve('bare.txt', { body: TEXT, ranges: 'yes' });
  const run = await count([url, '--chunk-size', '2K', '--tokenizer', 'whitespace']);
  t.is(run.code, 0, run.stderr);
  const json = JSON.parse(run.stdout);
  const reference = referenceWhitespaceCount([TEXT]);
  t.is(json.totalWords, reference.totalWords);
  t.deepEqual(json.counts, reference.counts);
  t.is(fullBodies(url), 0);
});

test('a server without ranges, and one that claims them but sends 200: the coordinator carries each in one full GET; mixed with a ranged URL and a file in one job', async (t) => {
  const plain = serve('plain.txt', { body: TEXT, ranges: 'no' });
  const claims = serve('claims.txt', { body: TEXT, ranges: 'claims', etag: '"c"' });
  const ranged = serve('mixed-ranged.txt', { body: TEXT, ranges: 'yes', etag: '"m"' });
  const file = join(REPO_ROOT, 'samples', 'en', 'counting-words.txt');
  const run = await count([plain, claims, ranged, file, '--chunk-size', '4K']);
  t.is(run.code, 0, run.stderr);
  const json = JSON.parse(run.stdout);
  const reference = referenceUnicodeCount([TEXT, TEXT, TEXT, readFileSync(file)]);
  t.is(json.totalWords, reference.totalWords);
  t.deepEqual(json.counts, reference.counts);
  t.is(json.files, 4);
  // Probed (a range asked for, the whole body sent and dropped), then read once.
  t.is(fullBodies(plain), 2);
  t.is(fullBodies(claims), 2);
  t.is(fullBodies(ranged), 0);
  t.true(new Set(seen(ranged).map((request) => request.range)).size > 5);
});

test('gzip URLs served in ranges: each fetched whole by a worker in one range and decompressed there, the coordinator reads none; without range support, carried', async (t) => {
  const thirds = [TEXT.subarray(0, 20_000), TEXT.subarray(20_000, 20_003), TEXT.subarray(20_003)];
  const members = Buffer.concat(thirds.map((third) => gzipSync(third)));
  const small = gzipSync(TEXT.subarray(0, 5000));
  const ranged = serve('members.txt.gz', { body: members, ranges: 'yes', etag: '"gz"' });
  const second = serve('second.gz', { body: small, ranges: 'yes' });
  const plain = serve('plain.gz', { body: members, ranges: 'no' });
  const run = await count([ranged, second, plain]);
  t.is(run.code, 0, run.stderr);
  const json = JSON.parse(run.stdout);
  const reference = referenceUnicodeCount([TEXT, TEXT.subarray(0, 5000), TEXT]);
  t.is(json.bytes, 2 * TEXT.length + 5000, 'bytes of the text');
  t.is(json.totalWords, reference.totalWords);
  t.deepEqual(json.counts, reference.counts);
  for (const [url, body] of [[ranged, members], [second, small]] as const) {
    t.is(fullBodies(url), 0, `${url}: nobody fetched it without a range`);
    t.true(
      seen(url).some((request) => request.status === 206 && request.range === `bytes=0-${body.length - 1}`),
      `${url}: a worker fetched the whole body as one range`,
    );
  }
  t.is(fullBodies(plain), 2, 'probed, then read once by the coordinator');
});

test('a body that changes after the probe (same length, new ETag) fails the job naming the URL, and no result is written', async (t) => {
  const changed = Buffer.from(TEXT.toString('latin1').replaceAll('e', 'E'), 'latin1');
  const url = serve('changing.txt', {
    body: TEXT,
    ranges: 'yes',
    etag: '"one"',
    after: (resource) => Object.assign(resource, { body: changed, etag: '"two"' }),
  });
  const dir = tempDir('tally-url-changed-');
  t.teardown(dir.remove);
  const output = join(dir.path, 'result.json');
  const run = await count([url, '--chunk-size', '4K', '--output', output]);
  t.is(run.code, 1, run.stderr);
  t.is(run.stdout, '');
  t.regex(run.stderr, new RegExp(`^tally: job \\S+ failed on \\S+ bytes \\d+-\\d+: ${url} changed while it was being counted: its ETag is "two", not "one"\\n$`));
  t.false(existsSync(output), 'no result written');
  t.is(fullBodies(url), 0);
});

test('a server that answers the probe in ranges and then with whole bodies is refused, naming the URL; nothing counted', async (t) => {
  const url = serve('fickle.txt', { body: TEXT, ranges: 'probe-only', etag: '"f"' });
  const run = await count([url, '--chunk-size', '4K']);
  t.is(run.code, 1, run.stderr);
  t.is(run.stdout, '');
  t.regex(run.stderr, new RegExp(`^tally: job \\S+ failed on .+?: ${url} changed while it was being counted: its server answered a byte range request with HTTP 200, not the range \\(count it with --no-workers-fetch-urls\\)\\n$`));
  t.is(run.stderr.trimEnd().split('\n').length, 1);
});

test('the probe: ranges only for a 206 of an unencoded, non-empty body; validators kept', async (t) => {
  const ranged = await probeUrl(serve('probe-ranged.txt', { body: TEXT, ranges: 'yes', etag: 'W/"weak"', lastModified: LAST_MODIFIED }));
  t.deepEqual(ranged, { compression: null, ranges: { size: TEXT.length, mtimeMs: Date.parse(LAST_MODIFIED), etag: 'W/"weak"' } });
  t.deepEqual(await probeUrl(serve('probe-plain.txt', { body: TEXT, ranges: 'no' })), { compression: null });
  t.deepEqual(await probeUrl(serve('probe-claims.txt', { body: TEXT, ranges: 'claims' })), { compression: null });
  // gzip bytes served in ranges: compressed, and in ranges (a worker may fetch it whole).
  const gzip = Buffer.concat([Buffer.from([0x1f, 0x8b, 0x08, 0x00]), Buffer.alloc(100)]);
  t.deepEqual(await probeUrl(serve('probe-gzip.bin', { body: gzip, ranges: 'yes' })), { compression: 'gzip', ranges: { size: gzip.length, mtimeMs: 0 } });
  // An empty body: a range of it cannot be satisfied (416), so it is simply fetched.
  t.deepEqual(await probeUrl(serve('probe-empty.txt', { body: Buffer.alloc(0), ranges: 'yes' })), { compression: null });
});

test('a worker reads a range only as planned: other length, ETag or Last-Modified is a change; a 200 is refused', async (t) => {
  const url = serve('read.txt', { body: TEXT, ranges: 'yes', etag: '"r"', lastModified: LAST_MODIFIED });
  const planned = { size: TEXT.length, mtimeMs: Date.parse(LAST_MODIFIED), etag: '"r"' };
  t.deepEqual(Buffer.from(await readUrlRange(url, planned, 100, 200)), TEXT.subarray(100, 200));
  const changed = async (other: typeof planned) => (await t.throwsAsync(readUrlRange(url, other, 0, 10), { instanceOf: InputChangedError }))!.message;
  t.is(await changed({ ...planned, size: TEXT.length + 1 }), `${url} changed while it was being counted: it has ${TEXT.length} bytes, not ${TEXT.length + 1}`);
  t.is(await changed({ ...planned, etag: '"s"' }), `${url} changed while it was being counted: its ETag is "r", not "s"`);
  t.regex(await changed({ ...planned, mtimeMs: 0 + Date.parse(LAST_MODIFIED) - 1000 }), /changed while it was being counted: modified 2026-12-01T10:00:00.000Z$/);
  const whole = serve('read-whole.txt', { body: TEXT, ranges: 'claims' });
  await t.throwsAsync(readUrlRange(whole, { size: TEXT.length, mtimeMs: 0 }, 0, 10), { instanceOf: InputChangedError, message: /HTTP 200, not the range/ });
});

test('tasks name URL ranges (with the ETag) only when workers may fetch; a worker that may not rejects them naming the flag; 6-tuples stay valid', async (t) => {
  const url = serve('tasks.txt', { body: TEXT, ranges: 'yes', etag: '"t"' });
  const probe = (await probeUrl(url)).ranges!;
  const input = { path: url, size: probe.size, mtimeMs: probe.mtimeMs, byteRanges: true, etag: probe.etag! };
  const options = { inputs: [input], tokenizer: 'unicode' as const, caseSensitive: false, maxWordBytes: 1024, chunkSize: 8192, workersFetchUrls: true };
  const tasks = [];
  for await (const task of countKind.split(options, { maxBodyBytes: 1 << 20 })) tasks.push(task);
  t.true(tasks.length > 3);
  const ranges = tasks.flatMap((task) => (task.spec as { ranges: RangeEntry[] }).ranges);
  t.deepEqual(ranges[0], [0, url, TEXT.length, 0, 0, 8192, '"t"']);
  t.true(tasks.every((task) => task.body === undefined));

  const carried = [];
  for await (const task of countKind.split({ ...options, workersFetchUrls: false }, { maxBodyBytes: 1 << 20 })) carried.push(task);
  t.true(carried.every((task) => (task.spec as { chunks?: unknown }).chunks !== undefined && task.body !== undefined));

  setUrlFetches(false);
  const spec = JSON.parse(JSON.stringify(tasks[0]!.spec));
  t.throws(() => countKind.map(spec, new Uint8Array(0), { working: () => undefined }), {
    instanceOf: TaskRejectedError,
    message: `count task: this worker does not fetch URLs (${url}); start it with --fetch-urls, or submit without --workers-fetch-urls`,
  });
  setUrlFetches(true);
  t.true((await countKind.map(spec, new Uint8Array(0), { working: () => undefined })) instanceof Uint8Array);
  setUrlFetches(false);

  t.notThrows(() => checkRangeEntry([0, '/tmp/a.txt', 10, 0, 0, 10]));
  t.throws(() => checkRangeEntry([0, '/tmp/a.txt', 10, 0, 0, 10, '"x"']), { instanceOf: TaskRejectedError });
  t.throws(() => checkRangeEntry([0, 'ftp://host/a', 10, 0, 0, 10]), { instanceOf: TaskRejectedError });
});

test('with --server: carried unless the job says workers fetch; a `tally worker` without --fetch-urls rejects URL ranges naming the flag; with it, it counts them', async (t) => {
  const nats = await startTestServer();
  t.teardown(() => nats.stop());
  const url = serve('fleet.txt', { body: TEXT, ranges: 'yes', etag: '"w"' });
  const reference = referenceUnicodeCount([TEXT]);
  const run = (extra: string[]) => runTally(['count', url, '--server', nats.url, '--chunk-size', '8K', '--format', 'json', '--top', '0', '--no-progress', ...extra], { env });

  const plain = spawnWorker(nats.url, 1, env, ['--log-level', 'info']);
  t.teardown(() => plain.kill());
  await waitFor(() => plain.stderr().includes('"worker ready"'), 'the worker to be ready');
  const carried = await run([]);
  t.is(carried.code, 0, carried.stderr);
  t.is(JSON.parse(carried.stdout).totalWords, reference.totalWords);
  t.is(fullBodies(url), 1, 'the coordinator fetched it once');
  const refused = await run(['--workers-fetch-urls']);
  t.is(refused.code, 1, refused.stderr);
  t.true(refused.stderr.includes(`this worker does not fetch URLs (${url}); start it with --fetch-urls`), refused.stderr);
  plain.kill();
  await plain.done;

  const fetching = spawnWorker(nats.url, 1, env, ['--log-level', 'info', '--fetch-urls']);
  t.teardown(() => fetching.kill());
  await waitFor(() => fetching.stderr().includes('"worker ready"'), 'the worker to be ready');
  const before = fullBodies(url);
  const fetched = await run(['--workers-fetch-urls']);
  t.is(fetched.code, 0, fetched.stderr);
  t.deepEqual(JSON.parse(fetched.stdout).counts, reference.counts);
  t.is(fullBodies(url), before, 'no full body fetched');
});

test('ngrams plan URL ranges the same way: workers fetch them, and the n-grams equal those of the same bytes as a file', async (t) => {
  const url = serve('ngrams.txt', { body: TEXT, ranges: 'yes', etag: '"n"' });
  const dir = tempDir('tally-url-ngrams-');
  t.teardown(dir.remove);
  const file = join(dir.path, 'ngrams.txt');
  writeFileSync(file, TEXT);
  const ngrams = (input: string) => runTally(['ngrams', '2', input, '--chunk-size', '4K', '--format', 'json', '--top', '0', '--workers', '2', '--no-progress'], { env });
  const [remote, local] = [await ngrams(url), await ngrams(file)];
  t.is(remote.code, 0, remote.stderr);
  t.is(local.code, 0, local.stderr);
  t.deepEqual(JSON.parse(remote.stdout).counts, JSON.parse(local.stdout).counts);
  t.true(JSON.parse(remote.stdout).counts.length > 1000);
  t.is(fullBodies(url), 0);
  t.true(new Set(seen(url).map((request) => request.range)).size > 5);
});
