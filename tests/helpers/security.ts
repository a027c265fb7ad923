/**
 * What the security tests share: secrets generated per run (never committed), bcrypt hashes,
 * a throw-away PKI made with openssl, nats-server started with the shipped secure configs, and
 * a check that no secret leaked into any text the tests captured.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ExecutionContext } from 'ava';
import { nkeys } from '@nats-io/transport-node';
import { startNatsServer, type NatsServerProcess } from '../../coordinator/nats-server.js';
import { REPO_ROOT, tempDir } from './tally.js';

export const SECURE_CONFIG_DIR = join(REPO_ROOT, 'config', 'nats', 'secure');
export const secureConfig = (name: string) => join(SECURE_CONFIG_DIR, name);

/**
 * A fresh secret. It starts with a letter so that nats-server, which parses environment
 * values as config tokens, would take it as a string even unquoted.
 */
export function newSecret(prefix = 'S'): string {
  return `${prefix}${randomBytes(18).toString('hex')}`;
}

/** A bcrypt hash of `password` through the C library's crypt(3) (via perl), or null. */
export function bcryptHash(password: string): string | null {
  const alphabet = './ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
  const salt = `$2b$08$${[...randomBytes(22)].map((b) => alphabet[b % 64]).join('')}`;
  try {
    const hash = execFileSync('perl', ['-e', 'print crypt($ARGV[0], $ARGV[1])', password, salt], { encoding: 'utf8' });
    return /^\$2[aby]\$\d\d\$[./A-Za-z0-9]{53}$/.test(hash) ? hash : null;
  } catch {
    return null;
  }
}

/** A value for an environment variable that nats-server reads as a string: quoted. */
export function configString(value: string): string {
  return `"${value}"`;
}

export interface SecureServer {
  server: NatsServerProcess;
  url: string;
  port: number;
  stop(): Promise<void>;
}

/**
 * Starts nats-server with `configFile` on a free loopback port and a temp store. `env` holds
 * the variables the config reads (passwords, certificate paths): nats-server inherits this
 * process's environment, so they are set only while it starts, then removed again.
 */
export async function startSecureServer(configFile: string, env: Record<string, string>): Promise<SecureServer> {
  const dir = tempDir('tally-secure-nats-');
  const saved = new Map<string, string | undefined>();
  for (const [key, value] of Object.entries(env)) {
    saved.set(key, process.env[key]);
    process.env[key] = value;
  }
  let server: NatsServerProcess;
  try {
    server = await startNatsServer({ storeDir: dir.path, configFile });
  } finally {
    for (const [key, value] of saved) {
      if (value === undefined) delete process.env[key];
      else process.env[key] = value;
    }
  }
  return {
    server,
    url: server.url,
    port: server.port,
    stop: async () => {
      await server.stop();
      dir.remove();
    },
  };
}

/** The certificates of one test run, all PEM files in `dir`. */
export interface Pki {
  dir: string;
  ca: string;
  /** A CA that signed nothing the server uses: trusting only it must fail. */
  otherCa: string;
  serverCert: string;
  serverKey: string;
  clientCert: string;
  clientKey: string;
  /** A client certificate signed by the other CA: the server must refuse it. */
  strangerCert: string;
  strangerKey: string;
}

