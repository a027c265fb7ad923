/**
 * Who may look: on loopback without a token, anyone on this machine (requests must name a
 * loopback host, which a DNS-rebinding page cannot); anywhere else only with the access token,
 * checked on every request (pages, assets, the event stream, /metrics).
 *
 * The token comes as `Authorization: Bearer T` (Prometheus), as the cookie set when a page was
 * opened with `?token=T`, or as that query parameter itself. It is compared in constant time
 * and never written to a page, a log or /metrics.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { isIP } from 'node:net';

export const TOKEN_COOKIE = 'tally_dashboard_token';

/** True for 127.0.0.0/8, ::1 and localhost. */
export function isLoopbackHost(host: string): boolean {
  const bare = host.replace(/^\[(.*)\]$/, '$1').toLowerCase();
  if (bare === 'localhost' || bare === '::1') return true;
  return isIP(bare) === 4 && bare.startsWith('127.');
}

/** A new access token: 32 random bytes, URL-safe. */
export function newAccessToken(): string {
  return randomBytes(32).toString('base64url');
}

export type Verdict = 'ok' | 'unauthorized' | 'wrong-host';

export interface Credentials {
  authorization?: string;
  cookie?: string;
  queryToken?: string;
  /** The Host header. */
  host?: string;
}

export class AccessCheck {
  private readonly digest: Buffer | null;

  constructor(token: string | null) {
    this.digest = token === null ? null : sha256(token);
  }

  get required(): boolean {
    return this.digest !== null;
  }

  check(c: Credentials): Verdict {
    if (this.digest === null) {
      // Loopback only: a page on another site that rebinds its name to 127.0.0.1 still sends its own name.
      const host = (c.host ?? '').replace(/:\d+$/, '');
      return isLoopbackHost(host) ? 'ok' : 'wrong-host';
    }
    const given = [bearer(c.authorization), cookieValue(c.cookie, TOKEN_COOKIE), c.queryToken];
    return given.some((t) => t !== undefined && this.matches(t)) ? 'ok' : 'unauthorized';
  }

  matches(token: string): boolean {
    return this.digest !== null && timingSafeEqual(sha256(token), this.digest);
  }
}

function sha256(text: string): Buffer {
  return createHash('sha256').update(text, 'utf8').digest();
}

function bearer(header: string | undefined): string | undefined {
  const match = /^Bearer\s+(\S+)$/i.exec(header ?? '');
  return match?.[1];
}

function cookieValue(header: string | undefined, name: string): string | undefined {
  for (const part of (header ?? '').split(';')) {
    const eq = part.indexOf('=');
    if (eq <= 0 || part.slice(0, eq).trim() !== name) continue;
    try {
      return decodeURIComponent(part.slice(eq + 1).trim());
    } catch {
      return undefined;
    }
  }
  return undefined;
}
