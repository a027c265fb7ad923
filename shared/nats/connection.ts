/**
 * One way to connect to NATS for every tally process, with the options the design notes
 * measured (reconnect forever, short pings), the credentials and TLS settings of a secured
 * deployment, and errors that name the server (never a secret) and say what failed.
 */
import { readFileSync } from 'node:fs';
import type { NatsConnection, NodeConnectionOptions } from '@nats-io/transport-node';
import type { NodeTransport } from '@nats-io/transport-node/lib/node_transport.js';
import type { JetStreamManager } from '@nats-io/jetstream';
import { ServerError, UsageError, describeError } from '../errors.js';
import { authenticationFailure, connectFailure, isJetStreamUnavailable, permissionViolation } from './errors.js';

// The NATS client modules load when a connection is first made, not with this module: the
// worker supervisor and the CLI's argument handling use the settings helpers below without them.
type TransportModule = typeof import('@nats-io/transport-node');
let transportModule: Promise<TransportModule> | undefined;
const loadTransport = (): Promise<TransportModule> => (transportModule ??= import('@nats-io/transport-node'));

/** How to prove who we are. Secrets are values; NKey seeds and creds stay in their files. */
export interface AuthSettings {
  user?: string;
  password?: string;
  token?: string;
  /** Path of a file holding a user NKey seed (SU…). */
  nkeyFile?: string;
  /** Path of a `.creds` file (user JWT and NKey seed), as written by `nsc`. */
  credsFile?: string;
}

/** TLS towards the server. An empty object still requires TLS (a tls:// URL sets it). */
export interface TlsSettings {
  /** CA certificate(s) (PEM) that signed the server's certificate; default: the system's CAs. */
  caFile?: string;
  /** Client certificate (PEM), for servers that verify clients (mutual TLS). */
  certFile?: string;
  /** Private key (PEM) of the client certificate. */
  keyFile?: string;
}

/**
 * Where and how to connect. JSON-serializable (file paths, never file contents), so the
 * supervisor can hand it to its worker processes; the secrets in `auth` travel separately.
 */
export interface ConnectionSettings {
  /** Server URLs without credentials (they are moved into `auth` when parsed). */
  servers: string[];
  /** Shown in the server's connection list (`nats server report connections`). */
  name?: string;
  /** Milliseconds to wait for the first connection before failing. Default 5000. */
  connectTimeoutMs?: number;
  auth?: AuthSettings;
  tls?: TlsSettings;
  /**
   * Prefix of this client's reply subjects. Default `_INBOX_<user>` when a user name is given
   * (so that server permissions can confine each role to its own inboxes), else `_INBOX`.
   */
  inboxPrefix?: string;
}

/** What the CLI collects from flags (`--user` …) before the environment fills the gaps. */
export interface ConnectionFlags {
  server?: string;
  user?: string;
  password?: string;
  token?: string;
  nkey?: string;
  creds?: string;
  tlsCa?: string;
  tlsCert?: string;
  tlsKey?: string;
  inboxPrefix?: string;
}

/** The environment variables each flag falls back to. */
export const CONNECTION_ENV = {
  server: 'NATS_URL',
  user: 'NATS_USER',
  password: 'NATS_PASSWORD',
  token: 'NATS_TOKEN',
  nkey: 'NATS_NKEY',
  creds: 'NATS_CREDS',
  tlsCa: 'NATS_TLS_CA',
  tlsCert: 'NATS_TLS_CERT',
  tlsKey: 'NATS_TLS_KEY',
  inboxPrefix: 'NATS_INBOX_PREFIX',
} as const satisfies Record<keyof ConnectionFlags, string>;

/** The servers as one display string, with any credentials in URLs masked. */
export function displayServers(servers: string[]): string {
  return servers.map(maskUrl).join(',');
}

/** A URL with anything before '@' in its authority replaced by `***`. */
export function maskUrl(url: string): string {
  return url.replace(/^([a-z][a-z0-9+.-]*:\/\/)?.*@/i, (_m, scheme: string | undefined) => `${scheme ?? ''}***@`);
}

/** Splits a `--server` value ("nats://a:4222,nats://b:4222") into URLs. */
export function parseServers(value: string): string[] {
  return value
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
}