/** Makes a CA, a server certificate for 127.0.0.1/localhost and client certificates with openssl. */
export function makePki(dir: string): Pki {
  const p = (name: string) => join(dir, name);
  const openssl = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
  const ca = (name: string, cn: string) => openssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', p(`${name}-key.pem`), '-out', p(`${name}.pem`), '-days', '2', '-subj', `/CN=${cn}`);
  const leaf = (name: string, cn: string, signer: string, ext: string) => {
    openssl('req', '-newkey', 'rsa:2048', '-nodes', '-keyout', p(`${name}-key.pem`), '-out', p(`${name}.csr`), '-subj', `/CN=${cn}`);
    writeFileSync(p(`${name}.ext`), ext);
    openssl('x509', '-req', '-in', p(`${name}.csr`), '-CA', p(`${signer}.pem`), '-CAkey', p(`${signer}-key.pem`), '-CAcreateserial', '-out', p(`${name}.pem`), '-days', '2', '-extfile', p(`${name}.ext`));
  };
  ca('ca', 'tally test CA');
  ca('other-ca', 'some other CA');
  leaf('server', 'localhost', 'ca', 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n');
  leaf('client', 'tally client', 'ca', 'extendedKeyUsage=clientAuth\n');
  leaf('stranger', 'stranger', 'other-ca', 'extendedKeyUsage=clientAuth\n');
  return {
    dir,
    ca: p('ca.pem'),
    otherCa: p('other-ca.pem'),
    serverCert: p('server.pem'),
    serverKey: p('server-key.pem'),
    clientCert: p('client.pem'),
    clientKey: p('client-key.pem'),
    strangerCert: p('stranger.pem'),
    strangerKey: p('stranger-key.pem'),
  };
}

/**
 * Every text a test captured (stdout, stderr, logs, job records) must be free of every secret.
 * Fails naming the text and the secret's first characters only.
 */
export function assertNoSecrets(t: ExecutionContext, secrets: string[], texts: Record<string, string>): void {
  for (const [what, text] of Object.entries(texts)) {
    for (const secret of secrets) {
      if (text.includes(secret)) t.fail(`secret ${secret.slice(0, 3)}… appears in ${what}`);
    }
  }
  t.pass();
}

export type Role = 'coordinator' | 'worker' | 'reader';

/** A password per role, generated for this run. */
export function rolePasswords(): Record<Role, string> {
  return { coordinator: newSecret('C'), worker: newSecret('W'), reader: newSecret('R') };
}

/** The environment variables users.conf reads, from the passwords (quoted for nats-server). */
export function roleServerEnv(passwords: Record<Role, string>): Record<string, string> {
  return {
    TALLY_COORDINATOR_PASSWORD: configString(passwords.coordinator),
    TALLY_WORKER_PASSWORD: configString(passwords.worker),
    TALLY_READER_PASSWORD: configString(passwords.reader),
  };
}

/**
 * One job the way a secured deployment runs it: `tally worker` with the worker's credentials,
 * `tally sum` with the coordinator's, `tally jobs` and `tally result` with the reader's; each
 * gets `connectionArgs` (URL, TLS flags) and `env`. Returns the job's sum and every output.
 */
export async function runJobWithRoles(
  passwords: Record<Role, string>,
  connectionArgs: string[],
  env: NodeJS.ProcessEnv = {},
  envOf: (role: Role) => NodeJS.ProcessEnv = () => ({}),
): Promise<{ sum: string | undefined; job: string | undefined; outputs: Record<string, string>; failures: string[] }> {
  const { cleanEnv, collect, runTally, spawnTally } = await import('./tally.js');
  const roleEnv = (role: Role) => cleanEnv({ ...(passwords[role] ? { NATS_USER: role, NATS_PASSWORD: passwords[role] } : {}), ...env, ...envOf(role) });
  const outputs: Record<string, string> = {};
  const failures: string[] = [];
  const fleet = spawnTally(['worker', ...connectionArgs, '--processes', '1', '--log-level', 'info'], { env: roleEnv('worker') });
  const fleetDone = collect(fleet, Date.now(), 120_000);
  try {
    const sum = await runTally(['sum', '1', '1e6', '--tasks', '4', '--format', 'json', '--no-progress', ...connectionArgs], { env: roleEnv('coordinator'), timeoutMs: 60_000 });
    outputs['sum'] = sum.stdout + sum.stderr;
    if (sum.code !== 0) {
      failures.push(`sum: ${sum.stderr}`);
      return { sum: undefined, job: undefined, outputs, failures };
    }
    const result = JSON.parse(sum.stdout) as { job: string; sum: string };
    const jobs = await runTally(['jobs', '--format', 'json', ...connectionArgs], { env: roleEnv('reader') });
    outputs['jobs'] = jobs.stdout + jobs.stderr;
    if (jobs.code !== 0 || !(JSON.parse(jobs.stdout) as Array<{ id: string }>).some((r) => r.id === result.job)) failures.push(`jobs: ${jobs.stdout}${jobs.stderr}`);
    const stored = await runTally(['result', result.job, '--format', 'json', ...connectionArgs], { env: roleEnv('reader') });
    outputs['result'] = stored.stdout + stored.stderr;
    if (stored.code !== 0 || JSON.parse(stored.stdout).sum !== result.sum) failures.push(`result: ${stored.stdout}${stored.stderr}`);
    return { sum: result.sum, job: result.job, outputs, failures };
  } finally {
    fleet.kill('SIGTERM');
    const run = await fleetDone;
    outputs['worker'] = run.stdout + run.stderr;
    if (run.code !== 0) failures.push(`worker exited ${run.code}: ${run.stderr}`);
  }
}

/** One role's allow lists as config/nats/secure/permissions.conf defines them. */
export interface RolePermissions {
  publish: string[];
  subscribe: string[];
  allowResponses: boolean;
}

/** Reads TALLY_<ROLE> from permissions.conf (the format written there: allow lists only). */
export function shippedPermissions(role: Role): RolePermissions {
  const text = readFileSync(secureConfig('permissions.conf'), 'utf8').replace(/^\s*#.*$/gm, '');
  const block = new RegExp(`^TALLY_${role.toUpperCase()} = \\{([\\s\\S]*?)^\\}`, 'm').exec(text)?.[1];
  if (!block) throw new Error(`no TALLY_${role.toUpperCase()} in permissions.conf`);
  const list = (kind: string) => {
    const body = new RegExp(`${kind}: \\{\\s*allow: \\[([\\s\\S]*?)\\]`).exec(block)?.[1] ?? '';
    return [...body.matchAll(/"([^"]+)"/g)].map((m) => m[1]!);
  };
  return { publish: list('publish'), subscribe: list('subscribe'), allowResponses: /allow_responses: true/.test(block) };
}

/**
 * An operator-mode nats-server config (what `nsc` would make) with one account, JetStream on,
 * and a `.creds` file per user holding the user's JWT (carrying its permissions) and seed.
 */
export function operatorSetup(dir: string, users: Record<string, RolePermissions>): { config: string; creds: Record<string, string>; seeds: string[] } {
  const b64 = (data: string | Uint8Array) => Buffer.from(data).toString('base64url');
  const sign = (signer: ReturnType<typeof nkeys.createOperator>, claims: Record<string, unknown>) => {
    const header = b64(JSON.stringify({ typ: 'JWT', alg: 'ed25519-nkey' }));
    const body = b64(JSON.stringify({ jti: randomBytes(16).toString('hex').toUpperCase(), iat: Math.floor(Date.now() / 1000), iss: signer.getPublicKey(), ...claims }));
    return `${header}.${body}.${b64(signer.sign(new TextEncoder().encode(`${header}.${body}`)))}`;
  };
  const unlimited = { subs: -1, data: -1, payload: -1, imports: -1, exports: -1, wildcards: true, conn: -1, leaf: -1 };
  const operator = nkeys.createOperator();
  const account = nkeys.createAccount();
  const system = nkeys.createAccount();
  const operatorJwt = sign(operator, { name: 'tally-test-operator', sub: operator.getPublicKey(), nats: { type: 'operator', version: 2 } });
  const accountJwt = sign(operator, {
    name: 'TALLY',
    sub: account.getPublicKey(),
    nats: { limits: { ...unlimited, mem_storage: -1, disk_storage: -1, streams: -1, consumer: -1 }, type: 'account', version: 2 },
  });
  const systemJwt = sign(operator, { name: 'SYS', sub: system.getPublicKey(), nats: { limits: unlimited, type: 'account', version: 2 } });
  writeFileSync(join(dir, 'operator.jwt'), operatorJwt);
  const config = join(dir, 'operator.conf');
  writeFileSync(
    config,
    [
      `operator: "${join(dir, 'operator.jwt')}"`,
      `system_account: ${system.getPublicKey()}`,
      'resolver: MEMORY',
      `resolver_preload: {\n  ${account.getPublicKey()}: "${accountJwt}"\n  ${system.getPublicKey()}: "${systemJwt}"\n}`,
      'max_payload: 8MB',
      // The coordinator's JWT carries its ~90 allow entries: its CONNECT line is over the default
      // 4 KB (docs/SECURITY.md says to raise it).
      'max_control_line: 8KB',
      'jetstream { max_memory_store: 64MB, max_file_store: 4GB }',
      '',
    ].join('\n'),
  );
  const creds: Record<string, string> = {};
  const seeds: string[] = [];
  for (const [name, permissions] of Object.entries(users)) {
    const user = nkeys.createUser();
    const seed = new TextDecoder().decode(user.getSeed());
    seeds.push(seed);
    const jwt = sign(account, {
      name,
      sub: user.getPublicKey(),
      nats: {
        pub: { allow: permissions.publish },
        sub: { allow: permissions.subscribe },
        ...(permissions.allowResponses ? { resp: { max: 1, ttl: 0 } } : {}),
        subs: -1,
        data: -1,
        payload: -1,
        type: 'user',
        version: 2,
      },
    });
    creds[name] = join(dir, `${name}.creds`);
    writeFileSync(
      creds[name]!,
      `-----BEGIN NATS USER JWT-----\n${jwt}\n------END NATS USER JWT------\n\n************************* IMPORTANT *************************\n` +
        `NKEY Seed printed below can be used to sign and prove identity.\nNKEYs are sensitive and should be treated as secrets.\n\n` +
        `-----BEGIN USER NKEY SEED-----\n${seed}\n------END USER NKEY SEED------\n\n*************************************************************\n`,
      { mode: 0o600 },
    );
  }
  return { config, creds, seeds };
}

/** A secured server with TLS for one test file: a fresh PKI in `dir`, the role passwords. */
export interface TlsServer {
  pki: Pki;
  server: SecureServer;
  /** tls://127.0.0.1:PORT */
  url: string;
}

/**
 * Starts `configName` (tls.conf, mtls.conf) from config/nats/secure/ with certificates made
 * in `dir` and the given role passwords.
 */
export async function startTlsServer(configName: string, dir: string, passwords: Record<Role, string>): Promise<TlsServer> {
  const pki = makePki(dir);
  const server = await startSecureServer(secureConfig(configName), {
    ...roleServerEnv(passwords),
    TALLY_TLS_CERT: pki.serverCert,
    TALLY_TLS_KEY: pki.serverKey,
    TALLY_TLS_CA: pki.ca,
  });
  return { pki, server, url: `tls://127.0.0.1:${server.port}` };
}
