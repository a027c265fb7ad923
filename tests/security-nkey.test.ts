/**
 * NKey users (seed files, no passwords) with the shipped role permissions, on a fresh server:
 * a worker started before any coordinator waits for the streams it may not create, then the
 * job runs; --inbox-prefix matches each role's permissions; a bad seed file fails clearly.
 */
import test from 'ava';
import { writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { nkeys } from '@nats-io/transport-node';
import { cleanEnv, collect, runTally, spawnTally, tempDir } from './helpers/tally.js';
import { assertNoSecrets, SECURE_CONFIG_DIR, startSecureServer, type Role, type SecureServer } from './helpers/security.js';

const dir = tempDir('tally-nkey-');
const roles: Role[] = ['coordinator', 'worker', 'reader'];
const seeds = {} as Record<Role, string>;
const seedFiles = {} as Record<Role, string>;
let server: SecureServer;

test.before(async () => {
  const users: string[] = [];
  for (const role of roles) {
    const pair = nkeys.createUser();
    seeds[role] = new TextDecoder().decode(pair.getSeed());
    seedFiles[role] = join(dir.path, `${role}.nk`);
    writeFileSync(seedFiles[role], `${seeds[role]}\n`, { mode: 0o600 });
    users.push(`{ nkey: ${pair.getPublicKey()}, permissions: $TALLY_${role.toUpperCase()} }`);
  }
  // nats-server 2.9 resolves includes relative to the including file, even absolute-looking ones.
  const include = (file: string) => `include "${relative(dir.path, join(SECURE_CONFIG_DIR, file))}"`;
  const config = join(dir.path, 'nkeys.conf');
  writeFileSync(config, [include('../tally.conf'), include('permissions.conf'), `authorization { users: [\n  ${users.join('\n  ')}\n] }`, ''].join('\n'));
  server = await startSecureServer(config, {});
});

test.after.always(async () => {
  await server?.stop();
  dir.remove();
});

/** NKey users have no name, so the inbox prefix that their permissions allow is given. */
const envFor = (role: Role) => cleanEnv({ NATS_NKEY: seedFiles[role], NATS_INBOX_PREFIX: `_INBOX_${role}` });

test('nkeys: a worker waits for the streams a coordinator creates, then the job runs', async (t) => {
  const fleet = spawnTally(['worker', '--server', server.url, '--processes', '1'], { env: envFor('worker') });
  const done = collect(fleet, Date.now(), 120_000);
  t.teardown(() => void fleet.kill('SIGKILL'));
  let stderr = '';
  fleet.stderr!.on('data', (d: string) => (stderr += d));
  for (let i = 0; i < 100 && !/waiting/.test(stderr); i++) await new Promise((resolve) => setTimeout(resolve, 100));
  t.regex(stderr, /tally's task streams do not exist yet and this user may not create them: run a job with coordinator credentials/);

  // The coordinator's seed as a flag, its inbox prefix as a flag.
  const sum = await runTally(['sum', '1', '1000', '--format', 'json', '--no-progress', '--server', server.url, '--nkey', seedFiles.coordinator, '--inbox-prefix', '_INBOX_coordinator'], { env: cleanEnv(), timeoutMs: 60_000 });
  t.is(sum.code, 0, sum.stderr);
  t.is(JSON.parse(sum.stdout).sum, '500500');
  const jobs = await runTally(['jobs', '--format', 'json', '--server', server.url], { env: envFor('reader') });
  t.is(jobs.code, 0, jobs.stderr);
  t.is(JSON.parse(jobs.stdout)[0].status, 'done');
  fleet.kill('SIGTERM');
  const run = await done;
  t.is(run.code, 0, run.stderr);
  assertNoSecrets(t, Object.values(seeds), { sum: sum.stdout + sum.stderr, jobs: jobs.stdout + jobs.stderr, worker: run.stdout + run.stderr });
});

test("nkeys: an inbox prefix outside the role's permissions is named in the error", async (t) => {
  const run = await runTally(['jobs', '--server', server.url, '--nkey', seedFiles.reader], { env: cleanEnv() });
  t.is(run.code, 1);
  t.regex(run.stderr, /permission denied subscribing to _INBOX\.\S* \(the inbox prefix does not match this user's permissions: set --inbox-prefix or NATS_INBOX_PREFIX\)/);
});

test('nkeys: an unknown key, or a file with no seed, fails clearly without printing the seed', async (t) => {
  const stranger = join(dir.path, 'stranger.nk');
  const strangerSeed = new TextDecoder().decode(nkeys.createUser().getSeed());
  writeFileSync(stranger, strangerSeed);
  const unknown = await runTally(['jobs', '--server', server.url, '--nkey', stranger], { env: cleanEnv() });
  t.is(unknown.code, 1);
  t.is(unknown.stderr, `tally: ${server.url}: cannot connect to NATS: authentication failed: wrong or unknown credentials for the NKey in ${stranger}\n`);
  const junk = join(dir.path, 'junk.nk');
  writeFileSync(junk, 'not a seed\n');
  const bad = await runTally(['jobs', '--server', server.url, '--nkey', junk], { env: cleanEnv() });
  t.is(bad.code, 2);
  t.is(bad.stderr, `tally: --nkey ${junk}: no user NKey seed (a line starting with SU) in this file\n`);
  assertNoSecrets(t, [...Object.values(seeds), strangerSeed], { unknown: unknown.stderr, bad: bad.stderr });
});