/** Refuses what cannot name a server: an empty host, a bad address or port, a path. */
function checkHostPort(hostPort: string, url: string): void {
  let parsed: URL | undefined;
  try {
    // A special scheme, so that the URL parser checks IPv4 addresses and ports strictly.
    parsed = new URL(`http://${hostPort}`);
  } catch {
    parsed = undefined;
  }
  if (!parsed || parsed.hostname === '' || `${parsed.pathname}${parsed.search}${parsed.hash}` !== '/' || hostPort.includes('/')) {
    throw new UsageError(`--server: '${maskUrl(url)}' is not a server URL (nats://host:port or tls://host:port)`);
  }
}

/**
 * Takes credentials out of server URLs: `nats://user:pass@host` gives a user and password,
 * `nats://token@host` a token. Returns the URLs without them, and whether any is tls://.
 */
export function splitServerCredentials(urls: string[]): { servers: string[]; user?: string; password?: string; token?: string; tls: boolean } {
  const out: { servers: string[]; user?: string; password?: string; token?: string; tls: boolean } = { servers: [], tls: false };
  for (const url of urls) {
    // Up to the last '@': a password may contain one (host names never do).
    const match = /^(?:([a-z][a-z0-9+.-]*):\/\/)?(?:(.*)@)?([^@]*)$/i.exec(url)!;
    const scheme = match[1]?.toLowerCase();
    if (scheme === 'tls') out.tls = true;
    if (scheme !== undefined && !['nats', 'tls'].includes(scheme)) {
      throw new UsageError(`--server: '${maskUrl(url)}' has an unsupported scheme '${scheme}://' (use nats:// or tls://)`);
    }
    const userinfo = match[2];
    if (userinfo !== undefined && userinfo.length > 0) {
      const colon = userinfo.indexOf(':');
      const decode = (s: string) => {
        try {
          return decodeURIComponent(s);
        } catch {
          return s;
        }
      };
      if (colon >= 0) {
        out.user = decode(userinfo.slice(0, colon));
        out.password = decode(userinfo.slice(colon + 1));
      } else {
        out.token = decode(userinfo);
      }
    }
    checkHostPort(match[3]!, url);
    out.servers.push(`${scheme ?? 'nats'}://${match[3]}`);
  }
  return out;
}

const pick = (flag: string | undefined, env: string | undefined): string | undefined =>
  flag !== undefined && flag !== '' ? flag : env !== undefined && env !== '' ? env : undefined;

/**
 * The connection settings for `--server`/NATS_URL and the credential and TLS flags with their
 * environment fallbacks; undefined when no server is given (the embedded default). Throws a
 * UsageError naming the flag (never its value) when the combination cannot work.
 */
