/**
 * Token authentication (config/nats/secure/token.conf: one shared token, no roles): from the
 * flag, the environment and the URL; a wrong token fails clearly and is never printed; a token
 * sent too late (the server's authentication timeout) is sent once more.
 */
import test from 'ava';
import { writeFileSync } from 'node:fs';
import { connect, createServer, type AddressInfo } from 'node:net';
import { join } from 'node:path';
import { startNatsServer } from '../coordinator/nats-server.js';
import { ServerError } from '../shared/errors.js';
import { connectToNats } from '../shared/nats/connection.js';
import { cleanEnv, runTally, tempDir } from './helpers/tally.js';
import { assertNoSecrets, configString, newSecret, runJobWithRoles, secureConfig, startSecureServer, type SecureServer } from './helpers/security.js';

const token = newSecret('T');
let server: SecureServer;

test.before(async () => {
  server = await startSecureServer(secureConfig('token.conf'), { TALLY_TOKEN: configString(token) });
});

test.after.always(async () => {
  await server?.stop();
});

test('token: a job runs with the token from the environment, the flag and the URL', async (t) => {
  // Every role with NATS_TOKEN (the passwords runJobWithRoles sets are unused: no user names here).
  const run = await runJobWithRoles({ coordinator: '', worker: '', reader: '' }, ['--server', server.url], { NATS_TOKEN: token });
  t.deepEqual(run.failures, []);
  t.is(run.sum, '500000500000');
  const flag = await runTally(['jobs', '--server', server.url, '--token', token, '--format', 'json'], { env: cleanEnv() });
  t.is(flag.code, 0, flag.stderr);
  const url = await runTally(['jobs', '--server', server.url.replace('nats://', `nats://${token}@`), '--format', 'json'], { env: cleanEnv() });
  t.is(url.code, 0, url.stderr);
  assertNoSecrets(t, [token], { ...run.outputs, flag: flag.stdout + flag.stderr, url: url.stdout + url.stderr });
});

test('token: a wrong token fails with a clear message that does not show it', async (t) => {
  const wrong = newSecret('X');
  const run = await runTally(['jobs', '--server', server.url, '--token', wrong], { env: cleanEnv() });
  t.is(run.code, 1);
  t.is(run.stderr, `tally: ${server.url}: cannot connect to NATS: authentication failed: wrong or unknown credentials for the token\n`);
  const inUrl = await runTally(['jobs', '--server', server.url.replace('nats://', `nats://${wrong}@`)], { env: cleanEnv() });
  t.is(inUrl.code, 1);
  t.regex(inUrl.stderr, /authentication failed: wrong or unknown credentials for the token/);
  assertNoSecrets(t, [token, wrong], { flag: run.stderr, url: inUrl.stderr });
});

test('token: a CONNECT that comes after the server stopped waiting for it (its authentication timeout) is sent once more; late twice, it says so', async (t) => {
  // A server that waits 0.3 s for the credentials, behind a proxy that holds back what the
  // client sends on its first connections (as a process too busy to send its CONNECT would).
  const dir = tempDir('tally-auth-timeout-');
  t.teardown(() => dir.remove());
  const config = join(dir.path, 'auth-timeout.conf');
  writeFileSync(config, `authorization {\n  token: "${token}"\n  timeout: 0.3\n}\n`);
  const late = await startNatsServer({ storeDir: join(dir.path, 'store'), configFile: config });
  t.teardown(() => late.stop());
  let connections = 0;
  let heldBack = 1;
  const proxy = createServer((client) => {
    connections++;
    const upstream = connect(late.port, '127.0.0.1');
    upstream.pipe(client);
    upstream.on('error', () => client.destroy());
    client.on('error', () => upstream.destroy());
    if (connections > heldBack) {
      client.pipe(upstream);
      return;
    }
    client.once('data', (first: Buffer) => {
      setTimeout(() => {
        if (upstream.destroyed) return;
        upstream.write(first);
        client.pipe(upstream);
      }, 1_000);
    });
  });
  await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
  t.teardown(() => proxy.close());
  const url = `nats://127.0.0.1:${(proxy.address() as AddressInfo).port}`;
  const nc = await connectToNats({ servers: [url], auth: { token } });
  await nc.flush();
  await nc.close();
  t.is(connections, 2, 'the first connection timed out, the second was taken');
  connections = 0;
  heldBack = 2;
  const error = await t.throwsAsync(connectToNats({ servers: [url], auth: { token } }), { instanceOf: ServerError });
  t.regex(error!.message, /cannot connect to NATS: authentication timed out: .*try again$/);
  t.is(connections, 2, 'twice, then no more');
});
