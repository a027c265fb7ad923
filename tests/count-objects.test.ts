/**
 * Counting objects stored with `tally put` (obj://BUCKET[/PREFIX]) against a real nats-server
 * and real worker processes that do not read files (no --read-files): the result equals the
 * reference counter's and `tally count` of the local copies, with ranges smaller and larger
 * than an Object Store chunk; a range read fetches only the chunks it covers, also when another
 * upload's chunks are interleaved with the object's; a changed object is refused by name.
 * Embedded runs: tests/objects-embedded.test.ts.
 */
import test from 'ava';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { Objm } from '@nats-io/obj';
import { jetstreamManager } from '@nats-io/jetstream';
import { cleanEnv, collect, runTally, spawnTally, startTestServer, startWorkers, tempDir, type TestServer, type WorkerFleet } from './helpers/tally.js';
import { referenceCount, referenceNgrams, referenceUnicodeCount } from './helpers/reference-counter.js';
import { readObjectRange, setObjectConnection } from '../shared/text/object-input.js';
import { InputChangedError } from '../shared/errors.js';

const CHUNK = 128 * 1024;
let server: TestServer;
let workers: WorkerFleet;
let nc: NatsConnection;
const dir = tempDir('tally-count-obj-');
const env = cleanEnv();

/** About 3.9 chunks of text, words of many lengths, lines and accents. */
const BIG = Buffer.from(Array.from({ length: 90_000 }, (_, i) => `${i % 11 === 0 ? 'Émile' : 'w'}${(i * 7919) % 1409}${i % 9 === 0 ? '\n' : ' '}`).join(''));
const SMALL = [Buffer.from('the quick brown fox\n'), Buffer.from('jumps over the lazy dog, the end\n')];
/** A token longer than any window a range fetches, with its first printable ASCII byte at its end. */
const OVERLONG = Buffer.concat([Buffer.from('start here '), Buffer.from('é'.repeat(40_000)), Buffer.from('x tail words\n')]);

test.before(async () => {
  server = await startTestServer();
  nc = await connect({ servers: server.url });
  mkdirSync(join(dir.path, 'books', 'more'), { recursive: true });
  writeFileSync(join(dir.path, 'books', 'big.txt'), BIG);
  writeFileSync(join(dir.path, 'books', 'a.txt'), SMALL[0]!);
  writeFileSync(join(dir.path, 'books', 'more', 'b.txt'), SMALL[1]!);
  writeFileSync(join(dir.path, 'overlong.txt'), OVERLONG);
  const put = await tally(['put', 'books', 'overlong.txt', '--bucket', 'shelf']);
  if (put.code !== 0) throw new Error(put.stderr);
  // Workers without --read-files: objects need none.
  workers = startWorkers(server.url, 2);
});

test.after.always(async () => {
  setObjectConnection(null);
  await workers?.stop();
  await nc?.close();
  await server?.stop();
  dir.remove();
});

function tally(args: string[]) {
  return runTally([...args, '--server', server.url], { env, cwd: dir.path });
}

async function countJson(args: string[]): Promise<{ totalWords: number; overlongWords: number; counts: [string, number][]; files: number; tasks: number }> {
  const run = await tally([...args, '--top', '0', '--format', 'json', '--no-progress']);
  if (run.code !== 0) throw new Error(`tally ${args.join(' ')}: exit ${run.code}: ${run.stderr}`);
  return JSON.parse(run.stdout);
}

for (const chunkSize of ['40000', '300000']) {
  test.serial(`count obj://BUCKET/PREFIX equals the reference and the local count (ranges of ${chunkSize} bytes)`, async (t) => {
    const got = await countJson(['count', 'obj://shelf/books/', '--chunk-size', chunkSize]);
    // Objects are listed by name: books/a.txt, books/big.txt, books/more/b.txt.
    const want = referenceUnicodeCount([SMALL[0]!, BIG, SMALL[1]!]);
    t.is(got.files, 3);
    t.is(got.totalWords, want.totalWords);
    t.deepEqual(got.counts, want.counts);
    t.true(got.tasks > (chunkSize === '40000' ? 10 : 1), String(got.tasks));
    const local = await countJson(['count', 'books', '--chunk-size', chunkSize]);
    t.deepEqual([local.totalWords, local.counts], [got.totalWords, got.counts]);
  });
}

