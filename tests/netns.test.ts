/**
 * Workers on other "machines": the nats-server and the coordinator run in one network
 * namespace, two `tally worker`s in two more, each joined to the server's namespace by its own
 * veth pair with addresses in 10.200.0.0/16 that exist only inside these namespaces (nothing is
 * added to the root namespace or any real interface). Mid-job one worker's link is cut
 * (`ip link set down`) for longer than the ack wait: its task in hand is redelivered to the
 * other worker; when the link comes back the cut-off worker's late result reaches the server
 * too, and nothing is counted twice: the result equals a fault-free run.
 *
 * Needs root and network namespaces; otherwise the test is skipped with the reason in its title,
 * and under CI=true it fails.
 */
import test from 'ava';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { readFileSync, writeFileSync, chmodSync } from 'node:fs';
import { join } from 'node:path';
import { startNatsServer, findNatsServer, type NatsServerProcess } from '../coordinator/nats-server.js';
import { REPO_ROOT, TALLY_BIN, cleanEnv, collect, tempDir, type RunResult } from './helpers/tally.js';
import { jsonLines, waitFor } from './helpers/watch.js';
import { missingNetns, testNeeding } from './helpers/capability.js';

const TAG = process.pid.toString(36).slice(-5);
const NS = { server: `tally-${TAG}-srv`, a: `tally-${TAG}-wa`, b: `tally-${TAG}-wb` };
/** Worker namespace → (veth on the server side, veth on the worker side, subnet). */
const LINKS = {
  a: { serverEnd: `t${TAG}sa`, workerEnd: `t${TAG}wa`, net: '10.200.1' },
  b: { serverEnd: `t${TAG}sb`, workerEnd: `t${TAG}wb`, net: '10.200.2' },
};
const created: string[] = [];

