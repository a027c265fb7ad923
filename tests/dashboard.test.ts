/**
 * `tally dashboard` in a real headless Chromium (Debian's `chromium`, driven by puppeteer-core)
 * against real processes: a nats-server, `tally worker` with 2 processes, the dashboard, and a
 * count job held part way by a worker test hook (so "while it runs" is an event, not a race).
 * Each browser test saves a screenshot under tests/.screenshots/ (gitignored).
 */
import test from 'ava';
import puppeteer, { type Browser, type Page } from 'puppeteer-core';
import type { ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startNatsServer, type NatsServerProcess } from '../coordinator/nats-server.js';
import { connect } from '@nats-io/transport-node';
import { jetstreamManager } from '@nats-io/jetstream';
import { REPO_ROOT, cleanEnv, collect, runTally, spawnTally, startWorkers, tempDir, type WorkerFleet } from './helpers/tally.js';
import { waitFor } from './helpers/watch.js';
import { openStream } from './helpers/events.js';
import { newSecret, roleServerEnv, rolePasswords, runJobWithRoles, secureConfig, startSecureServer } from './helpers/security.js';
import { estimateEta, type ProgressSample } from '../coordinator/dashboard/eta.js';

/** The page's document, as the callbacks that puppeteer runs inside Chromium see it. */
declare const document: {
  getElementById(id: string): { textContent: string | null; dataset: Record<string, string | undefined> } | null;
  querySelector(selector: string): { textContent: string | null } | null;
  querySelectorAll(selector: string): { length: number };
};

const CHROMIUM = process.env.TALLY_CHROMIUM || '/usr/bin/chromium';
const SHOTS = join(REPO_ROOT, 'tests', '.screenshots');
/** One word to the whitespace tokenizer, and markup to a browser that would parse it. */
const HOSTILE_WORD = '<img/src=x/onerror=alert(1)>';
/** A file name with quotes and angle brackets: it shows in the job's arguments. */
const HOSTILE_FILE = `<img src=x onerror=alert(2)> "q" 'a'.txt`;

interface Dashboard {
  child: ChildProcess;
  url: string;
  stdout: () => string;
  done: ReturnType<typeof collect>;
}

let server: NatsServerProcess;
let store: ReturnType<typeof tempDir>;
let corpus: ReturnType<typeof tempDir>;
let workers: WorkerFleet;
let dashboard: Dashboard;
let browser: Browser;
let gate: string;
let jobId = '';
const dialogs: string[] = [];

/** Starts `tally dashboard ARGS` and resolves once it printed its address. */
async function startDashboard(args: string[], env?: NodeJS.ProcessEnv): Promise<Dashboard> {
  const child = spawnTally(['dashboard', '--port', '0', ...args], { env });
  let stdout = '';
  child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
  const done = collect(child, Date.now(), 10 * 60_000);
  await waitFor(() => /tally dashboard: http:\/\/\S+/.test(stdout) || child.exitCode !== null, 'the dashboard to print its address');
  const url = /tally dashboard: (http:\/\/\S+)/.exec(stdout)?.[1];
  if (!url) throw new Error(`the dashboard did not start: ${(await done).stderr}`);
  return { child, url, stdout: () => stdout, done };
}

async function stopDashboard(d: Dashboard): Promise<Awaited<Dashboard['done']>> {
  if (d.child.exitCode === null && d.child.signalCode === null) d.child.kill('SIGTERM');
  return d.done;
}

async function newPage(): Promise<Page> {
  const page = await browser.newPage();
  await page.setViewport({ width: 1100, height: 800 });
  page.on('dialog', (dialog) => {
    dialogs.push(dialog.message());
    void dialog.dismiss();
  });
  return page;
}

async function screenshot(page: Page, name: string): Promise<void> {
  await page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: true });
}

const text = (page: Page, selector: string) => page.$eval(selector, (e) => e.textContent ?? '');

test.before(async () => {
  if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: run npm run setup (it installs Debian's chromium), or set TALLY_CHROMIUM`);
  mkdirSync(SHOTS, { recursive: true });
  store = tempDir('tally-dash-store-');
  corpus = tempDir('tally-dash-');
  gate = join(corpus.path, 'gate');
  server = await startNatsServer({ storeDir: store.path });
  // Map tasks of held.txt wait while the gate file exists; the first delivery of a flaky.txt task fails.
  workers = startWorkers(server.url, 2, { TALLY_TEST_HOOKS: JSON.stringify({ holdWhenInputIncludes: 'held.txt', holdWhileFileExists: gate, failWhenInputIncludes: 'flaky.txt', failDeliveries: 1 }) });
  dashboard = await startDashboard(['--server', server.url]);
  browser = await puppeteer.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [...(process.getuid?.() === 0 ? ['--no-sandbox'] : []), '--disable-gpu', '--disable-dev-shm-usage'],
  });
});

