/**
 * Inputs given as URLs, through the real CLI (embedded) against a real HTTP server this test
 * starts on loopback: plain and compressed bodies (found by their first bytes), chunked bodies
 * without a length, bounded redirects; and the failures a user meets, each one line naming the
 * URL with exit 1: 404, a refused connection, a server that never answers, a body cut short.
 */
import test from 'ava';
import { startHttpServer, type TestHttpServer } from './helpers/http-server.js';
import { gzipSync } from 'node:zlib';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { REPO_ROOT, cleanEnv, runTally } from './helpers/tally.js';
import { freePort } from './helpers/cluster.js';
import { referenceUnicodeCount } from './helpers/reference-counter.js';

const TEXT = readFileSync(join(REPO_ROOT, 'samples', 'en', 'counting-words.txt'));
const SECOND = Buffer.from('one more text, one more word\n');
const reference = referenceUnicodeCount([TEXT]);

let server: TestHttpServer | undefined;
let base = '';
/** Requests seen, by path: a URL is fetched once to check it and once to read it. */
const hits = new Map<string, number>();

test.before(async () => {
  server = await startHttpServer((request, response) => {
    const path = request.url ?? '/';
    hits.set(path, (hits.get(path) ?? 0) + 1);
    switch (path) {
      case '/corpus.txt':
        response.writeHead(200, { 'content-type': 'text/plain', 'content-length': TEXT.length });
        return response.end(TEXT);
      case '/second.txt':
        return response.end(SECOND);
      case '/chunked':
        // No Content-Length: the body arrives in pieces, the server decides when it ends.
        response.writeHead(200, { 'content-type': 'text/plain' });
        response.write(TEXT.subarray(0, 1000));
        setImmediate(() => response.end(TEXT.subarray(1000)));
        return;
      case '/corpus.bin':
        // gzip bytes under a name and a type that do not say so.
        response.writeHead(200, { 'content-type': 'application/octet-stream' });
        return response.end(gzipSync(TEXT));
      case '/moved':
        response.writeHead(302, { location: '/corpus.txt' });
        return response.end();
      case '/loop':
        response.writeHead(301, { location: '/loop' });
        return response.end();
      case '/silent':
        return; // never answers
      case '/cut':
        response.writeHead(200, { 'content-length': TEXT.length });
        response.write(TEXT.subarray(0, 500));
        setImmediate(() => request.socket.destroy());
        return;
      default:
        response.writeHead(404, { 'content-type': 'text/plain' });
        return response.end('not here');
    }
  });
  base = server.base;
});

test.after.always(async () => {
  await server?.close();
});

const env = cleanEnv({ TALLY_URL_TIMEOUT_MS: '1500' });

async function countUrl(args: string[]) {
  return runTally(['count', ...args, '--format', 'json', '--top', '0', '--workers', '1'], { env });
}

test('a URL counts as its body: with a length, chunked, gzip found by its bytes, after a redirect; with a file beside it', async (t) => {
  for (const path of ['/corpus.txt', '/chunked', '/corpus.bin', '/moved']) {
    const run = await countUrl([`${base}${path}`, '--chunk-size', '4K']);
    t.is(run.code, 0, `${path}: ${run.stderr}`);
    const json = JSON.parse(run.stdout);
    t.is(json.totalWords, reference.totalWords, path);
    t.deepEqual(json.counts, reference.counts, path);
  }
  const both = await countUrl([`${base}/corpus.txt`, `${base}/second.txt`, join(REPO_ROOT, 'samples', 'en', 'counting-words.txt')]);
  t.is(both.code, 0, both.stderr);
  t.is(JSON.parse(both.stdout).totalWords, 2 * reference.totalWords + referenceUnicodeCount([SECOND]).totalWords);
  t.is(JSON.parse(both.stdout).files, 3);
});

test('failures name the URL in one line, exit 1, before anything is counted', async (t) => {
  const refusedPort = await freePort();
  const cases: Array<[string, string]> = [
    [`${base}/missing.txt`, 'HTTP 404 Not Found'],
    [`http://127.0.0.1:${refusedPort}/corpus.txt`, 'connection refused'],
    [`${base}/loop`, 'more than 5 redirects'],
    [`${base}/silent`, 'no answer within 1.5 s'],
  ];
  for (const [url, reason] of cases) {
    const run = await countUrl([url]);
    t.is(run.code, 1, `${url}: ${run.stderr}`);
    t.is(run.stderr, `tally: ${url}: ${reason}\n`);
    t.is(run.stdout, '');
  }
});

test('a body cut short fails the job naming the URL and how far it got, exit 1', async (t) => {
  const run = await countUrl([`${base}/cut`]);
  t.is(run.code, 1, run.stderr);
  t.regex(run.stderr, new RegExp(`${base}/cut: the body stopped after 500 `));
  t.is(run.stdout, '');
});
