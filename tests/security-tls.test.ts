/**
 * TLS (config/nats/secure/tls.conf, certificates made with openssl per run): a job runs over
 * TLS with each role; a client that does not trust the server's CA fails with a clear message.
 */
import test from 'ava';
import { cleanEnv, runTally, tempDir } from './helpers/tally.js';
import { assertNoSecrets, rolePasswords, runJobWithRoles, startTlsServer, type Pki, type SecureServer } from './helpers/security.js';

const passwords = rolePasswords();
const secrets = Object.values(passwords);
const dir = tempDir('tally-tls-');
let pki: Pki;
let server: SecureServer;
let tlsUrl: string;

test.before(async () => {
  ({ pki, server, url: tlsUrl } = await startTlsServer('tls.conf', dir.path, passwords));
});

test.after.always(async () => {
  await server?.stop();
  dir.remove();
});

test('a job runs over TLS, each role verifying the server with --tls-ca / NATS_TLS_CA', async (t) => {
  // The CA from the environment for every role; the URL says tls://.
  const run = await runJobWithRoles(passwords, ['--server', tlsUrl], { NATS_TLS_CA: pki.ca });
  t.deepEqual(run.failures, []);
  t.is(run.sum, '500000500000');
  assertNoSecrets(t, secrets, run.outputs);
});

test('a nats:// URL upgrades to TLS when the server requires it, and the name localhost verifies too', async (t) => {
  for (const url of [server.url, `tls://localhost:${server.port}`]) {
    // As the coordinator: on a fresh server a reader may find no job records bucket yet.
    const jobs = await runTally(['jobs', '--server', url, '--tls-ca', pki.ca, '--user', 'coordinator', '--format', 'json'], { env: cleanEnv({ NATS_PASSWORD: passwords.coordinator }) });
    t.is(jobs.code, 0, `${url}: ${jobs.stderr}`);
  }
});

test('a wrong CA fails with a clear TLS message', async (t) => {
  const wrong = await runTally(['jobs', '--server', tlsUrl, '--tls-ca', pki.otherCa], { env: cleanEnv({ NATS_USER: 'reader', NATS_PASSWORD: passwords.reader }) });
  t.is(wrong.code, 1);
  t.is(wrong.stderr, `tally: ${tlsUrl}: cannot connect to NATS: TLS: the server certificate is not signed by a trusted CA (CA file ${pki.otherCa})\n`);
  // Without any CA the system's trust store is used, which does not know the test CA either.
  const none = await runTally(['jobs', '--server', tlsUrl], { env: cleanEnv({ NATS_USER: 'reader', NATS_PASSWORD: passwords.reader }) });
  t.is(none.code, 1);
  t.regex(none.stderr, /cannot connect to NATS: TLS: the server certificate is not signed by a trusted CA\n$/);
  // The worker command fails the same way, before forking.
  const worker = await runTally(['worker', '--server', tlsUrl, '--processes', '1'], { env: cleanEnv({ NATS_USER: 'worker', NATS_PASSWORD: passwords.worker, NATS_TLS_CA: pki.otherCa }), timeoutMs: 30_000 });
  t.is(worker.code, 1);
  t.regex(worker.stderr, /TLS: the server certificate is not signed by a trusted CA/);
  assertNoSecrets(t, secrets, { wrong: wrong.stderr, none: none.stderr, worker: worker.stdout + worker.stderr });
});

test('TLS file options are checked before connecting', async (t) => {
  const half = await runTally(['jobs', '--server', tlsUrl, '--tls-cert', pki.clientCert], { env: cleanEnv() });
  t.is(half.code, 2);
  t.regex(half.stderr, /--tls-cert and --tls-key go together/);
  const missing = await runTally(['jobs', '--server', tlsUrl, '--tls-ca', `${dir.path}/no-such-ca.pem`], { env: cleanEnv() });
  t.is(missing.code, 2);
  t.regex(missing.stderr, /--tls-ca .*no-such-ca\.pem: cannot read it \(no such file\)/);
});