function ip(...args: string[]): string {
  return execFileSync('ip', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

const reason = missingNetns();
// Each map announces itself on the worker's stderr (seen from the root namespace, whatever the links).
const env = cleanEnv({ TALLY_ACK_WAIT_MS: '2000', TALLY_TEST_HOOKS: JSON.stringify({ busyMs: 120, announceMaps: true }) });
let store: { path: string; remove(): void };
let corpus: { path: string; remove(): void };
let server: NatsServerProcess;
const workers: Record<'a' | 'b', ChildProcess | null> = { a: null, b: null };
/** The inputs each worker has started to map (announceMaps hook lines), in order. */
const mapped: Record<'a' | 'b', string[]> = { a: [], b: [] };
/** When this process read each worker's latest announcement of a map. */
const lastMapSeen: Record<'a' | 'b', number> = { a: 0, b: 0 };
let watcher: ChildProcess | null = null;
/** Every result publish seen on the server, duplicates included. */
const published: Array<{ at: number; subject: string; worker: string }> = [];

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Spawns `command` inside namespace `ns`. */
function inNs(ns: string, command: string, args: string[], extraEnv: NodeJS.ProcessEnv = env): ChildProcess {
  return spawn('ip', ['netns', 'exec', ns, command, ...args], { cwd: REPO_ROOT, env: extraEnv, stdio: ['ignore', 'pipe', 'pipe'] });
}

function tallyInServerNs(args: string[]): { child: ChildProcess; done: Promise<RunResult> } {
  const child = inNs(NS.server, process.execPath, [TALLY_BIN, ...args, '--server', server.url, '--no-progress']);
  return { child, done: collect(child, Date.now(), 150_000) };
}

if (reason) {
  testNeeding(reason, 'workers in other network namespaces survive a cut link', () => undefined);
} else {
  test.before(async () => {
    for (const ns of Object.values(NS)) {
      ip('netns', 'add', ns);
      created.push(ns);
      ip('-n', ns, 'link', 'set', 'lo', 'up');
    }
    for (const side of ['a', 'b'] as const) {
      const link = LINKS[side];
      // Both ends are created directly inside our namespaces.
      ip('link', 'add', 'name', link.serverEnd, 'netns', NS.server, 'type', 'veth', 'peer', 'name', link.workerEnd, 'netns', NS[side]);
      ip('-n', NS.server, 'addr', 'add', `${link.net}.1/24`, 'dev', link.serverEnd);
      ip('-n', NS[side], 'addr', 'add', `${link.net}.2/24`, 'dev', link.workerEnd);
      ip('-n', NS.server, 'link', 'set', link.serverEnd, 'up');
      ip('-n', NS[side], 'link', 'set', link.workerEnd, 'up');
    }
    store = tempDir('tally-netns-store-');
    corpus = tempDir('tally-netns-');
    const parts = ['de', 'ru', 'ja', 'fr'].map((l) => readFileSync(join(REPO_ROOT, 'node_modules', 'typescript', 'lib', l, 'diagnosticMessages.generated.json')));
    writeFileSync(join(corpus.path, 'big.txt'), Buffer.concat(parts));
    // nats-server inside the server namespace, listening on all of that namespace's addresses.
    const wrapper = join(store.path, 'nats-server-in-ns.sh');
    writeFileSync(wrapper, `#!/bin/sh\nexec ip netns exec ${NS.server} ${findNatsServer()} "$@"\n`);
    chmodSync(wrapper, 0o755);
    process.env.TALLY_NATS_SERVER = wrapper;
    server = await startNatsServer({ storeDir: join(store.path, 'js'), host: '0.0.0.0' });
    for (const side of ['a', 'b'] as const) {
      workers[side] = inNs(NS[side], process.execPath, [TALLY_BIN, 'worker', '--server', `nats://${LINKS[side].net}.1:${server.port}`, '--processes', '1', '--log-level', 'warn']);
      let pending = '';
      workers[side]!.stderr!.setEncoding('utf8').on('data', (chunk: string) => {
        pending += chunk;
        const lines = pending.split('\n');
        pending = lines.pop()!;
        for (const line of jsonLines(lines.join('\n'))) {
          if (line.hook !== 'map') continue;
          mapped[side].push(String(line.input));
          lastMapSeen[side] = Date.now();
        }
      });
      workers[side]!.stdout!.resume();
    }
    // Sees every result publish, accepted or refused as a duplicate, with the worker that sent it.
    const envelope = new URL('../shared/nats/envelope.js', import.meta.url).href;
    const script = `
      import { connect } from '@nats-io/transport-node';
      import { decodeResult } from ${JSON.stringify(envelope)};
      const nc = await connect({ servers: ${JSON.stringify(server.url)} });
      nc.subscribe('tally.result.>', { callback: (_e, m) => {
        let worker = '?';
        try { worker = decodeResult(m.data).header.worker; } catch {}
        process.stdout.write(JSON.stringify({ at: Date.now(), subject: m.subject, worker }) + '\\n');
      } });
      await nc.flush();
      process.stdout.write('ready\\n');`;
    watcher = inNs(NS.server, process.execPath, ['--input-type=module', '-e', script]);
    let buffer = '';
    await new Promise<void>((resolve, reject) => {
      watcher!.once('exit', (code) => reject(new Error(`result watcher exited with ${code}`)));
      watcher!.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
        buffer += chunk;
        let nl;
        while ((nl = buffer.indexOf('\n')) >= 0) {
          const line = buffer.slice(0, nl);
          buffer = buffer.slice(nl + 1);
          if (line === 'ready') resolve();
          else if (line) published.push(JSON.parse(line));
        }
      });
    });
    // Both workers registered (they reach the server through their links).
    for (let i = 0; i < 100; i++) {
      const run = await tallyInServerNs(['workers', '--format', 'json']).done;
      if (run.code === 0 && (JSON.parse(run.stdout) as unknown[]).length === 2) break;
      await sleep(200);
    }
  });

  test.after.always(async () => {
    const exited = (child: ChildProcess) => new Promise((resolve) => (child.exitCode !== null || child.signalCode !== null ? resolve(null) : child.once('exit', resolve)));
    watcher?.kill('SIGKILL');
    for (const side of ['a', 'b'] as const) {
      const child = workers[side];
      if (!child) continue;
      // A worker whose link is down could wait a long time to drain: do not wait for it.
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
      child.kill('SIGTERM');
      await exited(child);
      clearTimeout(timer);
    }
    await server?.stop();
    for (const ns of created) {
      try {
        ip('netns', 'del', ns);
      } catch {
        // already gone
      }
    }
    store?.remove();
    corpus?.remove();
  });

  /** Reduce tasks of the job: their results are on the result subjects too. */
  const REDUCERS = 2;
  const countArgs = () => ['count', join(corpus.path, 'big.txt'), '--format', 'json', '--top', '0', '--chunk-size', '16K', '--reducers', String(REDUCERS)];

  function withoutJob(stdout: string): unknown {
    const { job: _job, ...rest } = JSON.parse(stdout);
    return rest;
  }

  /** The process names (host:pid) of the worker processes of the worker in namespace `side`. */
  function workerNames(side: 'a' | 'b'): string[] {
    const pids = execFileSync('pgrep', ['-P', String(workers[side]!.pid)], { encoding: 'utf8' }).trim().split('\n').filter(Boolean);
    return pids.map((pid) => `:${pid}`);
  }

  test.serial("a worker's link is cut mid-job and restored: its task is redone elsewhere, nothing is counted twice", async (t) => {
    const clean = await tallyInServerNs(countArgs()).done;
    t.is(clean.code, 0, clean.stderr);
    const tasks = JSON.parse(clean.stdout).tasks as number;
    t.log(`fault-free: ${tasks} tasks in ${clean.ms} ms`);

    const first = published.length;
    // This job's tasks have the same inputs as the fault-free run's: only maps from here on count.
    const fromA = mapped.a.length;
    const { child, done } = tallyInServerNs(countArgs());
    while (published.length < first + 15 && child.exitCode === null) await sleep(20);
    // Cut while A is in the middle of a task (each busy-waits 120 ms): cut between two, the task
    // the server then delivers to A's open pull never reaches A, is never announced as A's, and
    // B's redoing it would go unseen (the job ended first in one CI run).
    await waitFor(() => Date.now() - lastMapSeen.a < 50 || child.exitCode !== null, 'A to start a task', 30_000);
    const namesA = workerNames('a');
    const link = LINKS.a;
    const cutAt = Date.now();
    ip('-n', NS.server, 'link', 'set', link.serverEnd, 'down');
    t.teardown(() => {
      try {
        ip('-n', NS.server, 'link', 'set', link.serverEnd, 'up');
      } catch {
        // namespace already gone
      }
    });
    // Until B starts to map a task that A had started: A's task in hand, redelivered to B once
    // its lease ran out (A cannot renew it with its link down).
    const heldByA = new Set(mapped.a.slice(fromA));
    const fromB = mapped.b.length;
    await waitFor(() => mapped.b.slice(fromB).some((input) => heldByA.has(input)) || child.exitCode !== null, "B to take over A's task in hand", 60_000);
    const stillRunning = child.exitCode === null;
    ip('-n', NS.server, 'link', 'set', link.serverEnd, 'up');
    const restoredAt = Date.now();
    const run = await done;
    t.is(run.code, 0, run.stderr);
    t.true(stillRunning, 'the job was still running when the link came back');
    t.deepEqual(withoutJob(run.stdout), withoutJob(clean.stdout));

    const job = JSON.parse(run.stdout).job as string;
    const mine = published.filter((p) => p.subject.startsWith(`tally.result.${job}.`));
    const byA = (p: { worker: string }) => namesA.some((suffix) => p.worker.endsWith(suffix));
    const bySubject = new Map<string, string[]>();
    for (const p of mine) bySubject.set(p.subject, [...(bySubject.get(p.subject) ?? []), p.worker]);
    const twice = [...bySubject.entries()].filter(([, who]) => who.length > 1);
    t.log(`link of worker A down ${restoredAt - cutAt} ms; ${twice.length} task(s) computed twice (A late, and B); ${mine.filter((p) => byA(p) && p.at > restoredAt).length} results from A after the link came back`);
    t.true(twice.length >= 1, 'the task A held when its link was cut was computed again elsewhere');
    t.true(mine.some((p) => byA(p) && p.at > restoredAt), 'A works again after its link came back');
    t.is(bySubject.size, tasks + REDUCERS, 'every map and reduce task has a result');
  });
}