test.after.always(async () => {
  await browser?.close().catch(() => undefined);
  if (dashboard) await stopDashboard(dashboard);
  await workers?.stop();
  await server?.stop();
  store?.remove();
  corpus?.remove();
});

/** Lines of words; the hostile word is the most frequent one. */
function writeCorpus(): { files: string[]; bytes: number } {
  const line = (i: number) => `${HOSTILE_WORD} ${HOSTILE_WORD} ${HOSTILE_WORD} alpha beta beta gamma w${i % 50}\n`;
  const free = Array.from({ length: 800 }, (_, i) => line(i)).join('');
  const held = Array.from({ length: 400 }, (_, i) => line(i + 7)).join('');
  const files = [join(corpus.path, HOSTILE_FILE), join(corpus.path, 'held.txt')];
  writeFileSync(files[0]!, free);
  writeFileSync(files[1]!, held);
  return { files, bytes: files.reduce((sum, f) => sum + statSync(f).size, 0) };
}

let inputBytes = 0;

test.serial('a count job: listed, its progress shown while it runs, at the end the top words of `tally result`, hostile text shown as text', async (t) => {
  const { files, bytes } = writeCorpus();
  inputBytes = bytes;
  writeFileSync(gate, '');
  const jobs = await newPage();
  await jobs.goto(dashboard.url, { waitUntil: 'domcontentloaded' });
  await jobs.waitForFunction(() => document.getElementById('link')?.dataset.connected === 'true');
  const run = spawnTally(['count', ...files, '--server', server.url, '--tokenizer', 'whitespace', '--chunk-size', '4K', '--reducers', '2', '--top', '20', '--no-progress']);
  const finished = collect(run);
  try {
    // The jobs page lists it as soon as its record is written.
    const row = await jobs.waitForSelector('#jobs tbody tr[data-job]', { timeout: 60_000 });
    jobId = (await row!.evaluate((e) => e.getAttribute('data-job'))) ?? '';
    t.regex(jobId, /^[a-z0-9-]+$/);
    t.is(await row!.$eval('td:nth-child(2)', (e) => e.textContent), 'count');
    // The file name is text in the arguments cell.
    t.true((await row!.$eval('td.args', (e) => e.textContent ?? '')).includes(HOSTILE_FILE));

    // The job page while held: some tasks done, not all, a chart of what was seen.
    const page = await newPage();
    await page.goto(`${new URL(dashboard.url).origin}/jobs/${jobId}`, { waitUntil: 'domcontentloaded' });
    await page.waitForFunction(
      () => {
        const m = /^(\d+)\/(\d+)$/.exec(document.getElementById('tasks')?.textContent ?? '');
        return document.getElementById('status')?.textContent === 'running' && m !== null && Number(m[1]) > 0 && Number(m[1]) < Number(m[2]);
      },
      { timeout: 60_000 },
    );
    await page.waitForSelector('#chart .uplot canvas', { timeout: 60_000 });
    // The top words as they form, from the tasks folded so far, with bounds; and who did them.
    await page.waitForSelector('#forming tbody tr', { timeout: 60_000 });
    await page.waitForSelector('#shares tbody tr', { timeout: 60_000 });
    await screenshot(page, 'job-running');
    const forming = await page.$$eval('#forming tbody tr', (rows) => rows.map((r) => Array.from(r.querySelectorAll('td'), (td: { textContent: string | null }) => td.textContent ?? '')));
    const coverage = /\(([\d.]+)% of the input folded\)/.exec(await text(page, '#live h2'));
    t.truthy(coverage, 'the table says how much of the input it covers');
    t.true(Number(coverage![1]) > 0 && Number(coverage![1]) < 100, `covers ${coverage![1]}% while held`);
    t.is(forming[0]![1], HOSTILE_WORD, 'the most frequent word leads while the job forms, as text');
    const formingShares = await page.$$eval('#shares tbody tr', (rows) => rows.map((r) => r.querySelector('td')!.textContent ?? ''));
    for (const worker of formingShares) t.regex(worker, /^[^:]+:\d+$/);
    t.regex(await text(page, '#kind'), /^count$/);
    // No ETA before a measured rate; once there is one, with its spread and what it rests on.
    t.regex(await text(page, '#eta'), /^(not yet: no measured rate|[\d.]+ (s|min|h)( ± [\d.]+ (s|min|h)| \(could be much longer\)) at .+\/s \(from \d+ samples\))$/);

    // Let the held tasks go: the job ends, and the page shows the stored top words.
    rmSync(gate);
    const result = await finished;
    t.is(result.code, 0, result.stderr);
    await page.waitForSelector('#top tbody tr', { timeout: 60_000 });
    t.is(await text(page, '#status'), 'done');
    t.is(await text(page, '#eta'), '');
    const shown = await page.$$eval('#top tbody tr', (rows) => rows.map((r) => [r.querySelector('.word')!.textContent, Number(r.lastElementChild!.textContent)]));
    const stored = await runTally(['result', jobId, '--server', server.url, '--format', 'json', '--top', '20']);
    t.is(stored.code, 0, stored.stderr);
    const storedResult = JSON.parse(stored.stdout) as { counts: [string, number][]; tasks: number };
    t.deepEqual(shown, storedResult.counts);
    // What was shown while it formed was within its bounds: at least no more than the final count.
    const finalCount = new Map<string, number>();
    for (const word of files.map((f) => readFileSync(f, 'utf8')).join('\n').split(/\s+/)) if (word !== '') finalCount.set(word, (finalCount.get(word) ?? 0) + 1);
    for (const [, word, atLeast] of forming) t.true(Number(atLeast) <= (finalCount.get(word!) ?? 0), `${word}: at least ${atLeast}, final ${finalCount.get(word!)}`);
    // The final table replaced the forming one; the workers' shares add up to every map task.
    t.is(await page.$$eval('#forming', (e) => e.length), 0);
    await page.waitForFunction((tasks) => Array.from(document.querySelectorAll('#shares tbody tr') as unknown as Array<{ children: Array<{ textContent: string }> }>).reduce((sum, r) => sum + Number(r.children[1]!.textContent), 0) === tasks, { timeout: 30_000 }, storedResult.tasks);
    const workerPids = ((await runTally(['workers', '--server', server.url, '--format', 'json'])).stdout.match(/"pid":\s*\d+/g) ?? []).map((m) => m.replace(/\D/g, ''));
    for (const worker of await page.$$eval('#shares tbody tr', (rows) => rows.map((r) => r.querySelector('td')!.textContent ?? ''))) t.true(workerPids.includes(worker.split(':').pop()!), `${worker} is one of the workers`);
    t.is(shown[0]![0], HOSTILE_WORD);
    // Rendered as text: no element was made of it, no script ran.
    t.is(await page.$$eval('img', (e) => e.length), 0);
    t.is(await jobs.$$eval('img', (e) => e.length), 0);
    t.deepEqual(dialogs, []);
    await screenshot(page, 'job-done');

    // The jobs page follows: done, all tasks. (In front: a background tab runs no animation
    // frames, which puppeteer's waits poll on.)
    await jobs.bringToFront();
    await jobs.waitForFunction((id) => document.querySelector(`#jobs tr[data-job="${id}"] td:nth-child(4)`)?.textContent === 'done', { timeout: 60_000 }, jobId);
    t.is(await jobs.$$eval('#jobs tbody tr', (rows) => rows.length), 1);
    // The filters: by status and by kind.
    await jobs.select('#filter-status', 'failed');
    await jobs.waitForFunction(() => document.querySelectorAll('#jobs tbody tr').length === 0);
    await jobs.select('#filter-status', 'done');
    await jobs.select('#filter-kind', 'count');
    await jobs.waitForFunction(() => document.querySelectorAll('#jobs tbody tr').length === 1);
    await screenshot(jobs, 'jobs');
    await page.close();
    await jobs.close();
  } finally {
    if (existsSync(gate)) rmSync(gate);
    await finished;
  }
});

