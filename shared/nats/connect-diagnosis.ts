/**
 * Why a connection to NATS failed, in words a user can act on: rejected or expired credentials,
 * a TLS problem (and which), nothing listening, a timeout. For TLS, where the client only times
 * out, the server is asked once more by hand (`diagnoseTls`).
 */
import { readFileSync } from 'node:fs';
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