export function resolveConnection(flags: ConnectionFlags, env: NodeJS.ProcessEnv = process.env): ConnectionSettings | undefined {
  const value = (key: keyof ConnectionFlags) => pick(flags[key], env[CONNECTION_ENV[key]]);
  if (flags.server === '') throw new UsageError('--server: no URL given');
  const server = value('server');
  if (!server) {
    for (const key of ['user', 'password', 'token', 'nkey', 'creds', 'tlsCa', 'tlsCert', 'tlsKey'] as const) {
      if (flags[key] !== undefined) throw new UsageError(`--${flagName(key)} needs --server (or NATS_URL): the embedded server makes its own token`);
    }
    return undefined;
  }
  const parsed = splitServerCredentials(parseServers(server));
  if (parsed.servers.length === 0) throw new UsageError('--server: no URL given');
  const auth: AuthSettings = {};
  const user = value('user') ?? parsed.user;
  const password = value('password') ?? parsed.password;
  const token = value('token') ?? parsed.token;
  const nkeyFile = value('nkey');
  const credsFile = value('creds');
  if (user !== undefined) auth.user = user;
  if (password !== undefined) auth.password = password;
  if (token !== undefined) auth.token = token;
  if (nkeyFile !== undefined) auth.nkeyFile = nkeyFile;
  if (credsFile !== undefined) auth.credsFile = credsFile;
  if (auth.password !== undefined && auth.user === undefined) throw new UsageError('--password (NATS_PASSWORD) needs --user (NATS_USER)');
  if (auth.user !== undefined && auth.password === undefined) throw new UsageError('--user (NATS_USER) needs --password (NATS_PASSWORD)');
  const methods = [auth.user !== undefined && '--user/--password', auth.token !== undefined && '--token', auth.nkeyFile !== undefined && '--nkey', auth.credsFile !== undefined && '--creds'].filter(Boolean);
  if (methods.length > 1) throw new UsageError(`give one way to authenticate, not ${methods.join(' and ')} (check the NATS_* environment variables too)`);
  for (const [key, path] of [['nkey', auth.nkeyFile], ['creds', auth.credsFile]] as const) if (path !== undefined) checkReadable(key, path);

  const tls: TlsSettings = {};
  const caFile = value('tlsCa');
  const certFile = value('tlsCert');
  const keyFile = value('tlsKey');
  if (caFile !== undefined) tls.caFile = caFile;
  if (certFile !== undefined) tls.certFile = certFile;
  if (keyFile !== undefined) tls.keyFile = keyFile;
  if ((certFile === undefined) !== (keyFile === undefined)) throw new UsageError('--tls-cert and --tls-key go together (NATS_TLS_CERT, NATS_TLS_KEY)');
  for (const [key, path] of [['tlsCa', caFile], ['tlsCert', certFile], ['tlsKey', keyFile]] as const) if (path !== undefined) checkReadable(key, path);

  const settings: ConnectionSettings = { servers: parsed.servers };
  if (Object.keys(auth).length > 0) settings.auth = auth;
  if (parsed.tls || Object.keys(tls).length > 0) settings.tls = tls;
  const inboxPrefix = value('inboxPrefix');
  if (inboxPrefix !== undefined) {
    if (!/^[A-Za-z0-9_$-]+(\.[A-Za-z0-9_$-]+)*$/.test(inboxPrefix)) throw new UsageError(`--inbox-prefix: '${inboxPrefix}' is not a valid subject prefix (no wildcards or spaces)`);
    settings.inboxPrefix = inboxPrefix;
  }
  return settings;
}

function flagName(key: keyof ConnectionFlags): string {
  return key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
}

function checkReadable(key: keyof ConnectionFlags, path: string): void {
  try {
    readFileSync(path);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'no such file' : code === 'EACCES' ? 'permission denied' : code === 'EISDIR' ? 'is a directory' : describeError(error);
    throw new UsageError(`--${flagName(key)} ${path}: cannot read it (${why})`);
  }
}

/** The inbox prefix a connection with these settings uses (see ConnectionSettings.inboxPrefix). */
export function inboxPrefixFor(settings: ConnectionSettings): string {
  if (settings.inboxPrefix) return settings.inboxPrefix;
  const user = settings.auth?.user;
  return user !== undefined && /^[A-Za-z0-9_-]{1,64}$/.test(user) ? `_INBOX_${user}` : '_INBOX';
}

/** The secrets of `settings` (password, token), to hand to a child process out of band. */
export function connectionSecrets(settings: ConnectionSettings): { password?: string; token?: string } {
  const secrets: { password?: string; token?: string } = {};
  if (settings.auth?.password !== undefined) secrets.password = settings.auth.password;
  if (settings.auth?.token !== undefined) secrets.token = settings.auth.token;
  return secrets;
}

/** `settings` without its secrets (what may be written into a child's settings JSON). */
export function withoutSecrets(settings: ConnectionSettings): ConnectionSettings {
  if (!settings.auth) return settings;
  const { password: _password, token: _token, ...auth } = settings.auth;
  return { ...settings, auth };
}

/** Who we authenticate as, for messages: a user name, or the kind of credential. */
export function describeIdentity(settings: ConnectionSettings): string {
  const auth = settings.auth;
  if (auth?.user !== undefined) return `user '${auth.user}'`;
  if (auth?.token !== undefined) return 'the token';
  if (auth?.nkeyFile !== undefined) return `the NKey in ${auth.nkeyFile}`;
  if (auth?.credsFile !== undefined) return `the credentials in ${auth.credsFile}`;
  return 'no credentials';
}

