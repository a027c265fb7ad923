/**
 * Inputs given as http:// or https:// URLs. The coordinator fetches a URL and carries its text
 * to the workers in chunks, like stdin (shared/text/file-input.ts), so any HTTP server works;
 * a compressed body is found by its first bytes and decompressed like a compressed file.
 *
 * A server that answers with an error, refuses the connection or does not answer: one line
 * naming the URL, exit 1 (RemoteInputError). Redirects are followed up to MAX_REDIRECTS times.
 */
import { RemoteInputError } from '../errors.js';
import { setting } from '../settings.js';
import { peekCompression, type Compression } from './compressed.js';

/** True for an input that names a URL rather than a path. */
export function isUrl(path: string): boolean {
  return /^https?:\/\//i.test(path);
}

/** Redirects followed, at most (curl's --max-redirs is 50, browsers stop at 20). */
export const MAX_REDIRECTS = 5;
/** How long a server may take to answer, and to send the next bytes of a body (TALLY_URL_TIMEOUT_MS). */
export const URL_TIMEOUT_MS = setting('TALLY_URL_TIMEOUT_MS');

/** What a first request says about a URL. */
export interface UrlProbe {
  compression: Compression | null;
}

/** Why a fetch failed, in the usual words. */
function failure(error: unknown, timeoutMs: number): string {
  const cause = (error as { cause?: { code?: string; message?: string } } | undefined)?.cause;
  const code = cause?.code ?? (error as NodeJS.ErrnoException | undefined)?.code;
  if ((error as Error | undefined)?.name === 'TimeoutError' || (error as Error | undefined)?.name === 'AbortError') return `no answer within ${timeoutMs / 1000} s`;
  if (code === 'ECONNREFUSED') return 'connection refused';
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN') return 'host not found';
  if (code === 'ECONNRESET' || code === 'UND_ERR_SOCKET') return 'the connection was closed by the server';
  return cause?.message ?? (error instanceof Error ? error.message : String(error));
}

/**
 * Fetches `url`, following redirects, and resolves once the headers of a successful answer are
 * in; the body is the caller's to read or cancel.
 * @throws RemoteInputError naming the URL
 */
export async function fetchUrl(url: string, timeoutMs = URL_TIMEOUT_MS): Promise<Response> {
  let at = url;
  for (let redirects = 0; ; redirects++) {
    let response: Response;
    try {
      response = await fetch(at, { redirect: 'manual', signal: AbortSignal.timeout(timeoutMs), headers: { 'accept-encoding': 'identity' } });
    } catch (error) {
      throw new RemoteInputError(url, failure(error, timeoutMs), { cause: error });
    }
    if (response.status >= 300 && response.status < 400 && response.headers.has('location')) {
      await response.body?.cancel();
      if (redirects >= MAX_REDIRECTS) throw new RemoteInputError(url, `more than ${MAX_REDIRECTS} redirects`);
      at = new URL(response.headers.get('location')!, at).href;
      continue;
    }
    if (!response.ok) {
      await response.body?.cancel();
      throw new RemoteInputError(url, `HTTP ${response.status}${response.statusText ? ` ${response.statusText}` : ''}`);
    }
    return response;
  }
}

/**
 * The body of `url`, as it arrives.
 * @throws RemoteInputError naming the URL: it cannot be fetched, or the body stops short
 */
export async function* urlBytes(url: string, timeoutMs = URL_TIMEOUT_MS): AsyncGenerator<Uint8Array> {
  const response = await fetchUrl(url, timeoutMs);
  if (!response.body) return;
  const reader = response.body.getReader();
  let received = 0;
  try {
    for (;;) {
      let timer: NodeJS.Timeout | undefined;
      const stalled = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new RemoteInputError(url, `no data for ${timeoutMs / 1000} s after ${received} bytes`)), timeoutMs);
      });
      let next: { done: true; value?: undefined } | { done: false; value: Uint8Array };
      try {
        next = await Promise.race([reader.read(), stalled]);
      } catch (error) {
        if (error instanceof RemoteInputError) throw error;
        throw new RemoteInputError(url, `the body stopped after ${received} bytes: ${failure(error, timeoutMs)}`, { cause: error });
      } finally {
        clearTimeout(timer);
      }
      if (next.done) break;
      received += next.value.length;
      yield next.value;
    }
  } finally {
    await reader.cancel().catch(() => undefined);
  }
  const length = response.headers.get('content-length');
  if (length !== null && /^\d+$/.test(length) && Number(length) !== received) {
    throw new RemoteInputError(url, `the body stopped after ${received} of ${length} bytes`);
  }
}

/**
 * Checks that `url` can be fetched and reads its first bytes, which say whether it is
 * compressed. Reads no more of the body than that.
 * @throws RemoteInputError naming the URL
 */
export async function probeUrl(url: string, timeoutMs = URL_TIMEOUT_MS): Promise<UrlProbe> {
  const body = urlBytes(url, timeoutMs);
  const first = await body.next();
  const head = first.done ? [] : [first.value];
  const { compression } = await peekCompression((async function* () {
    yield* head;
  })());
  await body.return(undefined);
  return { compression };
}
