/**
 * `tally count … --dashboard`, the real CLI with real worker processes: in the embedded default
 * and with --server, a count job held part way by a worker test hook, so that "while it runs"
 * is an event, not a race. While it is held, the address it printed serves the job's page and
 * its event stream shows the job running; stdout is what the same job prints without the flag,
 * the exit code 0, and once the command has exited nothing listens on the port.
 */
import test from 'ava';
import { createServer, connect as tcpConnect, type Server } from 'node:net';
import { existsSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { cleanEnv, collect, runTally, spawnTally, startTestServer, startWorkers, tempDir, type TestServer, type WorkerFleet } from './helpers/tally.js';
import { waitFor } from './helpers/watch.js';
import { snapshot } from './helpers/events.js';

/** The one line --dashboard writes to stderr. */
const LIVE_LINE = /^tally: live view of job (\S+) at (http:\/\/127\.0\.0\.1:(\d+)\/jobs\/(\S+))$/gm;
/** The attached dashboard's usual port: taken here, so the test sees it fall back to a free one. */
const USUAL_PORT = 8040;

let dir: ReturnType<typeof tempDir>;
let blocker: Server | undefined;

test.before(async () => {
  dir = tempDir('tally-dash-attached-');
  const words = (n: number) => Array.from({ length: n }, (_, i) => `alpha beta beta gamma w${i % 40}\n`).join('');
  // The free file's tasks get done, the held file's wait for the test.
  writeFileSync(join(dir.path, 'free.txt'), words(800));
  writeFileSync(join(dir.path, 'held.txt'), words(600));
  // Taken by someone else already is as good.
  blocker = await new Promise<Server | undefined>((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(undefined));
    server.listen(USUAL_PORT, '127.0.0.1', () => resolve(server));
  });
});

test.after.always(async () => {
  await new Promise((resolve) => (blocker ? blocker.close(resolve) : resolve(undefined)));
  dir?.remove();
});

/** Resolves true when something accepts a TCP connection on 127.0.0.1:port. */
function listening(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = tcpConnect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

interface JobView {
  id: string;
  status: string;
  tasksDone: number;
  tasksTotal: number | null;
}

for (const mode of ['embedded', '--server'] as const) {
  test.serial(`${mode}: a count with --dashboard serves its live view while it runs; stdout as without the flag, exit 0, port closed after`, async (t) => {
    const gate = join(dir.path, `gate-${mode}`);
    const hooks = { TALLY_TEST_HOOKS: JSON.stringify({ holdWhenInputIncludes: 'held.txt', holdWhileFileExists: gate }) };
    const data = tempDir('tally-dash-attached-data-');
    let server: TestServer | undefined;
    let workers: WorkerFleet | undefined;
    try {
      let where: string[];
      let env: NodeJS.ProcessEnv;
      if (mode === 'embedded') {
        // The command's own workers inherit the hook.
        where = ['--workers', '1'];
        env = cleanEnv({ TALLY_DATA_DIR: data.path, ...hooks });
      } else {
        server = await startTestServer();
        workers = startWorkers(server.url, 1, hooks);
        where = ['--server', server.url];
        env = cleanEnv({ TALLY_DATA_DIR: data.path });
      }
      const args = ['count', join(dir.path, 'free.txt'), join(dir.path, 'held.txt'), '--chunk-size', '4K', '--reducers', '1', '--format', 'json', '--no-progress', ...where];
      writeFileSync(gate, '');
      const child = spawnTally([...args, '--dashboard'], { env });
      let stderr = '';
      child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
      const run = collect(child);
      let port = 0;
      try {
        await waitFor(() => new RegExp(LIVE_LINE.source, 'm').test(stderr) || child.exitCode !== null, 'the live view line');
        const [, job, url, portText, pathJob] = new RegExp(LIVE_LINE.source, 'm').exec(stderr) ?? [];
        t.truthy(url, stderr);
        t.is(pathJob, job);
        port = Number(portText);
        t.not(port, USUAL_PORT, 'the usual port is taken: any free one');
        const page = await fetch(url!);
        t.is(page.status, 200);
        t.regex(page.headers.get('content-type') ?? '', /^text\/html/);
        // The dashboard connects in the background; once it has, it sees this very job held part way.
        let seen: JobView | null = null;
        let link: { connected?: boolean; server?: string } = {};
        await waitFor(async () => {
          const first = await snapshot(new URL(url!).origin, `view=job&job=${job}`);
          seen = first.job as JobView | null;
          link = first.link as typeof link;
          // Its total is known once the input is split (results may come before that).
          return seen !== null && seen.tasksDone > 0 && seen.tasksTotal !== null;
        }, 'the job in the live view, some tasks done', 60_000);
        t.like(seen, { id: job, status: 'running' });
        t.true(seen!.tasksTotal !== null && seen!.tasksDone < seen!.tasksTotal);
        t.like(link, { connected: true, server: mode === 'embedded' ? 'the local embedded server' : server!.url });
        const metrics = await (await fetch(`${new URL(url!).origin}/metrics`)).text();
        t.regex(metrics, /^tally_jobs\{status="running"\} 1$/m);
      } finally {
        rmSync(gate, { force: true });
      }
      const result = await run;
      t.is(result.code, 0, result.stderr);
      t.is([...result.stderr.matchAll(LIVE_LINE)].length, 1, result.stderr);
      t.false(await listening(port), 'the port is closed once the command exited');
      // The same job without the flag prints the same (but for its id).
      const plain = await runTally(args, { env });
      t.is(plain.code, 0, plain.stderr);
      t.notRegex(plain.stderr, /live view/);
      const withView = JSON.parse(result.stdout) as Record<string, unknown>;
      const without = JSON.parse(plain.stdout) as Record<string, unknown>;
      t.not(withView.job, without.job);
      t.deepEqual({ ...withView, job: '' }, { ...without, job: '' });
      if (mode === 'embedded') t.false(existsSync(join(data.path, 'server.lock')), 'the embedded server stopped with the command');
    } finally {
      rmSync(gate, { force: true });
      await workers?.stop();
      await server?.stop();
      data.remove();
    }
  });
}