/** A user NKey seed (SU…, 58 characters) from an nkey or seed file, or a UsageError. */
function readNkeySeed(path: string): Uint8Array {
  const text = readFileSync(path, 'utf8');
  const seed = /\bSU[A-Z2-7]{56}\b/.exec(text)?.[0];
  if (!seed) throw new UsageError(`--nkey ${path}: no user NKey seed (a line starting with SU) in this file`);
  return new TextEncoder().encode(seed);
}

function readCreds(path: string): Uint8Array {
  const data = readFileSync(path);
  const text = data.toString('utf8');
  if (!/-----BEGIN NATS USER JWT-----/.test(text) || !/-----BEGIN USER NKEY SEED-----/.test(text)) {
    throw new UsageError(`--creds ${path}: not a NATS credentials file (expected a user JWT and an NKey seed block, as written by nsc)`);
  }
  return data;
}

/** The nats.js options for `settings` (credentials, TLS, inbox prefix) plus tally's defaults. */
export async function natsOptions(settings: ConnectionSettings): Promise<NodeConnectionOptions> {
  const { credsAuthenticator, nkeyAuthenticator } = await loadTransport();
  const options: NodeConnectionOptions = {
    servers: settings.servers,
    name: settings.name ?? 'tally',
    maxReconnectAttempts: -1,
    reconnectTimeWait: 500,
    pingInterval: 15_000,
    timeout: settings.connectTimeoutMs ?? 5000,
    // The client otherwise builds an Error with a stack trace for every request in advance;
    // measured at ~12% of a tiny task's cost (docs/BENCHMARKS.md). tally's errors name the
    // server and subject themselves.
    noAsyncTraces: true,
    inboxPrefix: inboxPrefixFor(settings),
  };
  const auth = settings.auth ?? {};
  if (auth.user !== undefined) {
    options.user = auth.user;
    options.pass = auth.password ?? '';
  }
  if (auth.token !== undefined) options.token = auth.token;
  if (auth.nkeyFile !== undefined) options.authenticator = nkeyAuthenticator(readNkeySeed(auth.nkeyFile));
  if (auth.credsFile !== undefined) options.authenticator = credsAuthenticator(readCreds(auth.credsFile));
  if (settings.tls) {
    const tls: NonNullable<NodeConnectionOptions['tls']> = {};
    if (settings.tls.caFile) tls.caFile = settings.tls.caFile;
    if (settings.tls.certFile) tls.certFile = settings.tls.certFile;
    if (settings.tls.keyFile) tls.keyFile = settings.tls.keyFile;
    options.tls = tls;
  }
  return options;
}

/**
 * Connects, failing within `connectTimeoutMs` with a ServerError that names the URL (credentials
 * masked) and says what failed. Once connected the client reconnects forever: a worker must
 * outlive a server restart. A rejected credential stops reconnecting (nats.js gives up after
 * the server refuses the same credentials twice), which closes the connection.
 */
export async function connectToNats(settings: ConnectionSettings): Promise<NatsConnection> {
  const where = displayServers(settings.servers);
  let options: NodeConnectionOptions;
  try {
    options = await natsOptions(settings);
  } catch (error) {
    if (error instanceof UsageError) throw error;
    throw new UsageError(`cannot read credentials: ${redact(describeError(error), settings)}`, { cause: error });
  }
  try {
    return await connectClosingFailedAttempts(options);
  } catch (error) {
    let reason = describeConnectError(error, settings);
    // A TLS 1.3 server refuses a client certificate after the client thinks the handshake is
    // done; nats.js then retries until its timeout. Ask the server once more, by hand, why.
    if (reason === 'timed out' && settings.tls) reason = (await diagnoseTls(settings).catch(() => undefined)) ?? reason;
    throw new ServerError(where, `cannot connect to NATS: ${reason}`, { cause: error });
  }
}

/** Tags the options of one connect call, so that the transports it dials can be told apart. */
const ATTEMPT_KEY = 'tallyConnectAttempt';
const attempts = new Map<number, Set<NodeTransport>>();
let lastAttempt = 0;