test.serial('an overlong token that runs past the fetched window is read on from the object (whitespace tokenizer)', async (t) => {
  const args = ['--tokenizer', 'whitespace', '--max-word-bytes', '16', '--chunk-size', '1000'];
  const got = await countJson(['count', 'obj://shelf/overlong.txt', ...args]);
  const want = referenceCount([OVERLONG], { tokenizer: 'whitespace', caseSensitive: false, maxWordBytes: 16 });
  t.deepEqual([got.totalWords, got.overlongWords, got.counts], [want.totalWords, want.overlongWords, want.counts]);
  t.is(got.overlongWords, 1);
  const local = await countJson(['count', 'overlong.txt', ...args]);
  t.deepEqual([local.totalWords, local.overlongWords, local.counts], [got.totalWords, got.overlongWords, got.counts]);
});

test.serial('ngrams over objects equal the reference', async (t) => {
  const run = await tally(['ngrams', '2', 'obj://shelf/books', '--chunk-size', '50000', '--top', '0', '--format', 'json', '--no-progress']);
  t.is(run.code, 0, run.stderr);
  const got = JSON.parse(run.stdout) as { totalWords: number; counts: [string, number][] };
  const want = referenceNgrams([SMALL[0]!, BIG, SMALL[1]!], { tokenizer: 'unicode', caseSensitive: false, maxWordBytes: 256 }, 2);
  t.is(got.totalWords, want.totalWords);
  t.deepEqual(got.counts, want.counts);
});

test.serial('a range read fetches only the chunks it covers', async (t) => {
  setObjectConnection(nc);
  const info = (await (await new Objm(nc).open('shelf')).info('books/big.txt'))!;
  t.true(info.chunks >= 4);
  const path = 'obj://shelf/books/big.txt';
  const mtime = Date.parse(info.mtime);
  const inner = await readObjectRange(path, BIG.length, mtime, CHUNK + 100, CHUNK + 5000);
  t.is(inner.chunksRead, 1);
  t.true(Buffer.from(inner.bytes).equals(BIG.subarray(CHUNK + 100, CHUNK + 5000)));
  const across = await readObjectRange(path, BIG.length, mtime, 2 * CHUNK - 10, 2 * CHUNK + 10);
  t.is(across.chunksRead, 2);
  t.true(Buffer.from(across.bytes).equals(BIG.subarray(2 * CHUNK - 10, 2 * CHUNK + 10)));
  const last = await readObjectRange(path, BIG.length, mtime, BIG.length - 3, BIG.length);
  t.is(last.chunksRead, 1);
  t.is(Buffer.from(last.bytes).toString(), BIG.subarray(BIG.length - 3).toString());
});

test.serial('chunks interleaved with another upload are still read right', async (t) => {
  setObjectConnection(nc);
  const store = await new Objm(nc).create('mixed');
  const one = Buffer.alloc(3 * CHUNK + 77, 'a');
  const two = Buffer.alloc(3 * CHUNK + 99, 'b');
  // Two uploads at once: their chunk publishes alternate.
  const [a, b] = await Promise.all([store.putBlob({ name: 'one' }, one), store.putBlob({ name: 'two' }, two)]);
  // The case this test is about: at least one object's chunks do not follow each other.
  const jsm = await jetstreamManager(nc);
  const gapped = async (info: typeof a) => (await jsm.direct.getMessage('OBJ_mixed', { seq: 1, next_by_subj: `$O.mixed.C.${info.nuid}` }))!.seq !== info.revision - info.chunks;
  t.true((await gapped(a)) || (await gapped(b)));
  for (const [info, bytes, name] of [[a, one, 'one'], [b, two, 'two']] as const) {
    const got = await readObjectRange(`obj://mixed/${name}`, bytes.length, Date.parse(info.mtime), 2 * CHUNK + 5, bytes.length);
    t.true(Buffer.from(got.bytes).equals(bytes.subarray(2 * CHUNK + 5)), name);
  }
});

