/**
 * `.creds` files (user JWT + NKey seed) on an operator-mode server, as `nsc` would set one up
 * (built here with the nkeys library): each role's JWT carries the shipped permissions, the job
 * runs, a worker's creds still cannot publish tasks; bad creds files fail clearly.
 */
import test from 'ava';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { jetstream } from '@nats-io/jetstream';
import { connectToNats } from '../shared/nats/connection.js';
import { permissionViolation } from '../shared/nats/errors.js';
import { cleanEnv, runTally, tempDir } from './helpers/tally.js';
import { assertNoSecrets, operatorSetup, runJobWithRoles, shippedPermissions, startSecureServer, type Role, type SecureServer } from './helpers/security.js';

const dir = tempDir('tally-creds-');
let server: SecureServer;
let creds: Record<string, string>;
let seeds: string[];

test.before(async () => {
  const roles: Role[] = ['coordinator', 'worker', 'reader'];
  ({ creds, seeds } = operatorSetup(dir.path, Object.fromEntries(roles.map((role) => [role, shippedPermissions(role)]))));
  server = await startSecureServer(join(dir.path, 'operator.conf'), {});
});

test.after.always(async () => {
  await server?.stop();
  dir.remove();
});

test('creds: a job runs with each role in its own .creds file', async (t) => {
  // Each role's file through NATS_CREDS; no user names, so the inbox prefix is given.
  const env = (role: Role) => ({ NATS_CREDS: creds[role]!, NATS_INBOX_PREFIX: `_INBOX_${role}` });
  const run = await runJobWithRoles({ coordinator: '', worker: '', reader: '' }, ['--server', server.url], {}, env);
  t.deepEqual(run.failures, []);
  t.is(run.sum, '500000500000');
  assertNoSecrets(t, seeds, run.outputs);
});

test("creds: a worker's JWT permissions still forbid publishing tasks", async (t) => {
  const nc = await connectToNats({ servers: [server.url], auth: { credsFile: creds.worker }, inboxPrefix: '_INBOX_worker' });
  t.teardown(() => nc.close());
  const error = await jetstream(nc).publish('tally.task.abc-123.0', new Uint8Array(8)).catch((e: unknown) => e);
  t.deepEqual(permissionViolation(error), { operation: 'publish', subject: 'tally.task.abc-123.0' });
});

test('creds: a file that is not a creds file, or creds the server does not know, fail clearly', async (t) => {
  const junk = join(dir.path, 'junk.creds');
  writeFileSync(junk, 'hello\n');
  const bad = await runTally(['jobs', '--server', server.url, '--creds', junk], { env: cleanEnv() });
  t.is(bad.code, 2);
  t.is(bad.stderr, `tally: --creds ${junk}: not a NATS credentials file (expected a user JWT and an NKey seed block, as written by nsc)\n`);
  // Creds signed by an account this server's operator never heard of.
  const otherDir = tempDir('tally-creds-other-');
  t.teardown(otherDir.remove);
  const foreign = operatorSetup(otherDir.path, { stranger: shippedPermissions('reader') });
  const unknown = await runTally(['jobs', '--server', server.url, '--creds', foreign.creds.stranger!], { env: cleanEnv() });
  t.is(unknown.code, 1);
  t.is(unknown.stderr, `tally: ${server.url}: cannot connect to NATS: authentication failed: wrong or unknown credentials for the credentials in ${foreign.creds.stranger}\n`);
  const missing = await runTally(['jobs', '--server', server.url, '--creds', join(dir.path, 'none.creds')], { env: cleanEnv() });
  t.is(missing.code, 2);
  t.regex(missing.stderr, /--creds .*none\.creds: cannot read it \(no such file\)/);
  assertNoSecrets(t, [...seeds, ...foreign.seeds], { bad: bad.stderr, unknown: unknown.stderr, missing: missing.stderr });
});

test("creds: on a server with the default 4 KB max_control_line, the coordinator's long JWT is refused, and the error says so and what to set", async (t) => {
  const config = join(dir.path, 'operator-default-line.conf');
  writeFileSync(config, readFileSync(join(dir.path, 'operator.conf'), 'utf8').replace(/^max_control_line: .*$/m, ''));
  const strict = await startSecureServer(config, {});
  t.teardown(() => strict.stop());
  const run = await runTally(['jobs', '--server', strict.url, '--creds', creds.coordinator!], { env: cleanEnv() });
  t.is(run.code, 1);
  t.regex(run.stderr, /^tally: \S+: cannot connect to NATS: the server refused our CONNECT line \(about \d+ bytes with these credentials\) as longer than its max_control_line; set max_control_line: 8KB \(or more\) in its configuration \(docs\/SECURITY\.md\)\n$/);
  // The reader's shorter JWT fits: the same server takes it (and then says what a reader may not do).
  const reader = await runTally(['jobs', '--server', strict.url, '--creds', creds.reader!], { env: cleanEnv({ NATS_INBOX_PREFIX: '_INBOX_reader' }) });
  t.regex(reader.stderr, /permission denied publishing to \$JS\.API\.STREAM\.CREATE\./);
  assertNoSecrets(t, seeds, { strict: run.stderr });
});
