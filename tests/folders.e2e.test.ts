/**
 * A folder of thousands of small files, as real corpora are (mail, documents, source trees):
 * counted exactly, whether workers read the files or tasks carry their bytes, with many files to
 * a task; its job record stays small (the list of inputs is kept beside the results), and a
 * killed coordinator of such a job is finished by `tally resume`.
 */
import test from 'ava';
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { connect } from '@nats-io/transport-node';
import { Objm } from '@nats-io/obj';
import { REPO_ROOT, cleanEnv, collect, runTally, spawnTally, startTestServer, startWorkers, tempDir, type TestServer, type WorkerFleet } from './helpers/tally.js';
import { referenceWhitespaceCount } from './helpers/reference-counter.js';

const FILES = 3000;
// Tasks are slowed a little, so that a job is still running when its coordinator is killed.
const env = cleanEnv({ TALLY_ACK_WAIT_MS: '2000', TALLY_TEST_HOOKS: JSON.stringify({ busyMs: 25 }) });
let server: TestServer;
let fleet: WorkerFleet;
let corpus: { path: string; remove(): void };
let folder: string;
const texts: Buffer[] = [];
const paths: string[] = [];

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

test.before(async () => {
  server = await startTestServer();
  fleet = startWorkers(server.url, 2, env, ['--read-files']);
  corpus = tempDir('tally-folders-');
  folder = join(corpus.path, 'mail-archive-of-a-long-running-project');
  const source = Buffer.concat(['de', 'ja', 'ru'].map((l) => readFileSync(join(REPO_ROOT, 'node_modules', 'typescript', 'lib', l, 'diagnosticMessages.generated.json'))));
  let at = 0;
  for (let i = 0; i < FILES; i++) {
    // 0 to ~1.2 KB each, cut anywhere (inside words, inside UTF-8 sequences): each file is its own text.
    const length = (i * 7919) % 1200;
    if (at + length > source.length) at = 0;
    const text = source.subarray(at, at + length);
    at += length;
    const dir = join(folder, `thread-${String(Math.floor(i / 50)).padStart(3, '0')}`);
    if (i % 50 === 0) mkdirSync(dir, { recursive: true });
    const path = join(dir, `message-${String(i).padStart(5, '0')}.eml`);
    writeFileSync(path, text);
    texts.push(text);
    paths.push(path);
  }
});

test.after.always(async () => {
  await fleet?.stop();
  await server?.stop();
  corpus?.remove();
});

const countArgs = ['count', 'mail-archive-of-a-long-running-project', '--tokenizer', 'whitespace', '--case-sensitive', '--format', 'json', '--top', '0'];

function tally(args: string[]) {
  return runTally([...args, '--server', server.url], { env, cwd: corpus.path });
}

/** What every run must print, from a counter written apart from tally, checked against wc -w. */
function truth(): { totalWords: number; counts: Array<[string, number]>; bytes: number } {
  const reference = referenceWhitespaceCount(texts, { caseSensitive: true });
  const wc = execFileSync('sh', ['-c', `find '${folder}' -type f -print0 | xargs -0 wc -w | awk '$2 == "total" { n += $1 } END { print n }'`], { env: { ...process.env, LC_ALL: 'C' }, encoding: 'utf8' });
  if (Number(wc.trim()) !== reference.totalWords) throw new Error(`reference ${reference.totalWords} != wc -w ${wc.trim()}`);
  return { totalWords: reference.totalWords, counts: reference.counts, bytes: texts.reduce((sum, text) => sum + text.length, 0) };
}

function check(t: import('ava').ExecutionContext, stdout: string): { job: string; tasks: number } {
  const result = JSON.parse(stdout);
  const expected = truth();
  t.is(result.files, FILES);
  t.is(result.bytes, expected.bytes);
  t.is(result.totalWords, expected.totalWords);
  t.is(JSON.stringify(result.counts), JSON.stringify(expected.counts));
  return result;
}

test.serial('workers reading the files: exact counts, many files to a task, and a job record that stays small', async (t) => {
  const run = await tally([...countArgs, '--workers-read-files']);
  t.is(run.code, 0, run.stderr);
  const { job, tasks } = check(t, run.stdout);
  // ~1.8 MB in tasks of at most 1 MiB, 512 files and 24K characters of paths (~250 of these):
  // a dozen tasks, not 3,000.
  t.true(tasks <= 15, `${tasks} tasks`);
  const jobs = await tally(['jobs', '--format', 'json']);
  const record = (JSON.parse(jobs.stdout) as Array<{ id: string; args: unknown; argsObject?: string; argsSummary?: string }>).find((r) => r.id === job)!;
  t.is(record.args, null, 'the list of inputs is not in the record');
  t.is(record.argsObject, `${job}.args`);
  t.regex(record.argsSummary!, /message-00000\.eml .* … \(3000 files\)$/);
  t.true(jobs.stdout.length < 40_000, `tally jobs --format json printed ${jobs.stdout.length} bytes`);
  const table = await tally(['jobs']);
  t.regex(table.stdout, new RegExp(`${job} +count +mail-archive-of-a-long-running-project/thread-0… +done`));
});

test.serial('tasks carrying the bytes: the coordinator packs the chunks of small files into shared tasks', async (t) => {
  const run = await tally([...countArgs, '--no-workers-read-files']);
  t.is(run.code, 0, run.stderr);
  const { tasks } = check(t, run.stdout);
  // ~1.8 MB in tasks of at most 1 MiB of carried bytes and 512 chunks: a few, not 3,000.
  t.true(tasks <= 8, `${tasks} tasks`);
});

test.serial('a killed coordinator of a folder job is finished by tally resume; deleting the job deletes its stored inputs', async (t) => {
  const nc = await connect({ servers: server.url });
  t.teardown(() => nc.close());
  let results = 0;
  nc.subscribe('tally.result.>', { callback: () => void results++ });
  await nc.flush();
  // Small tasks: many of them, so the job is surely running after its first results.
  const child = spawnTally([...countArgs, '--workers-read-files', '--chunk-size', '16K', '--server', server.url], { env, cwd: corpus.path });
  const running = collect(child);
  while (results < 3 && child.exitCode === null) await sleep(10);
  child.kill('SIGKILL');
  await running;
  const records = JSON.parse((await tally(['jobs', '--format', 'json'])).stdout) as Array<{ id: string; status: string }>;
  const job = records.find((r) => r.status === 'running')?.id;
  t.truthy(job, 'the killed job is left running');

  // From another directory: the job's own directory is used.
  const resumed = await runTally(['resume', job!, '--format', 'json', '--top', '0', '--server', server.url], { env });
  t.is(resumed.code, 0, resumed.stderr);
  t.is(check(t, resumed.stdout).job, job!);

  const objects = async () => (await (await new Objm(nc).open('tally-results')).list()).map((info) => info.name);
  t.true((await objects()).includes(`${job!}.args`));
  // The sorted parts of its table (one per reduce partition) lie beside the result.
  t.true((await objects()).some((name) => name.startsWith(`${job!}.part-`)));
  const deleted = await tally(['jobs', '--delete', job!]);
  t.is(deleted.code, 0, deleted.stderr);
  const left = await objects();
  t.false(left.includes(`${job}.args`), 'its stored inputs are gone');
  t.false(left.includes(job!), 'its result is gone');
  t.false(left.some((name) => name.startsWith(`${job!}.part-`)), 'its parts are gone');
});
