/**
 * A 3-node nats-server cluster on loopback for the cluster fault tests: every node runs the
 * repository's config/nats/cluster.conf, with its name, ports, routes and store directory on the
 * command line, as an operator would start them.
 */
import { createServer } from 'node:net';
import { join } from 'node:path';
import { connect } from '@nats-io/transport-node';
import { jetstreamManager } from '@nats-io/jetstream';
import { startNatsServer, type NatsServerProcess } from '../../coordinator/nats-server.js';
import { REPO_ROOT, tempDir } from './tally.js';

export const CLUSTER_CONFIG = join(REPO_ROOT, 'config', 'nats', 'cluster.conf');

/** A port that was free a moment ago (the kernel's choice). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const { port } = probe.address() as { port: number };
      probe.close(() => resolve(port));
    });
  });
}

interface NodeSpec {
  name: string;
  clientPort: number;
  routePort: number;
  storeDir: string;
}

export interface TestCluster {
  nodes: Array<NatsServerProcess | null>;
  specs: NodeSpec[];
  /** Every node's client URL, comma-separated, for --server. */
  urls: string;
  /** Starts node `i` again (same name, ports and store) after it was stopped or killed. */
  restart(i: number): Promise<NatsServerProcess>;
  /** Kills node `i` with SIGKILL. */
  kill(i: number): Promise<void>;
  /** Index of the node called `name`. */
  indexOf(name: string): number;
  stop(): Promise<void>;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function startNode(spec: NodeSpec, routes: string): Promise<NatsServerProcess> {
  return startNatsServer({
    storeDir: spec.storeDir,
    port: spec.clientPort,
    configFile: CLUSTER_CONFIG,
    monitor: true,
    extraArgs: ['-n', spec.name, '--cluster_name', 'tally-test', '--cluster', `nats://127.0.0.1:${spec.routePort}`, '--routes', routes],
  });
}

/**
 * Resolves once JetStream answers through `urls` (a meta leader has been elected) and, with
 * `placeR3`, once a stream with 3 replicas can be created (every node takes part).
 */
export async function waitForJetStream(urls: string, options: { placeR3?: boolean; timeoutMs?: number } = {}): Promise<void> {
  const nc = await connect({ servers: urls.split(','), maxReconnectAttempts: -1 });
  try {
    const deadline = Date.now() + (options.timeoutMs ?? 30_000);
    for (;;) {
      try {
        const jsm = await jetstreamManager(nc, { timeout: 2000 });
        await jsm.getAccountInfo();
        if (options.placeR3) {
          await jsm.streams.add({ name: 'PROBE_R3', subjects: ['probe.r3'], num_replicas: 3 });
          await jsm.streams.delete('PROBE_R3');
        }
        return;
      } catch (error) {
        if (Date.now() > deadline) throw error;
        await sleep(250);
      }
    }
  } finally {
    await nc.close();
  }
}

export async function startCluster(): Promise<TestCluster> {
  const dir = tempDir('tally-cluster-');
  const specs: NodeSpec[] = [];
  for (let i = 0; i < 3; i++) {
    specs.push({ name: `n${i + 1}`, clientPort: await freePort(), routePort: await freePort(), storeDir: join(dir.path, `n${i + 1}`) });
  }
  const routes = specs.map((s) => `nats://127.0.0.1:${s.routePort}`).join(',');
  const nodes: Array<NatsServerProcess | null> = await Promise.all(specs.map((spec) => startNode(spec, routes)));
  const urls = specs.map((s) => `nats://127.0.0.1:${s.clientPort}`).join(',');
  await waitForJetStream(urls, { placeR3: true });
  return {
    nodes,
    specs,
    urls,
    restart: async (i) => {
      const node = await startNode(specs[i]!, routes);
      nodes[i] = node;
      return node;
    },
    kill: async (i) => {
      await nodes[i]?.kill();
      nodes[i] = null;
    },
    indexOf: (name) => specs.findIndex((s) => s.name === name),
    stop: async () => {
      await Promise.all(nodes.map((node) => node?.stop()));
      dir.remove();
    },
  };
}
