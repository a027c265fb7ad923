/**
 * Where and how to connect to NATS, from `--server` and the credential and TLS flags with their
 * NATS_* environment fallbacks: checked (a UsageError names the flag, never its value), with
 * credentials taken out of URLs, and helpers that keep secrets out of messages and child
 * processes' settings. No NATS client here: the CLI's argument handling and the worker
 * supervisor use it before (or without) connecting.
 */
import { readFileSync } from 'node:fs';
import { UsageError, describeError } from '../errors.js';

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

/** Removes every secret of `settings` from a message, whatever produced it. */
export function redact(text: string, settings: ConnectionSettings | undefined): string {
  let out = text;
  for (const secret of [settings?.auth?.password, settings?.auth?.token]) {
    if (secret && secret.length >= 1) out = out.split(secret).join('***');
  }
  return out;
}
