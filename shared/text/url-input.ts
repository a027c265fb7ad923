/**
 * Inputs given as http:// or https:// URLs, in one of two ways decided per URL before the job
 * starts (see {@link probeUrl}):
 *
 * - RANGES, where the server serves byte ranges of an uncompressed body: the URL is planned like
 *   a file of its length (shared/text/file-input.ts) and each worker fetches its own ranges with
 *   `Range: bytes=lo-hi` (readUrlRange, through shared/text/remote-ranges.ts), when the job lets
 *   workers fetch URLs (`--workers-fetch-urls`: embedded workers, or `tally worker --fetch-urls`);
 *   the coordinator then reads none of the body. A range is read only when the server answers
 *   206 with exactly the bytes asked for, of a body of the planned length whose ETag and
 *   Last-Modified are those the probe saw: otherwise the task fails, naming the URL.
 * - CARRIED, for any other server (or when workers may not fetch): the coordinator fetches the
 *   URL and carries its text to the workers in chunks, like stdin; a compressed body is found by
 *   its first bytes and decompressed like a compressed file.
 *
 * A server that answers with an error, refuses the connection or does not answer: one line
 * naming the URL, exit 1 (RemoteInputError). Redirects are followed up to MAX_REDIRECTS times.
 */
import { InputChangedError, RemoteInputError, TaskRejectedError } from '../errors.js';
import { setting } from '../settings.js';
import { MAGIC_BYTES, compressionOf, type Compression } from './compressed.js';

/** True for an input that names a URL rather than a path. */
export function isUrl(path: string): boolean {
  return /^https?:\/\//i.test(path);
}

/** Redirects followed, at most (curl's --max-redirs is 50, browsers stop at 20). */
export const MAX_REDIRECTS = 5;
/** How long a server may take to answer, and to send the next bytes of a body (TALLY_URL_TIMEOUT_MS). */
export const URL_TIMEOUT_MS = setting('TALLY_URL_TIMEOUT_MS');
/** Bytes the probe asks for: enough for the compression magic, little for a server to send. */
const PROBE_BYTES = 64;
/** Longest ETag a range may carry (servers send a few dozen characters; a longer one: carried). */
export const MAX_ETAG_CHARS = 256;

/**
 * What a URL served in byte ranges was when the job was planned: its length and its validators,
 * which every range read must find unchanged.
 */
export interface UrlRanges {
  /** The body's length in bytes. */
  size: number;
  /** Last-Modified in ms since the epoch; 0 when the server sends none. */
  mtimeMs: number;
  /** The ETag as the server sent it (weak ones too: compared as text); absent when none. */
  etag?: string;
}

/** What a first request says about a URL. */
export interface UrlProbe {
  compression: Compression | null;
  /** Present when workers can fetch byte ranges of it (uncompressed, served in ranges). */
  ranges?: UrlRanges;
}

