/**
 * The secured cluster variant (config/nats/secure/cluster.conf: ../cluster.conf + the roles +
 * password-protected routes): three nodes on loopback, one job with each role doing its part.
 */
import test from 'ava';
import { join } from 'node:path';
import { jetstreamManager } from '@nats-io/jetstream';
import { startNatsServer, type NatsServerProcess } from '../coordinator/nats-server.js';
import { connectToNats } from '../shared/nats/connection.js';
import { tempDir } from './helpers/tally.js';
import { freePort } from './helpers/cluster.js';
import { assertNoSecrets, configString, newSecret, roleServerEnv, rolePasswords, runJobWithRoles, secureConfig } from './helpers/security.js';

const passwords = rolePasswords();
const routePassword = newSecret('Q');
const dir = tempDir('tally-secure-cluster-');
const nodes: NatsServerProcess[] = [];
let urls: string[] = [];

test.before(async () => {
  const env = { ...roleServerEnv(passwords), TALLY_ROUTE_PASSWORD: configString(routePassword) };
  const saved = Object.fromEntries(Object.keys(env).map((key) => [key, process.env[key]]));
  Object.assign(process.env, env);
  try {
    const routePorts = [await freePort(), await freePort(), await freePort()];
    const routes = routePorts.map((port) => `nats://route:${routePassword}@127.0.0.1:${port}`).join(',');
    for (const [i, routePort] of routePorts.entries()) {
      nodes.push(
        await startNatsServer({
          storeDir: join(dir.path, `n${i}`),
          configFile: secureConfig('cluster.conf'),
          extraArgs: ['-n', `n${i}`, '--cluster_name', 'tally-secure', '--cluster', `nats://127.0.0.1:${routePort}`, '--routes', routes],
        }),
      );
    }
  } finally {
    for (const [key, value] of Object.entries(saved)) {
      if (value === undefined) delete process.env[key];
      else process.env[key] = value;
    }
  }
  urls = nodes.map((node) => node.url);
  // Wait for a JetStream meta leader, as the coordinator.
  const nc = await connectToNats({ servers: urls, auth: { user: 'coordinator', password: passwords.coordinator } });
  try {
    for (const deadline = Date.now() + 30_000; ; ) {
      try {
        await (await jetstreamManager(nc, { timeout: 1000 })).getAccountInfo();
        break;
      } catch (error) {
        if (Date.now() > deadline) throw error;
        await new Promise((resolve) => setTimeout(resolve, 250));
      }
    }
  } finally {
    await nc.close();
  }
});

test.after.always(async () => {
  await Promise.all(nodes.map((node) => node.stop()));
  dir.remove();
});

test('secured cluster: a job runs across three nodes with each role doing its part', async (t) => {
  const run = await runJobWithRoles(passwords, ['--server', urls.join(',')]);
  t.deepEqual(run.failures, []);
  t.is(run.sum, '500000500000');
  assertNoSecrets(t, [...Object.values(passwords), routePassword], run.outputs);
});