test.serial('the workers page lists the 2 worker processes', async (t) => {
  const listed = await runTally(['workers', '--server', server.url, '--format', 'json']);
  const pids = (JSON.parse(listed.stdout) as Array<{ pid: number }>).map((w) => w.pid).sort();
  t.is(pids.length, 2);
  const page = await newPage();
  await page.goto(`${new URL(dashboard.url).origin}/workers`, { waitUntil: 'domcontentloaded' });
  await page.waitForFunction(() => document.querySelectorAll('#workers tbody tr:not(.gone)').length === 2, { timeout: 30_000 });
  const shown = await page.$$eval('#workers tbody tr', (rows) => rows.map((r) => Number(r.getAttribute('data-pid'))));
  t.deepEqual(shown.sort(), pids);
  const states = await page.$$eval('#workers tbody td.state', (cells) => cells.map((c) => c.textContent));
  for (const state of states) t.regex(state ?? '', /^(idle|busy)/);
  // Recent throughput once two discoveries (2 s apart) have seen them.
  await page.waitForFunction(() => Array.from(document.querySelectorAll('#workers tbody tr:not(.gone) td.rate') as unknown as Array<{ textContent: string }>).every((td) => /^\d+\.\d$/.test(td.textContent)), { timeout: 30_000 });
  await screenshot(page, 'workers');
  await page.close();
});