/**
 * nats.js's connect(), except that a failed first connection leaves no socket behind. When the
 * connect timeout fires while a server has accepted TCP but not yet spoken NATS (its INFO line),
 * nats.js 3.4 gives up on that transport without closing its socket, and the process could
 * never exit. Each transport this call dials is recorded (by the options object nats.js hands
 * it, which carries this call's tag), and those that never connected are discarded at the end.
 */
async function connectClosingFailedAttempts(options: NodeConnectionOptions): Promise<NatsConnection> {
  const [{ NatsConnectionImpl, setTransportFactory }, { NodeTransport, nodeResolveHost }] = await Promise.all([
    loadTransport(),
    import('@nats-io/transport-node/lib/node_transport.js'),
  ]);
  const attempt = ++lastAttempt;
  const transports = new Set<NodeTransport>();
  attempts.set(attempt, transports);
  // What transport-node's own connect() installs, plus the recording. Installed on every call
  // since the factory is global to the client library (another connect() replaces it).
  setTransportFactory({
    factory: () => {
      const transport = new NodeTransport();
      const connect = transport.connect.bind(transport);
      transport.connect = (hp, opts) => {
        attempts.get((opts as unknown as Record<string, unknown>)[ATTEMPT_KEY] as number)?.add(transport);
        return connect(hp, opts);
      };
      return transport;
    },
    dnsResolveFn: nodeResolveHost,
  });
  try {
    return await NatsConnectionImpl.connect({ ...options, [ATTEMPT_KEY]: attempt } as NodeConnectionOptions);
  } finally {
    attempts.delete(attempt);
    for (const transport of transports) if (!transport.connected) transport.discard();
  }
}

/**
 * Opens one TLS connection the way nats.js does (plain INFO line, then the handshake) and
 * returns why it fails, or undefined when it works or the failure is not about TLS.
 */
