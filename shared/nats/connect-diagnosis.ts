/**
 * Why a connection to NATS failed, in words a user can act on: rejected or expired credentials,
 * a TLS problem (and which), nothing listening, a timeout. For TLS, where the client only times
 * out, the server is asked once more by hand (`diagnoseTls`).
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { connect as netConnect, isIP } from 'node:net';
import { describeError } from '../errors.js';
import { describeIdentity, redact, type ConnectionSettings } from './connection-settings.js';
import { authenticationFailure, connectFailure } from './errors.js';

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
  // node:tls only here, where it is needed (the NATS client loads node:net in any case); with
  // require(), as the bundles leave no import() to Node (scripts/bundle.mjs).
  const { connect: tlsConnect } = createRequire(import.meta.url)('node:tls') as typeof import('node:tls');
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

/** nats-server's default limit on one protocol line (CONNECT included). */
const DEFAULT_MAX_CONTROL_LINE = 4096;
/** What a CONNECT line holds besides the credentials: options, name, version, signature. */
const CONNECT_OVERHEAD_BYTES = 400;

/** About how long this client's CONNECT line is: the credentials make the difference. */
export function connectLineBytes(settings: ConnectionSettings): number {
  const auth = settings.auth ?? {};
  let bytes = CONNECT_OVERHEAD_BYTES + (settings.name?.length ?? 0) + (auth.user?.length ?? 0) + (auth.password?.length ?? 0) + (auth.token?.length ?? 0);
  if (auth.credsFile) {
    try {
      // The user JWT travels in CONNECT; the seed never does.
      bytes += /-----BEGIN NATS USER JWT-----\s*(\S+)/.exec(readFileSync(auth.credsFile, 'utf8'))?.[1]?.length ?? 0;
    } catch {
      // Unreadable: connecting said so already.
    }
  }
  return bytes;
}

/**
 * When a plain (non-TLS) connect timed out and this client's CONNECT line is longer than a
 * server's default limit, asks the server by hand whether that is why: nats-server answers a
 * line over its `max_control_line` with `-ERR 'maximum control line exceeded'` and closes, and
 * nats.js then only times out. A line of the same length is sent (no credentials in it: the
 * limit is checked before anything is read). Undefined when that is not the reason.
 */
export async function diagnoseControlLine(settings: ConnectionSettings, timeoutMs = 2000): Promise<string | undefined> {
  const length = connectLineBytes(settings);
  const url = settings.servers[0];
  if (!url || settings.tls || length <= DEFAULT_MAX_CONTROL_LINE - 512) return undefined;
  const { hostname, port } = new URL(url.replace(/^[a-z]+:\/\//i, 'http://'));
  const socket = netConnect({ host: hostname.replace(/^\[|\]$/g, ''), port: Number(port) || 4222 });
  try {
    const answer = await new Promise<string>((resolve) => {
      let text = '';
      const timer = setTimeout(() => resolve(text), timeoutMs);
      socket.once('error', () => resolve(text));
      socket.on('data', (data: Buffer) => {
        if (text === '') socket.write(`CONNECT {"verbose":false,"pedantic":false,"name":"${'x'.repeat(length)}"}\r\nPING\r\n`);
        text += data.toString('latin1');
        if (/-ERR|PONG/.test(text)) {
          clearTimeout(timer);
          resolve(text);
        }
      });
    });
    if (!/maximum control line exceeded/i.test(answer)) return undefined;
    return `the server refused our CONNECT line (about ${length} bytes with these credentials) as longer than its max_control_line; set max_control_line: 8KB (or more) in its configuration (docs/SECURITY.md)`;
  } finally {
    socket.destroy();
  }
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

/** One line saying why connecting with `settings` failed with `error`; secrets removed. */
export function describeConnectError(error: unknown, settings: ConnectionSettings): string {
  const identity = describeIdentity(settings);
  const auth = authenticationFailure(error);
  if (auth === 'rejected') {
    const hint = settings.auth ? `wrong or unknown credentials for ${identity}` : 'the server requires credentials (give --user/--password, --token, --nkey or --creds)';
    return `authentication failed: ${hint}`;
  }
  if (auth === 'expired') return `authentication failed: the credentials of ${identity} have expired`;
  if (auth === 'timed out') return 'authentication timed out: the server stopped waiting for our credentials (a loaded machine or a slow link); try again';
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