/** How {@link fetchUrl} asks. */
export interface FetchOptions {
  timeoutMs?: number;
  /** Request headers besides Accept-Encoding (always identity). */
  headers?: Record<string, string>;
  /** Error statuses the caller handles itself: returned, not thrown. */
  pass?: readonly number[];
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
export async function fetchUrl(url: string, options: FetchOptions = {}): Promise<Response> {
  const timeoutMs = options.timeoutMs ?? URL_TIMEOUT_MS;
  // Identity: a body the client decompresses on the fly has no byte offsets of its own.
  const headers = { ...options.headers, 'accept-encoding': 'identity' };
  let at = url;
  for (let redirects = 0; ; redirects++) {
    let response: Response;
    try {
      response = await fetch(at, { redirect: 'manual', signal: AbortSignal.timeout(timeoutMs), headers });
    } catch (error) {
      throw new RemoteInputError(url, failure(error, timeoutMs), { cause: error });
    }
    if (response.status >= 300 && response.status < 400 && response.headers.has('location')) {
      await response.body?.cancel();
      if (redirects >= MAX_REDIRECTS) throw new RemoteInputError(url, `more than ${MAX_REDIRECTS} redirects`);
      at = new URL(response.headers.get('location')!, at).href;
      continue;
    }
    if (!response.ok && !options.pass?.includes(response.status)) {
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
  const response = await fetchUrl(url, { timeoutMs });
  let received = 0;
  for await (const piece of bodyBytes(url, response, timeoutMs)) {
    received += piece.length;
    yield piece;
  }
  const length = response.headers.get('content-length');
  if (length !== null && /^\d+$/.test(length) && Number(length) !== received) {
    throw new RemoteInputError(url, `the body stopped after ${received} of ${length} bytes`);
  }
}

/**
 * The body of an answer, as it arrives; a server that sends nothing for `timeoutMs` fails it.
 * Stopping early cancels the rest.
 * @throws RemoteInputError naming the URL
 */
async function* bodyBytes(url: string, response: Response, timeoutMs: number): AsyncGenerator<Uint8Array> {
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
}

/** The first bytes of an answer's body, at least `want` unless it is shorter; the rest is cancelled. */
async function headOf(url: string, response: Response, want: number, timeoutMs: number): Promise<Uint8Array> {
  const pieces: Uint8Array[] = [];
  let length = 0;
  for await (const piece of bodyBytes(url, response, timeoutMs)) {
    pieces.push(piece);
    length += piece.length;
    if (length >= want) break;
  }
  return Buffer.concat(pieces);
}

/**
 * Checks that `url` can be fetched and reads its first bytes, which say whether it is
 * compressed; and asks for them as a byte range, so that the answer also says whether workers
 * can fetch ranges of it (see {@link UrlProbe}). Reads no more of the body than that.
 * @throws RemoteInputError naming the URL
 */
export async function probeUrl(url: string, timeoutMs = URL_TIMEOUT_MS): Promise<UrlProbe> {
  // 416: a range of an empty body cannot be satisfied; such a URL is simply fetched.
  const response = await fetchUrl(url, { timeoutMs, headers: { range: `bytes=0-${PROBE_BYTES - 1}` }, pass: [416] });
  if (response.status === 416) {
    await response.body?.cancel();
    return { compression: compressionOf(await headOf(url, await fetchUrl(url, { timeoutMs }), MAGIC_BYTES, timeoutMs)) };
  }
  const ranges = servedInRanges(response);
  const compression = compressionOf(await headOf(url, response, MAGIC_BYTES, timeoutMs));
  // A compressed body served in ranges: workers may fetch it whole and decompress it
  // (compressed-pieces.ts); its text has no byte ranges of its own.
  return ranges ? { compression, ranges } : { compression };
}

/**
 * What the answer to the probe's range request says of a body served in byte ranges, or null:
 * a 206 for the bytes from 0 of a non-empty body of a stated length, not encoded. (A 206 proves
 * range support better than an Accept-Ranges header, which a server may send and not honour.)
 */
function servedInRanges(response: Response): UrlRanges | null {
  if (response.status !== 206 || !identity(response)) return null;
  if (response.headers.get('accept-ranges')?.trim().toLowerCase() === 'none') return null;
  const match = /^bytes 0-(\d+)\/(\d+)$/.exec(response.headers.get('content-range')?.trim() ?? '');
  if (!match) return null;
  const size = Number(match[2]);
  if (!Number.isSafeInteger(size) || size === 0 || Number(match[1]) >= size) return null;
  const found = validators(response);
  if ((found.etag?.length ?? 0) > MAX_ETAG_CHARS) return null;
  return { size, ...found };
}

/** True when the body is sent as it is (no Content-Encoding, or identity). */
function identity(response: Response): boolean {
  const encoding = response.headers.get('content-encoding')?.trim().toLowerCase();
  return encoding === undefined || encoding === '' || encoding === 'identity';
}

/** An answer's validators: Last-Modified in ms (0 without one) and ETag (when sent). */
function validators(response: Response): { mtimeMs: number; etag?: string } {
  const modified = Date.parse(response.headers.get('last-modified') ?? '');
  const etag = response.headers.get('etag');
  return { mtimeMs: Number.isFinite(modified) ? modified : 0, ...(etag !== null ? { etag } : {}) };
}

/**
 * Fetches bytes [from, to) of `url` (a worker's read of a URL input planned in ranges): asks
 * for exactly those with `Range`, and takes them only from a 206 whose Content-Range names
 * them in a body of the planned length, with the validators the probe saw.
 * @param planned the URL as the job was planned
 * @throws InputChangedError naming the URL when its length, ETag or Last-Modified changed, or
 *   its server no longer answers with ranges (a 200 with the whole body is refused, never
 *   counted); TaskRejectedError when it sends other bytes than those asked for;
 *   RemoteInputError when it cannot be fetched (retried)
 */
export async function readUrlRange(url: string, planned: UrlRanges, from: number, to: number, timeoutMs = URL_TIMEOUT_MS): Promise<Uint8Array> {
  if (to <= from) return new Uint8Array(0);
  const response = await fetchUrl(url, { timeoutMs, headers: { range: `bytes=${from}-${to - 1}` } });
  try {
    checkRangeAnswer(url, response, planned, from, to);
  } catch (error) {
    await response.body?.cancel();
    throw error;
  }
  const pieces: Uint8Array[] = [];
  let length = 0;
  for await (const piece of bodyBytes(url, response, timeoutMs)) {
    pieces.push(piece);
    length += piece.length;
    if (length > to - from) break;
  }
  if (length !== to - from) throw new RemoteInputError(url, `bytes ${from}-${to - 1}: the server sent ${length} bytes, not ${to - from}`);
  return pieces.length === 1 ? pieces[0]! : Buffer.concat(pieces);
}

/** Throws unless `response` holds bytes [from, to) of the body the job was planned with. */
function checkRangeAnswer(url: string, response: Response, planned: UrlRanges, from: number, to: number): void {
  // The probe had a 206: the server changed its ways since (the body is never counted).
  if (response.status !== 206) {
    throw new InputChangedError(url, `its server answered a byte range request with HTTP ${response.status}, not the range (count it with --no-workers-fetch-urls)`);
  }
  if (!identity(response)) throw new TaskRejectedError(`${url}: the server sent a byte range ${response.headers.get('content-encoding')}-encoded`);
  const match = /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(response.headers.get('content-range')?.trim() ?? '');
  if (match && match[3] !== '*' && Number(match[3]) !== planned.size) throw new InputChangedError(url, `it has ${match[3]} bytes, not ${planned.size}`);
  const now = validators(response);
  if (planned.etag !== undefined && now.etag !== planned.etag) throw new InputChangedError(url, `its ETag is ${now.etag ?? 'gone'}, not ${planned.etag}`);
  if (planned.mtimeMs !== 0 && now.mtimeMs !== planned.mtimeMs) throw new InputChangedError(url, `modified ${now.mtimeMs === 0 ? 'at an unknown time' : new Date(now.mtimeMs).toISOString()}`);
  if (!match || Number(match[1]) !== from || Number(match[2]) !== to - 1) {
    throw new TaskRejectedError(`${url}: asked for bytes ${from}-${to - 1} of ${planned.size}, the server sent ${response.headers.get('content-range') ?? 'no Content-Range'}`);
  }
}