export async function diagnoseTls(settings: ConnectionSettings, timeoutMs = 2000): Promise<string | undefined> {
  const url = settings.servers[0];
  if (!url) return undefined;
  const { hostname, port } = new URL(url.replace(/^[a-z]+:\/\//i, 'http://'));
  const host = hostname.replace(/^\[|\]$/g, '');
  const tlsFiles = settings.tls ?? {};
  const [{ connect: netConnect, isIP }, { connect: tlsConnect }] = await Promise.all([import('node:net'), import('node:tls')]);
  const socket = netConnect({ host, port: Number(port) || 4222 });
  const fail = (error: unknown): string | undefined => {
    const text = [describeError(error), (error as { code?: string }).code ?? ''].join(' | ');
    // Without a certificate of ours, any certificate alert means the server wants one.
    if (!tlsFiles.certFile && /alert (bad certificate|certificate required|handshake failure)|alert number (42|116|40)/i.test(text)) {
      return 'TLS: the server requires a client certificate (give --tls-cert and --tls-key)';
    }
    for (const [pattern, reason] of TLS_REASONS) if (pattern.test(text)) return `TLS: ${reason}${tlsFiles.caFile && /trusted|self-signed/.test(reason) ? ` (CA file ${tlsFiles.caFile})` : ''}`;
    return undefined;
  };
  try {
    return await new Promise<string | undefined>((resolve) => {
      const timer = setTimeout(() => resolve(undefined), timeoutMs);
      const done = (value: string | undefined) => {
        clearTimeout(timer);
        resolve(value);
      };
      socket.once('error', () => done(undefined));
      socket.once('data', () => {
        const secure = tlsConnect({
          socket,
          servername: isIP(host) ? undefined : host,
          ca: tlsFiles.caFile ? readFileSync(tlsFiles.caFile) : undefined,
          cert: tlsFiles.certFile ? readFileSync(tlsFiles.certFile) : undefined,
          key: tlsFiles.keyFile ? readFileSync(tlsFiles.keyFile) : undefined,
          rejectUnauthorized: true,
        });
        secure.once('error', (error) => done(fail(error)));
        secure.once('secureConnect', () => secure.write('PING\r\n'));
        // Any answer (PONG, or -ERR for missing credentials) means TLS itself works.
        secure.once('data', () => done(undefined));
        secure.once('close', () => done(undefined));
      });
    });
  } finally {
    socket.destroy();
  }
}

/** Removes every secret of `settings` from a message, whatever produced it. */
export function redact(text: string, settings: ConnectionSettings | undefined): string {
  let out = text;
  for (const secret of [settings?.auth?.password, settings?.auth?.token]) {
    if (secret && secret.length >= 1) out = out.split(secret).join('***');
  }
  return out;
}

/** Node's TLS error codes, in words a user can act on. */
const TLS_REASONS: Array<[RegExp, string]> = [
  [/SELF_SIGNED_CERT_IN_CHAIN|self[- ]signed certificate in certificate chain/i, 'the server certificate is signed by a CA that is not trusted'],
  [/DEPTH_ZERO_SELF_SIGNED_CERT|self[- ]signed certificate/i, 'the server certificate is self-signed and not trusted'],
  [/UNABLE_TO_GET_ISSUER_CERT|unable to get (local )?issuer certificate|UNABLE_TO_VERIFY_LEAF_SIGNATURE|unable to verify the first certificate/i, 'the server certificate is not signed by a trusted CA'],
  [/CERT_HAS_EXPIRED|certificate has expired/i, 'the server certificate has expired'],
  [/ERR_TLS_CERT_ALTNAME_INVALID|does not match certificate's altnames|Hostname\/IP does not match/i, "the server certificate is not valid for this host name (check the certificate's subjectAltName)"],
  [/certificate required|alert number 116|tlsv13 alert certificate required/i, 'the server requires a client certificate (give --tls-cert and --tls-key)'],
  [/bad certificate|alert number 42|unknown ca|alert number 48/i, 'the server rejected our client certificate (not signed by a CA the server trusts)'],
  [/wrong version number|packet length too long|unknown protocol/i, 'TLS handshake failed: the server does not speak TLS there'],
  [/server does not support 'tls'/i, 'the server does not offer TLS (drop --tls-* and tls://, or enable TLS on the server)'],
  [/tls.*is not available/i, 'the server requires TLS but the connection was not encrypted'],
];

function describeConnectError(error: unknown, settings: ConnectionSettings): string {
  const identity = describeIdentity(settings);
  const auth = authenticationFailure(error);
  if (auth === 'rejected') {
    const hint = settings.auth ? `wrong or unknown credentials for ${identity}` : 'the server requires credentials (give --user/--password, --token, --nkey or --creds)';
    return `authentication failed: ${hint}`;
  }
  if (auth === 'expired') return `authentication failed: the credentials of ${identity} have expired`;
  const tls = tlsReason(error);
  if (tls) return `TLS: ${tls}${settings.tls?.caFile ? ` (CA file ${settings.tls.caFile})` : ''}`;
  const failure = connectFailure(error);
  if (failure === 'refused') return 'connection refused (is nats-server running there?)';
  if (failure === 'timed out') return 'timed out';
  return redact(describeError(error), settings);
}

/**
 * Why a TLS handshake failed, in words, from Node's TLS errors that the client passes on as the
 * cause of its ConnectionError: their codes (`CERT_HAS_EXPIRED`) and OpenSSL's alert texts,
 * which have no code of their own. Undefined when the failure is not about TLS.
 */
function tlsReason(error: unknown): string | undefined {
  const texts: string[] = [];
  for (let e: unknown = error, depth = 0; e !== undefined && e !== null && depth < 5; e = (e as { cause?: unknown }).cause, depth++) {
    texts.push(describeError(e));
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string') texts.push(code);
  }
  const text = texts.join(' | ');
  for (const [pattern, reason] of TLS_REASONS) if (pattern.test(text)) return reason;
  return undefined;
}

/** A JetStream manager, or a ServerError saying the server has no JetStream. */
export async function jetstreamManagerFor(nc: NatsConnection, settings: ConnectionSettings): Promise<JetStreamManager> {
  try {
    const { jetstreamManager } = await import('@nats-io/jetstream');
    return await jetstreamManager(nc);
  } catch (error) {
    const denied = permissionDenied(error);
    if (denied) throw new ServerError(displayServers(settings.servers), denied, { cause: error });
    const reason = isJetStreamUnavailable(error)
      ? 'JetStream is not enabled on this server (start nats-server with -js or a jetstream block)'
      : `JetStream unavailable: ${describeError(error)}`;
    throw new ServerError(displayServers(settings.servers), reason, { cause: error });
  }
}

/**
 * Reports the server's refusals on `nc` through `log`, once per subject: a denied subscription
 * fails silently otherwise (a denied request fails the call that made it, which reports it, so
 * those go to debug: they include the expected look at a stream a role may not see).
 */
export function reportPermissionErrors(nc: NatsConnection, log: { error(obj: object, msg: string): void; debug(obj: object, msg: string): void }, settings: ConnectionSettings): void {
  void (async () => {
    const reported = new Set<string>();
    for await (const status of nc.status()) {
      if (status.type !== 'error') continue;
      const violation = permissionViolation(status.error);
      const denied = permissionDenied(status.error);
      if (!violation || !denied || reported.has(denied)) continue;
      reported.add(denied);
      // Our own inbox: the request waiting on it fails and says so.
      const ownInbox = violation.subject.startsWith(`${inboxPrefixFor(settings)}.`);
      log[violation.operation === 'subscription' && !ownInbox ? 'error' : 'debug']({ server: displayServers(settings.servers) }, denied);
    }
  })().catch(() => undefined);
}

/** "permission denied publishing to X" for a permissions violation, else undefined. */
export function permissionDenied(error: unknown): string | undefined {
  const violation = permissionViolation(error);
  if (!violation) return undefined;
  const verb = violation.operation === 'publish' ? 'publishing to' : 'subscribing to';
  return `permission denied ${verb} ${violation.subject}${explainSubject(violation.subject)}`;
}

/** What a denied subject means in tally's terms, so the message says which role is needed. */
function explainSubject(subject: string): string {
  const s = subject;
  if (s.startsWith('tally.task.')) return ' (submitting jobs needs the coordinator role)';
  if (/^\$KV\.tally-jobs\./.test(s)) return ' (writing job records needs the coordinator role)';
  if (/^\$O\.tally-results\./.test(s)) return ' (writing results needs the coordinator role)';
  if (s.startsWith('tally.event.')) return ' (announcing the end of a job needs the coordinator role)';
  if (/^\$JS\.API\.STREAM\.UPDATE\./.test(s)) return ' (changing tally\'s streams, e.g. tally jobs --retention, needs the coordinator role)';
  if (/^\$JS\.API\.STREAM\.CREATE\./.test(s) || /^\$JS\.API\.CONSUMER\.(DURABLE\.)?CREATE\.TALLY_TASKS/.test(s)) {
    return ' (creating tally\'s streams needs the coordinator role or an administrator; see docs/SECURITY.md)';
  }
  if (/^\$JS\.API\.STREAM\.(DELETE|PURGE)\./.test(s)) return ' (deleting or purging streams needs the coordinator role)';
  if (/^\$JS\.API\.CONSUMER\.(CREATE|INFO|MSG\.NEXT)\.TALLY_RESULTS/.test(s)) return ' (reading job results needs the coordinator role)';
  if (/^\$JS\.API\.(DIRECT\.GET|STREAM\.MSG\.GET|STREAM\.INFO|CONSUMER\.CREATE)\.KV_tally-jobs/.test(s)) return ' (reading job records needs the coordinator or reader role)';
  if (/^\$JS\.API\.STREAM\.INFO\.(TALLY_TASKS|TALLY_RESULTS|OBJ_tally-partials)$/.test(s)) return ' (running jobs needs the coordinator role)';
  if (/^\$JS\.API\.(DIRECT\.GET|STREAM\.MSG\.GET|STREAM\.INFO|CONSUMER\.CREATE)\.OBJ_tally-results/.test(s)) return ' (reading results needs the coordinator or reader role)';
  if (s.startsWith('tally.result.')) return ' (publishing results needs the worker role)';
  if (s.startsWith('_INBOX')) return ' (the inbox prefix does not match this user\'s permissions: set --inbox-prefix or NATS_INBOX_PREFIX)';
  return '';
}
