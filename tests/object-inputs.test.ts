/**
 * Inputs in a NATS Object Store bucket, through the real CLI against a real nats-server:
 * `tally put` (names, resumable uploads, digests checked, bad paths refused before anything is
 * sent), `tally ls` and `tally rm`, and a bucket that does not exist.
 */
import test from 'ava';
import { createHash } from 'node:crypto';
import { appendFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { Objm } from '@nats-io/obj';
import { cleanEnv, runTally, startTestServer, tempDir, type TestServer } from './helpers/tally.js';
import { objectDigest } from '../shared/text/object-input.js';

let server: TestServer;
let nc: NatsConnection;
const dir = tempDir('tally-obj-');
const env = cleanEnv();

/** More than two 128 KiB chunks of words, so that the object has several chunks. */
const BIG = Buffer.from(Array.from({ length: 40_000 }, (_, i) => `word${i % 997} `).join(''));

test.before(async () => {
  server = await startTestServer();
  nc = await connect({ servers: server.url });
  mkdirSync(join(dir.path, 'corpus', 'sub'), { recursive: true });
  writeFileSync(join(dir.path, 'corpus', 'a.txt'), 'one two three\n');
  writeFileSync(join(dir.path, 'corpus', 'sub', 'b.txt'), 'four five\n');
  writeFileSync(join(dir.path, 'corpus', 'big.txt'), BIG);
});

test.after.always(async () => {
  await nc?.close();
  await server?.stop();
  dir.remove();
});

function tally(args: string[]) {
  return runTally([...args, '--server', server.url], { env, cwd: dir.path });
}

function sha(bytes: Uint8Array): string {
  return objectDigest(createHash('sha256').update(bytes).digest());
}

test.serial('put uploads a folder under names relative to its parent; ls lists them with their digests', async (t) => {
  const put = await tally(['put', 'corpus', '--bucket', 'put-one']);
  t.is(put.code, 0, put.stderr);
  t.regex(put.stdout, /uploaded 3 files .*0 unchanged, to obj:\/\/put-one/);
  const ls = await tally(['ls', 'obj://put-one', '--format', 'json']);
  t.is(ls.code, 0, ls.stderr);
  const rows = JSON.parse(ls.stdout) as Array<{ name: string; size: number; digest: string }>;
  t.deepEqual(
    rows.map((row) => [row.name, row.size]),
    [
      ['corpus/a.txt', 14],
      ['corpus/big.txt', BIG.length],
      ['corpus/sub/b.txt', 10],
    ],
  );
  t.is(rows[1]!.digest, sha(BIG));
  // The stored bytes are the file's (the client checks its digest as it reads them back).
  const got = await (await new Objm(nc).open('put-one')).getBlob('corpus/big.txt');
  t.true(Buffer.from(got!).equals(BIG));
  const table = await tally(['ls', 'obj://put-one/corpus/sub']);
  t.is(table.code, 0, table.stderr);
  t.regex(table.stdout, /^name +size +modified +digest\ncorpus\/sub\/b\.txt +10 +\S+ +SHA-256=\S+\n$/);
});

test.serial('a second put sends only what changed or is missing', async (t) => {
  t.is((await tally(['put', 'corpus/', '--bucket', 'put-two'])).code, 0);
  const again = await tally(['put', 'corpus/', '--bucket', 'put-two']);
  t.is(again.code, 0, again.stderr);
  t.regex(again.stdout, /uploaded 0 files .*3 unchanged/);
  appendFileSync(join(dir.path, 'corpus', 'a.txt'), 'six\n');
  writeFileSync(join(dir.path, 'corpus', 'c.txt'), 'seven\n');
  const changed = await tally(['put', 'corpus/', '--bucket', 'put-two']);
  t.is(changed.code, 0, changed.stderr);
  t.regex(changed.stdout, /uploaded 2 files .*2 unchanged/);
  const info = await (await new Objm(nc).open('put-two')).info('a.txt');
  t.is(info?.digest, sha(Buffer.from('one two three\nsix\n')));
});

test.serial('bad paths: one line each, exit 2, nothing uploaded', async (t) => {
  const put = await tally(['put', 'corpus', 'missing.txt', 'nothing/*.txt', '-', '--bucket', 'put-bad']);
  t.is(put.code, 2);
  const lines = put.stderr.trim().split('\n');
  t.is(lines.length, 3, put.stderr);
  t.regex(lines[0]!, /^tally: missing\.txt: no such file or directory$/);
  t.regex(lines[1]!, /^tally: nothing\/\*\.txt: no files match$/);
  t.regex(lines[2]!, /^tally: -: only files, directories and globs can be uploaded \(3 bad paths; nothing uploaded\)$/);
  // Not even the bucket was made.
  const ls = await tally(['ls', 'obj://put-bad']);
  t.is(ls.code, 2);
  t.is(ls.stderr, `tally: no bucket 'put-bad' on ${server.url} (tally put creates it)\n`);
});

test.serial('two files that would get the same name are refused', async (t) => {
  mkdirSync(join(dir.path, 'other'), { recursive: true });
  writeFileSync(join(dir.path, 'other', 'a.txt'), 'another a\n');
  const put = await tally(['put', 'corpus/a.txt', 'other/a.txt', '--bucket', 'put-same']);
  t.is(put.code, 2);
  t.is(put.stderr, "tally: other/a.txt: would be stored as 'a.txt', as corpus/a.txt is (nothing uploaded)\n");
});

test.serial('rm deletes one object, or a prefix with --recursive; a bucket alone needs --recursive', async (t) => {
  t.is((await tally(['put', 'corpus', '--bucket', 'put-rm'])).code, 0);
  const bare = await tally(['rm', 'obj://put-rm']);
  t.is(bare.code, 2);
  t.regex(bare.stderr, /names a bucket, not an object/);
  const missing = await tally(['rm', 'obj://put-rm/corpus/none.txt']);
  t.is(missing.code, 2);
  t.is(missing.stderr, 'tally: obj://put-rm/corpus/none.txt: no such object\n');
  const one = await tally(['rm', 'obj://put-rm/corpus/a.txt']);
  t.is(one.code, 0, one.stderr);
  t.is(one.stdout, 'deleted 1 object\n');
  const rest = await tally(['rm', '--recursive', 'obj://put-rm/corpus/']);
  t.is(rest.code, 0, rest.stderr);
  t.is(rest.stdout, 'deleted 3 objects\n');
  const ls = await tally(['ls', 'obj://put-rm']);
  t.is(ls.stdout, '(no objects)\n');
  const none = await tally(['rm', 'obj://no-such-bucket/x']);
  t.is(none.code, 2);
  t.regex(none.stderr, /^tally: no bucket 'no-such-bucket' on /);
});