/** Parses the Prometheus text format: every sample line as name{labels} → value, with TYPE lines checked. */
function parseMetrics(body: string): { samples: Map<string, number>; types: Map<string, string> } {
  const samples = new Map<string, number>();
  const types = new Map<string, string>();
  for (const line of body.split('\n')) {
    if (line === '') continue;
    const type = /^# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (counter|gauge|histogram|summary|untyped)$/.exec(line);
    if (type) {
      types.set(type[1]!, type[2]!);
      continue;
    }
    if (line.startsWith('# HELP ')) continue;
    const sample = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(?:[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\]|\\.)*",?)*\})? (-?[0-9.e+]+|NaN|\+Inf|-Inf)$/.exec(line);
    if (!sample) throw new Error(`not a Prometheus text line: ${line}`);
    samples.set(`${sample[1]}${sample[2] ?? ''}`, Number(sample[3]));
  }
  return { samples, types };
}

test.serial('/metrics parses as the Prometheus text format and its counters match the job', async (t) => {
  t.truthy(jobId, 'needs the job of the first test');
  const response = await fetch(`${new URL(dashboard.url).origin}/metrics`);
  t.is(response.status, 200);
  t.regex(response.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
  let { samples, types } = parseMetrics(await response.text());
  // The words come from the stored result, read once the job was seen to end.
  const stored = JSON.parse((await runTally(['result', jobId, '--server', server.url, '--format', 'json', '--top', '1'])).stdout) as { totalWords: number };
  await waitFor(async () => {
    ({ samples, types } = parseMetrics(await (await fetch(`${new URL(dashboard.url).origin}/metrics`)).text()));
    return samples.has('tally_counted_words_total{kind="count"}');
  }, 'the words counted in /metrics');
  t.is(samples.get('tally_counted_words_total{kind="count"}'), stored.totalWords);
  const jobs = await runTally(['jobs', '--server', server.url, '--format', 'json']);
  const record = (JSON.parse(jobs.stdout) as Array<{ id: string; progress: { tasksDone: number; weightDone: number } }>).find((r) => r.id === jobId)!;
  t.is(types.get('tally_tasks_done_total'), 'counter');
  t.is(types.get('tally_job_duration_seconds'), 'histogram');
  t.is(samples.get('tally_jobs{status="done"}'), 1);
  t.is(samples.get('tally_jobs{status="running"}'), 0);
  t.is(samples.get('tally_tasks_done_total{kind="count"}'), record.progress.tasksDone);
  t.is(samples.get('tally_counted_bytes_total{kind="count"}'), record.progress.weightDone);
  t.is(record.progress.weightDone, inputBytes);
  t.is(samples.get('tally_job_duration_seconds_count{kind="count",status="done"}'), 1);
  t.is(samples.get('tally_workers_alive'), 2);
  t.is(samples.get('tally_nats_connected'), 1);
});

test.serial('Cancel on the job page cancels a running job through its coordinator (exit 130, record cancelled); only from the page itself', async (t) => {
  const origin = new URL(dashboard.url).origin;
  const input = join(corpus.path, 'held.txt');
  writeFileSync(gate, '');
  const run = spawnTally(['count', input, '--server', server.url, '--chunk-size', '4K', '--no-progress']);
  const finished = collect(run);
  try {
    const jobs = await newPage();
    await jobs.goto(origin, { waitUntil: 'domcontentloaded' });
    await jobs.waitForFunction(() => document.querySelectorAll('#jobs tbody tr').length === 2, { timeout: 60_000 });
    const id = await jobs.$eval('#jobs tbody tr:first-child', (e) => e.getAttribute('data-job') ?? '');
    t.not(id, jobId);
    await jobs.close();
    // Not from elsewhere: without the page's header, or from another origin.
    t.is((await fetch(`${origin}/api/jobs/${id}/cancel`, { method: 'POST' })).status, 403);
    t.is((await fetch(`${origin}/api/jobs/${id}/cancel`, { method: 'POST', headers: { 'x-tally-action': 'cancel', origin: 'http://evil.example' } })).status, 403);
    const page = await newPage();
    await page.goto(`${origin}/jobs/${id}`, { waitUntil: 'domcontentloaded' });
    await page.waitForFunction(() => document.getElementById('status')?.textContent === 'running', { timeout: 60_000 });
    await page.waitForSelector('#cancel:not([hidden])', { timeout: 30_000 });
    await page.click('#cancel');
    await page.waitForFunction(() => document.getElementById('status')?.textContent === 'cancelled', { timeout: 60_000 });
    t.is(await text(page, '#cancel-note'), 'its coordinator is cancelling the job');
    t.true(await page.$eval('#cancel', (e) => (e as unknown as { hidden: boolean }).hidden));
    await screenshot(page, 'job-cancelled');
    await page.close();
    const result = await finished;
    t.is(result.code, 130, result.stderr);
    t.regex(result.stderr, /cancelled from the dashboard/);
    // An ended job cannot be cancelled again.
    t.is((await fetch(`${origin}/api/jobs/${id}/cancel`, { method: 'POST', headers: { 'x-tally-action': 'cancel' } })).status, 409);
  } finally {
    if (existsSync(gate)) rmSync(gate);
    await finished;
  }
});

test.serial('a task whose first delivery fails shows as retried and redelivered, with its input; a sum shows its running value', async (t) => {
  const flaky = join(corpus.path, 'flaky.txt');
  writeFileSync(flaky, 'one two two three three three\n');
  const run = await runTally(['count', flaky, '--server', server.url, '--format', 'json', '--no-progress']);
  t.is(run.code, 0, run.stderr);
  const job = (JSON.parse(run.stdout) as { job: string; totalWords: number }).job;
  const page = await newPage();
  await page.goto(`${new URL(dashboard.url).origin}/jobs/${job}`, { waitUntil: 'domcontentloaded' });
  await page.waitForSelector('#redelivered tbody tr', { timeout: 30_000 });
  const cells = (selector: string) => page.$$eval(`${selector} tbody tr`, (rows) => rows.map((r) => Array.from(r.querySelectorAll('td'), (td: { textContent: string | null }) => td.textContent ?? '')));
  const retried = await cells('#retried');
  t.is(retried.length, 1);
  const [task, input, delivery, worker, error] = retried[0]!;
  t.regex(input!, /flaky\.txt/);
  t.is(delivery, '1');
  t.regex(worker!, /^[^:]+:\d+$/);
  t.regex(error!, /injected failure of delivery 1/);
  const redelivered = await cells('#redelivered');
  t.deepEqual(redelivered.map((row) => [row[0], row[1], row[2]]), [[task, input, '2']]);
  await screenshot(page, 'job-redelivered');
  await page.close();

  // A dashboard that did not see the job run shows the dead-letter detail of its record.
  const later = await startDashboard(['--server', server.url]);
  try {
    const recordPage = await newPage();
    await recordPage.goto(`${new URL(later.url).origin}/jobs/${job}`, { waitUntil: 'domcontentloaded' });
    await recordPage.waitForSelector('#incidents tbody tr', { timeout: 30_000 });
    const detail = await recordPage.$$eval('#incidents tbody tr', (rows) => rows.map((r) => Array.from(r.querySelectorAll('td'), (td: { textContent: string | null }) => td.textContent ?? '')));
    t.deepEqual(
      detail.map((row) => [row[4], row[5]]),
      [
        ['delivery failed', '1'],
        ['done', '2'],
      ],
    );
    t.regex(detail[0]![1]!, /flaky\.txt/);
    t.is(detail[0]![2], 'retried, redelivered');
    await recordPage.close();
  } finally {
    t.is((await stopDashboard(later)).code, 0);
  }

  // The same, counted in /metrics.
  const metrics = parseMetrics(await (await fetch(new URL('/metrics', dashboard.url))).text()).samples;
  t.true((metrics.get('tally_tasks_redelivered_total{kind="count"}') ?? 0) >= 1);
  t.true((metrics.get('tally_task_retries_total{kind="count"}') ?? 0) >= 1);

  const sum = await runTally(['sum', '1', '1000000', '--tasks', '6', '--server', server.url, '--format', 'json', '--no-progress']);
  t.is(sum.code, 0, sum.stderr);
  const sumPage = await newPage();
  await sumPage.goto(`${new URL(dashboard.url).origin}/jobs/${(JSON.parse(sum.stdout) as { job: string }).job}`, { waitUntil: 'domcontentloaded' });
  await sumPage.waitForSelector('#running-value', { timeout: 30_000 });
  // Gauss: 1 + … + n = n(n+1)/2, all six sub-ranges folded.
  t.is(await text(sumPage, '#running-value strong'), String((1_000_000 * 1_000_001) / 2));
  await sumPage.close();
});

test.serial('worker processes that stop are marked gone on the workers page', async (t) => {
  const page = await newPage();
  await page.goto(`${new URL(dashboard.url).origin}/workers`, { waitUntil: 'domcontentloaded' });
  await page.waitForFunction(() => document.querySelectorAll('#workers tbody tr:not(.gone)').length === 2, { timeout: 30_000 });
  const stopped = await workers.stop();
  t.is(stopped.code, 0, stopped.stderr);
  await page.waitForFunction(() => document.querySelectorAll('#workers tbody tr.gone').length === 2, { timeout: 30_000 });
  t.deepEqual(await page.$$eval('#workers tbody td.state', (cells) => cells.map((c) => c.textContent)), ['gone', 'gone']);
  t.is(await text(page, '#workers-count'), '0 alive, 2 gone');
  await screenshot(page, 'workers-gone');
  await page.close();
});

test.serial('off loopback a token is required: made and printed once when not given; a missing or wrong one is refused with 401', async (t) => {
  const open = await startDashboard(['--server', server.url, '--host', '0.0.0.0']);
  try {
    const printed = new URL(open.url);
    const token = printed.searchParams.get('token');
    t.truthy(token);
    const base = `http://127.0.0.1:${printed.port}`;
    for (const path of ['/', '/metrics', '/events', '/assets/app.js', '/workers']) {
      t.is((await fetch(`${base}${path}`)).status, 401, `${path} without a token`);
      t.is((await fetch(`${base}${path}`, { headers: { authorization: 'Bearer wrong-token-wrong-token' } })).status, 401, `${path} with a wrong token`);
      t.is((await fetch(`${base}${path}`, { headers: { cookie: 'tally_dashboard_token=wrong' } })).status, 401, `${path} with a wrong cookie`);
    }
    t.is((await fetch(`${base}/?token=wrong`, { redirect: 'manual' })).status, 401);
    const metrics = await fetch(`${base}/metrics`, { headers: { authorization: `Bearer ${token}` } });
    t.is(metrics.status, 200);
    t.false((await metrics.text()).includes(token!));
    // The printed address works in a browser: the token becomes a cookie, the pages follow the stream.
    const page = await newPage();
    await page.goto(`${base}/?token=${token}`, { waitUntil: 'domcontentloaded' });
    t.false(page.url().includes('token='));
    await page.waitForFunction((id) => document.querySelector(`#jobs tr[data-job="${id}"]`) !== null, { timeout: 30_000 }, jobId);
    t.false((await page.content()).includes(token!));
    await screenshot(page, 'jobs-with-token');
    await page.close();
  } finally {
    const stopped = await stopDashboard(open);
    t.is(stopped.code, 0);
    t.false(stopped.stderr.includes(new URL(open.url).searchParams.get('token') ?? '\u0000'));
  }
  // On loopback without a token, only loopback names are answered (no DNS rebinding).
  const origin = new URL(dashboard.url).origin;
  const rebound = await new Promise<number>((resolve, reject) => {
    import('node:http').then(({ get }) => get(`${origin}/`, { headers: { host: 'evil.example:8040' } }, (res) => resolve(res.statusCode ?? 0)).on('error', reject), reject);
  });
  t.is(rebound, 403);
  const page = await fetch(`${origin}/`);
  t.regex(page.headers.get('content-security-policy') ?? '', /script-src 'self'/);
  t.notRegex(page.headers.get('content-security-policy') ?? '', /unsafe-inline/);
});

test.serial('ten open pages cost the NATS server what one costs: one watch of the job records', async (t) => {
  const origin = new URL(dashboard.url).origin;
  const nc = await connect({ servers: server.url });
  const streams: Array<Awaited<ReturnType<typeof openStream>>> = [];
  try {
    const jsm = await jetstreamManager(nc);
    // Consumers of the records now: the dashboard's watch, and listings of commands that ran
    // before, which the server drops once idle (so the count can only fall meanwhile).
    const before = (await jsm.streams.info('KV_tally-jobs')).state.consumer_count;
    t.true(before >= 1);
    streams.push(...(await Promise.all(Array.from({ length: 10 }, () => openStream(origin, 'view=jobs')))));
    for (const stream of streams) t.true((stream.snapshot.jobs as Array<{ id: string }>).some((j) => j.id === jobId));
    t.true((await jsm.streams.info('KV_tally-jobs')).state.consumer_count <= before);
  } finally {
    for (const stream of streams) stream.close();
    await nc.close();
  }
});

test.serial('with no --server it shows the local embedded store, and SIGTERM leaves nothing behind', async (t) => {
  const data = tempDir('tally-dash-data-');
  try {
    const env = cleanEnv({ TALLY_DATA_DIR: data.path });
    const input = join(corpus.path, 'embedded-words.txt');
    writeFileSync(input, 'one two two three three three\n');
    const run = await runTally(['count', input, '--workers', '1', '--format', 'json'], { env });
    t.is(run.code, 0, run.stderr);
    const id = (JSON.parse(run.stdout) as { job: string }).job;
    const local = await startDashboard([], env);
    try {
      const page = await newPage();
      await page.goto(local.url, { waitUntil: 'domcontentloaded' });
      await page.waitForFunction((job) => document.querySelector(`#jobs tr[data-job="${job}"] td:nth-child(4)`)?.textContent === 'done', { timeout: 30_000 }, id);
      t.is(await page.$$eval('#jobs tbody tr', (rows) => rows.length), 1);
      t.is(await text(page, '#link'), 'connected to the local embedded server');
      await screenshot(page, 'embedded');
      await page.close();
    } finally {
      const stopped = await stopDashboard(local);
      t.is(stopped.code, 0, stopped.stderr);
    }
    // The embedded server it started is stopped with it.
    t.false(existsSync(join(data.path, 'server.lock')));
  } finally {
    data.remove();
  }
});

test.serial("the reader role suffices to look; no NATS password reaches a page, /metrics or the dashboard's output, a wrong one shows on the page as unreachable", async (t) => {
  const passwords = rolePasswords();
  const secure = await startSecureServer(secureConfig('tally.conf'), roleServerEnv(passwords));
  const wrong = newSecret('X');
  const dashboards: Dashboard[] = [];
  try {
    const job = await runJobWithRoles(passwords, ['--server', secure.url]);
    t.deepEqual(job.failures, []);
    const reader = await startDashboard(['--server', secure.url], cleanEnv({ NATS_USER: 'reader', NATS_PASSWORD: passwords.reader }));
    dashboards.push(reader);
    const page = await newPage();
    await page.goto(reader.url, { waitUntil: 'domcontentloaded' });
    await page.waitForFunction((id) => document.querySelector(`#jobs tr[data-job="${id}"] td:nth-child(4)`)?.textContent === 'done', { timeout: 30_000 }, job.job!);
    // Read-only: the reader role may not cancel, so the pages never offer it.
    let link: { connected?: boolean; canCancel?: boolean | null } = {};
    await waitFor(async () => {
      const stream = await openStream(new URL(reader.url).origin, 'view=jobs');
      stream.close();
      link = stream.snapshot.link as typeof link;
      return link.canCancel !== null;
    }, 'the reader dashboard to learn whether it may cancel');
    t.like(link, { connected: true, canCancel: false });
    const metrics = await (await fetch(`${new URL(reader.url).origin}/metrics`)).text();
    t.regex(metrics, /tally_jobs\{status="done"\} 1/);
    // A wrong password: the dashboard stays up and the page says what is wrong, without the password.
    const denied = await startDashboard(['--server', secure.url], cleanEnv({ NATS_USER: 'reader', NATS_PASSWORD: wrong }));
    dashboards.push(denied);
    const deniedPage = await newPage();
    await deniedPage.goto(denied.url, { waitUntil: 'domcontentloaded' });
    await deniedPage.waitForFunction(() => /no connection to the NATS server/.test(document.getElementById('link')?.textContent ?? ''), { timeout: 30_000 });
    t.regex(await text(deniedPage, '#link'), /authori[sz]ation|credential|user/i);
    await screenshot(deniedPage, 'wrong-password');
    const deniedMetrics = await (await fetch(`${new URL(denied.url).origin}/metrics`)).text();
    t.regex(deniedMetrics, /tally_nats_connected 0/);
    t.is(denied.child.exitCode, null);
    const pages = { reader: await page.content(), denied: await deniedPage.content(), metrics, deniedMetrics };
    await page.close();
    await deniedPage.close();
    const outputs: Record<string, string> = { ...pages };
    for (const [i, d] of dashboards.entries()) {
      const stopped = await stopDashboard(d);
      t.is(stopped.code, 0, stopped.stderr);
      outputs[`dashboard ${i}`] = stopped.stdout + stopped.stderr;
    }
    for (const [name, output] of Object.entries(outputs)) {
      for (const secret of [...Object.values(passwords), wrong]) t.false(output.includes(secret), `${name} shows a password`);
    }
  } finally {
    for (const d of dashboards) await stopDashboard(d);
    await secure.stop();
  }
});

test.serial('--read-only never offers to cancel, though the credentials would allow it', async (t) => {
  const readOnly = await startDashboard(['--server', server.url, '--read-only']);
  try {
    let link: { connected?: boolean; canCancel?: boolean | null } = {};
    await waitFor(async () => {
      const stream = await openStream(new URL(readOnly.url).origin, 'view=jobs');
      stream.close();
      link = stream.snapshot.link as typeof link;
      return link.canCancel !== null;
    }, 'the dashboard to settle whether it may cancel');
    t.like(link, { connected: true, canCancel: false });
  } finally {
    t.is((await stopDashboard(readOnly)).code, 0);
  }
  // The same server and credentials without --read-only: allowed.
  const stream = await openStream(new URL(dashboard.url).origin, 'view=jobs');
  stream.close();
  t.like(stream.snapshot.link as object, { connected: true, canCancel: true });
});

test.serial('bad --port or --host: one line, exit 2', async (t) => {
  for (const args of [['--port', '70000'], ['--port', 'abc'], ['--host', 'not a host'], ['--host', '10.255.255.1', '--access-token', 'abcdefghijklmnopqrstuvwxyz']]) {
    const run = await runTally(['dashboard', '--server', server.url, ...args]);
    t.is(run.code, 2, `${args.join(' ')}: ${run.stderr}`);
    t.is(run.stderr.trim().split('\n').length, 1, run.stderr);
    t.regex(run.stderr, /^tally: --(port|host)/);
  }
  // A port in use.
  const port = new URL(dashboard.url).port;
  const taken = await runTally(['dashboard', '--server', server.url, '--port', port]);
  t.is(taken.code, 2, taken.stderr);
  t.regex(taken.stderr, /^tally: --port: \d+ is in use/);
});

test.serial('NATS server gone: the page says so, the dashboard stays up, and both recover when it is back', async (t) => {
  const page = await newPage();
  await page.goto(`${new URL(dashboard.url).origin}/`, { waitUntil: 'domcontentloaded' });
  await page.waitForFunction(() => document.getElementById('link')?.dataset.connected === 'true');
  const port = server.port;
  await server.stop();
  await page.waitForFunction(() => document.getElementById('link')?.dataset.connected === 'false', { timeout: 30_000 });
  t.regex(await text(page, '#link'), /no connection to the NATS server/);
  await screenshot(page, 'server-gone');
  t.is(dashboard.child.exitCode, null);
  server = await startNatsServer({ storeDir: store.path, port });
  await page.waitForFunction(() => document.getElementById('link')?.dataset.connected === 'true', { timeout: 60_000 });
  // The watch started again: the job is still listed.
  await page.waitForFunction((id) => document.querySelector(`#jobs tr[data-job="${id}"]`) !== null, { timeout: 30_000 }, jobId);
  await page.close();
  const stopped = await stopDashboard(dashboard);
  t.is(stopped.code, 0, stopped.stderr);
});

test('the ETA: none without a total, before 3 samples or without progress; from the fitted rate, with a spread that grows with noise', (t) => {
  const line = (n: number, noise = 0): ProgressSample[] => Array.from({ length: n }, (_, i) => ({ t: 1000 * i, tasksDone: i, weightDone: 100 * i + (i % 2 === 0 ? noise : -noise), rate: null }));
  t.is(estimateEta(line(5), null), undefined);
  t.is(estimateEta(line(2), 10_000), undefined);
  t.is(estimateEta(line(5).map((s) => ({ ...s, weightDone: 7 })), 10_000), undefined);
  const exact = estimateEta(line(5), 1000)!;
  t.is(exact.rate, 100);
  t.is(exact.seconds, 6); // 400 done at the last sample, 600 left at 100/s
  t.is(exact.plusMinus, 0);
  const noisy = estimateEta(line(10, 30), 2000)!;
  t.true(noisy.plusMinus !== null && noisy.plusMinus > 0);
  // 870 done at the last sample (900 less its noise).
  t.true(Math.abs(noisy.seconds - (2000 - 870) / noisy.rate) < 1e-9);
});