test.serial('an object replaced since the job was planned is refused, naming it', async (t) => {
  setObjectConnection(nc);
  const info = (await (await new Objm(nc).open('shelf')).info('books/a.txt'))!;
  const error = await t.throwsAsync(readObjectRange('obj://shelf/books/a.txt', info.size, Date.parse(info.mtime) - 1, 0, info.size), { instanceOf: InputChangedError });
  t.regex(error!.message, /^obj:\/\/shelf\/books\/a\.txt changed while it was being counted: replaced /);
  const shorter = await t.throwsAsync(readObjectRange('obj://shelf/books/a.txt', info.size + 1, Date.parse(info.mtime), 0, 1), { instanceOf: InputChangedError });
  t.regex(shorter!.message, /it has 20 bytes, not 21/);
});

test.serial('usage: a missing bucket, no objects under a prefix, a bucket on --server but not in the embedded store', async (t) => {
  const missing = await tally(['count', 'obj://nowhere']);
  t.is(missing.code, 2);
  t.is(missing.stderr, `tally: no bucket 'nowhere' on ${server.url} (tally put creates it)\n`);
  const empty = await tally(['count', 'obj://shelf/none/']);
  t.is(empty.code, 2);
  t.is(empty.stderr, 'tally: obj://shelf/none/: no objects\n');
  const embedded = await runTally(['count', 'obj://shelf', '--workers', '1'], { env, cwd: dir.path });
  t.is(embedded.code, 2);
  // Without --server the objects are the embedded server's (tests/objects-embedded.test.ts).
  t.is(embedded.stderr, "tally: no bucket 'shelf' on the embedded server (tally put creates it)\n");
  t.is(readFileSync(join(dir.path, 'books', 'a.txt')).length, 20);
});

test.serial('an object replaced after the job was planned fails the job with one line naming it', async (t) => {
  // No workers while the job is planned and its tasks wait; the object is replaced meanwhile.
  await workers.stop();
  const jsm = await jetstreamManager(nc);
  // The task stream appears with the first coordinator or worker that makes it.
  const queued = async () => (await jsm.streams.info('TALLY_TASKS').catch(() => null))?.state.messages ?? 0;
  const before = await queued();
  const job = spawnTally(['count', 'obj://shelf/books/a.txt', '--server', server.url, '--no-progress'], { env, cwd: dir.path });
  const done = collect(job);
  const deadline = Date.now() + 30_000;
  while ((await queued()) === before && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 50));
  await (await new Objm(nc).open('shelf')).putBlob({ name: 'books/a.txt' }, Buffer.from('a different text now\n'));
  workers = startWorkers(server.url, 1);
  const run = await done;
  t.is(run.code, 1);
  t.regex(run.stderr, /^tally: job \S+ failed on obj:\/\/shelf\/books\/a\.txt bytes 0-19: obj:\/\/shelf\/books\/a\.txt changed while it was being counted: (replaced|it has) .*\n$/);
});

test.serial('a job over objects is not resumed: the objects may have changed', async (t) => {
  await workers.stop();
  const jsm = await jetstreamManager(nc);
  // The task stream appears with the first coordinator or worker that makes it.
  const queued = async () => (await jsm.streams.info('TALLY_TASKS').catch(() => null))?.state.messages ?? 0;
  const before = await queued();
  const job = spawnTally(['count', 'obj://shelf/books/', '--server', server.url, '--no-progress'], { env, cwd: dir.path });
  const done = collect(job);
  const deadline = Date.now() + 30_000;
  while ((await queued()) === before && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 50));
  // The coordinator dies with its job running.
  job.kill('SIGKILL');
  await done;
  workers = startWorkers(server.url, 1);
  const jobs = JSON.parse((await tally(['jobs', '--format', 'json'])).stdout) as Array<{ id: string; status: string }>;
  const running = jobs.find((record) => record.status === 'running');
  t.truthy(running);
  const resume = await tally(['resume', running!.id]);
  t.is(resume.code, 2);
  t.is(resume.stderr, `tally: job '${running!.id}' read obj://shelf/books/a.txt, which may have changed since; submit the job again\n`);
});
