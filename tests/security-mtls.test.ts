/**
 * Mutual TLS (config/nats/secure/mtls.conf: `verify: true`): every client needs a certificate
 * signed by the deployment's CA and still a password for its role.
 */
import test from 'ava';
import { cleanEnv, runTally, tempDir } from './helpers/tally.js';
import { assertNoSecrets, rolePasswords, runJobWithRoles, startTlsServer, type Pki, type SecureServer } from './helpers/security.js';

const passwords = rolePasswords();
const secrets = Object.values(passwords);
const dir = tempDir('tally-mtls-');
let pki: Pki;
let server: SecureServer;
let tlsUrl: string;

test.before(async () => {
  ({ pki, server, url: tlsUrl } = await startTlsServer('mtls.conf', dir.path, passwords));
});

test.after.always(async () => {
  await server?.stop();
  dir.remove();
});

test('a job runs with mutual TLS when every client presents a certificate', async (t) => {
  const run = await runJobWithRoles(passwords, ['--server', tlsUrl, '--tls-ca', pki.ca, '--tls-cert', pki.clientCert, '--tls-key', pki.clientKey]);
  t.deepEqual(run.failures, []);
  t.is(run.sum, '500000500000');
  assertNoSecrets(t, secrets, run.outputs);
});

test('without a client certificate the connection fails, saying one is required', async (t) => {
  const run = await runTally(['jobs', '--server', tlsUrl, '--tls-ca', pki.ca], { env: cleanEnv({ NATS_USER: 'reader', NATS_PASSWORD: passwords.reader }) });
  t.is(run.code, 1);
  t.is(run.stderr, `tally: ${tlsUrl}: cannot connect to NATS: TLS: the server requires a client certificate (give --tls-cert and --tls-key)\n`);
});

test('a client certificate from another CA is refused, saying so', async (t) => {
  const run = await runTally(['jobs', '--server', tlsUrl], {
    env: cleanEnv({ NATS_USER: 'reader', NATS_PASSWORD: passwords.reader, NATS_TLS_CA: pki.ca, NATS_TLS_CERT: pki.strangerCert, NATS_TLS_KEY: pki.strangerKey }),
  });
  t.is(run.code, 1);
  t.is(run.stderr, `tally: ${tlsUrl}: cannot connect to NATS: TLS: the server rejected our client certificate (not signed by a CA the server trusts)\n`);
});

test('a valid certificate does not replace the password', async (t) => {
  const run = await runTally(['jobs', '--server', tlsUrl, '--tls-ca', pki.ca, '--tls-cert', pki.clientCert, '--tls-key', pki.clientKey], { env: cleanEnv() });
  t.is(run.code, 1);
  t.regex(run.stderr, /authentication failed: the server requires credentials/);
  assertNoSecrets(t, secrets, { stderr: run.stderr });
});
