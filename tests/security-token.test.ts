/**
 * Token authentication (config/nats/secure/token.conf: one shared token, no roles): from the
 * flag, the environment and the URL; a wrong token fails clearly and is never printed.
 */
import test from 'ava';
import { cleanEnv, runTally } from './helpers/tally.js';
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
