/**
 * The dashboard's web server (fastify): three pages (one HTML file and one ES module, no inline
 * script), the live event stream every page follows (server-sent events fed by the one
 * LiveState), a job's top rows, and /metrics. Every request passes the access check; every
 * answer carries a Content-Security-Policy that allows only this server's own scripts.
 */
import type * as FastifyModule from 'fastify';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ServerResponse } from 'node:http';
import { UsageError, describeError } from '../../shared/errors.js';
import { isJobId } from '../../shared/subjects.js';
import { AccessCheck, TOKEN_COOKIE } from './auth.js';
import type { CancelOutcome, LiveEvent, LiveState } from './live.js';
import type { DashboardMetrics } from './metrics.js';
import { TABLE_KINDS, readTopRows } from './top-words.js';

/** Scripts, styles and data from this server only; no inline script or style element; no framing. */
export const CONTENT_SECURITY_POLICY =
  "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

const SECURITY_HEADERS: Record<string, string> = {
  'content-security-policy': CONTENT_SECURITY_POLICY,
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'x-frame-options': 'DENY',
  'cache-control': 'no-store',
};

// Loaded with require(), as commander is (commander.ts): a static import of a package would load
// it with every tally command once the command is bundled (scripts/bundle.mjs).
const Fastify = createRequire(import.meta.url)('fastify') as typeof FastifyModule.default;

const ASSETS_DIR = fileURLToPath(new URL('../../../coordinator/dashboard/assets/', import.meta.url));
const UPLOT_DIR = dirname(createRequire(import.meta.url).resolve('uplot'));

/** Every file the server hands out, by the name it is asked for: nothing else is read from disk. */
const ASSETS: Record<string, { path: string; type: string }> = {
  'app.js': { path: join(ASSETS_DIR, 'app.js'), type: 'text/javascript; charset=utf-8' },
  'style.css': { path: join(ASSETS_DIR, 'style.css'), type: 'text/css; charset=utf-8' },
  'uPlot.esm.js': { path: join(UPLOT_DIR, 'uPlot.esm.js'), type: 'text/javascript; charset=utf-8' },
  'uPlot.min.css': { path: join(UPLOT_DIR, 'uPlot.min.css'), type: 'text/css; charset=utf-8' },
};
const PAGE = join(ASSETS_DIR, 'index.html');

/** The header a cancel request must carry (see the route). */
const ACTION_HEADER = 'x-tally-action';
/** Most rows of a finished table a page may ask for. */
const MAX_TOP = 1000;
/** Unsent event-stream bytes at which a page is dropped (its browser reconnects and starts afresh). */
const MAX_BUFFERED_BYTES = 16 * 1024 * 1024;
/** A comment line keeps idle event streams open through proxies. */
const HEARTBEAT_MS = 15_000;

/** A certificate chain and its private key (PEM), read and checked by the command line. */
export interface HttpsFiles {
  cert: Buffer;
  key: Buffer;
}

export interface DashboardServerOptions {
  live: LiveState;
  metrics: DashboardMetrics;
  /** The access token; null on loopback without one. */
  token: string | null;
  /** Serve HTTPS with this certificate; plain HTTP without. */
  https?: HttpsFiles;
}

type View = 'jobs' | 'job' | 'workers';

export class DashboardServer {
  private readonly app: FastifyInstance;
  private readonly access: AccessCheck;
  private readonly streams = new Set<ServerResponse>();
  /** 'https' with a certificate, else 'http': what the pages' own origin starts with. */
  readonly scheme: 'http' | 'https';

  constructor(private readonly o: DashboardServerOptions) {
    this.access = new AccessCheck(o.token);
    this.scheme = o.https ? 'https' : 'http';
    // No request logging: a URL may carry the token. The routes see the same request and reply
    // objects over HTTPS (https.Server is an http.Server), so the instance is typed as plain HTTP.
    this.app = (o.https
      ? Fastify({ logger: false, forceCloseConnections: true, https: { cert: o.https.cert, key: o.https.key } })
      : Fastify({ logger: false, forceCloseConnections: true })) as unknown as FastifyInstance;
    this.app.addHook('onRequest', async (request, reply) => this.guard(request, reply));
    this.routes();
  }

  /** Sends 401/403 (or a redirect that turns ?token= into a cookie) unless the request may pass. */
  private async guard(request: FastifyRequest, reply: FastifyReply): Promise<void> {
    reply.headers(SECURITY_HEADERS);
    const query = request.query as Record<string, unknown>;
    const queryToken = typeof query.token === 'string' ? query.token : undefined;
    const verdict = this.access.check({ authorization: request.headers.authorization, cookie: request.headers.cookie, queryToken, host: request.headers.host });
    if (verdict === 'wrong-host') {
      return reply.code(403).type('text/plain; charset=utf-8').send('this dashboard answers to localhost only (start it with --host and an access token to reach it by another name)\n');
    }
    if (verdict === 'unauthorized') {
      return reply.code(401).header('www-authenticate', 'Bearer').type('text/plain; charset=utf-8').send('unauthorized: open the address the dashboard printed (with ?token=…), or send Authorization: Bearer TOKEN\n');
    }
    // A page opened with the token in its address: keep it in a cookie and drop it from the address.
    if (queryToken !== undefined && this.access.required && request.method === 'GET' && isPagePath(request.url)) {
      const url = new URL(request.url, 'http://localhost');
      url.searchParams.delete('token');
      // Over HTTPS the browser must never send the token back over plain HTTP.
      const secure = this.schemeOf(request) === 'https' ? '; Secure' : '';
      return reply
        .header('set-cookie', `${TOKEN_COOKIE}=${encodeURIComponent(queryToken)}; HttpOnly; SameSite=Strict; Path=/${secure}`)
        .redirect(url.pathname + url.search, 303);
    }
  }

  private routes(): void {
    const page = async (_request: FastifyRequest, reply: FastifyReply) => reply.type('text/html; charset=utf-8').send(await readFile(PAGE));
    this.app.get('/', page);
    this.app.get('/workers', page);
    this.app.get<{ Params: { id: string } }>('/jobs/:id', async (request, reply) => {
      if (!isJobId(request.params.id)) return reply.code(404).type('text/plain; charset=utf-8').send('no such job\n');
      return page(request, reply);
    });
    this.app.get<{ Params: { name: string } }>('/assets/:name', async (request, reply) => {
      const asset = Object.hasOwn(ASSETS, request.params.name) ? ASSETS[request.params.name] : undefined;
      if (!asset) return reply.code(404).type('text/plain; charset=utf-8').send('not found\n');
      return reply.type(asset.type).send(await readFile(asset.path));
    });
    this.app.get<{ Params: { id: string }; Querystring: { n?: string } }>('/api/jobs/:id/top', async (request, reply) => {
      const { id } = request.params;
      const n = Math.min(MAX_TOP, Math.max(1, Number.parseInt(request.query.n ?? '20', 10) || 20));
      const job = isJobId(id) ? this.o.live.job(id) : undefined;
      if (!job) return reply.code(404).send({ error: 'no such job' });
      if (!TABLE_KINDS.has(job.view.kind)) return reply.code(404).send({ error: `a ${job.view.kind} job has no table of rows` });
      if (job.view.status !== 'done') return reply.code(409).send({ error: `the job is ${job.view.status}` });
      const store = this.o.live.store;
      if (!store) return reply.code(503).send({ error: 'not connected to the NATS server' });
      try {
        const top = await readTopRows(store, id, n);
        if (!top) return reply.code(404).send({ error: 'the result is no longer stored' });
        return reply.send(top);
      } catch (error) {
        return reply.code(502).send({ error: describeError(error) });
      }
    });
    // Cancelling: a POST with a header no cross-site form can send (and that a cross-origin
    // script could send only after a CORS preflight, which is never granted), from this origin.
    this.app.post<{ Params: { id: string } }>('/api/jobs/:id/cancel', async (request, reply) => {
      const origin = request.headers.origin;
      if (request.headers[ACTION_HEADER] !== 'cancel' || (origin !== undefined && origin !== `${this.schemeOf(request)}://${request.headers.host}`)) {
        return reply.code(403).send({ error: 'a cancel must come from the dashboard page itself' });
      }
      const { id } = request.params;
      const job = isJobId(id) ? this.o.live.job(id) : undefined;
      if (!job) return reply.code(404).send({ error: 'no such job' });
      if (job.view.status !== 'running') return reply.code(409).send({ error: `the job is ${job.view.status}` });
      const outcome = await this.o.live.cancel(id);
      const answers: Record<CancelOutcome, [number, string]> = {
        cancelling: [202, 'its coordinator is cancelling the job'],
        'no-coordinator': [409, 'no coordinator is running this job now (it may have died: `tally resume` or `tally jobs --delete`)'],
        denied: [403, "this dashboard may not cancel jobs (its NATS user lacks the coordinator role's tally.cancel.*, or it runs --read-only)"],
        'not-connected': [503, 'not connected to the NATS server'],
        'no-answer': [504, 'the coordinator did not answer in time'],
      };
      const [code, message] = answers[outcome];
      return reply.code(code).send(code === 202 ? { ok: message } : { error: message });
    });
    this.app.get('/metrics', async (_request, reply) => {
      const { text, contentType } = await this.o.metrics.render();
      return reply.type(contentType).send(text);
    });
    this.app.get<{ Querystring: { view?: string; job?: string } }>('/events', (request, reply) => {
      const view: View = request.query.view === 'job' || request.query.view === 'workers' ? request.query.view : 'jobs';
      const job = view === 'job' && typeof request.query.job === 'string' && isJobId(request.query.job) ? request.query.job : undefined;
      if (view === 'job' && !job) return reply.code(400).type('text/plain; charset=utf-8').send('view=job needs a valid job=ID\n');
      this.stream(request, reply, view, job);
    });
  }

  /** One page's event stream: a snapshot, then what changes for its view. */
  private stream(request: FastifyRequest, reply: FastifyReply, view: View, job: string | undefined): void {
    reply.hijack();
    const res = reply.raw;
    res.writeHead(200, { ...SECURITY_HEADERS, 'content-type': 'text/event-stream; charset=utf-8', connection: 'keep-alive' });
    const send = (event: string, data: unknown) => {
      // A page that does not read what it is sent is let go rather than buffered for without end.
      if (res.writableLength > MAX_BUFFERED_BYTES) res.destroy();
      else res.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
    };
    const live = this.o.live;
    res.write('retry: 2000\n\n');
    if (view === 'jobs') send('snapshot', { link: live.linkView, jobs: live.jobViews() });
    else if (view === 'workers') send('snapshot', { link: live.linkView, workers: live.workerViews() });
    else {
      const found = live.job(job!);
      send('snapshot', { link: live.linkView, job: found?.view ?? null, samples: found?.samples ?? [], feed: found?.feed ?? null, incidents: found?.incidents ?? null });
    }
    const unsubscribe = live.subscribe((event: LiveEvent) => {
      if (event.type === 'link') send('link', event.link);
      else if (event.type === 'workers' && view === 'workers') send('workers', event.workers);
      else if (event.type === 'job' && view === 'jobs') send('job', { job: event.job, sample: event.sample ?? null });
      // A job's page also gets its record's dead-letter detail (written when the job ends).
      else if (event.type === 'job' && event.job.id === job) send('job', { job: event.job, sample: event.sample ?? null, incidents: live.job(job)?.incidents ?? null });
      else if (event.type === 'removed' && (view === 'jobs' || event.id === job)) send('removed', { id: event.id });
      else if (event.type === 'feed' && event.feed.job === job) send('feed', event.feed);
    });
    const heartbeat = setInterval(() => res.write(': ping\n\n'), HEARTBEAT_MS);
    this.streams.add(res);
    const end = () => {
      clearInterval(heartbeat);
      unsubscribe();
      this.streams.delete(res);
    };
    request.raw.on('close', end);
    res.on('close', end);
    res.on('error', end);
  }

  /**
   * The scheme the browser used: HTTPS when this server serves it, else what a reverse proxy
   * that terminates TLS says in X-Forwarded-Proto. Trusting the header is safe here: a browser
   * cannot add it to a cross-site request (no CORS preflight is ever granted), and a client that
   * sets it itself only makes its own cookie Secure or its own cancel need an https Origin.
   */
  private schemeOf(request: FastifyRequest): 'http' | 'https' {
    if (this.o.https) return 'https';
    const forwarded = request.headers['x-forwarded-proto'];
    const first = (Array.isArray(forwarded) ? forwarded[0] : forwarded)?.split(',')[0]?.trim().toLowerCase();
    return first === 'https' ? 'https' : 'http';
  }

  /**
   * Listens on host:port; resolves to the address it listens on.
   * @param elseAnyPort when `port` is in use, listen on any free port instead
   * @throws UsageError naming --host or --port when that address cannot be had
   */
  async listen(host: string, port: number, elseAnyPort = false): Promise<{ host: string; port: number }> {
    try {
      await this.app.listen({ host, port });
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code === 'EADDRINUSE' && elseAnyPort && port !== 0) return this.listen(host, 0);
      if (code === 'EADDRINUSE') throw new UsageError(`--port: ${port} is in use on ${host}`);
      if (code === 'EACCES') throw new UsageError(`--port: ${port} needs privileges this user lacks`);
      if (code === 'EADDRNOTAVAIL' || code === 'ENOTFOUND' || code === 'EAI_AGAIN' || code === 'EAFNOSUPPORT') throw new UsageError(`--host: cannot listen on '${host}' (${code})`);
      throw error;
    }
    const address = this.app.server.address();
    return typeof address === 'object' && address !== null ? { host: address.address, port: address.port } : { host, port };
  }

  /** Ends every event stream, then stops listening. */
  async close(): Promise<void> {
    for (const res of this.streams) res.end();
    this.streams.clear();
    await this.app.close();
  }
}

function isPagePath(url: string): boolean {
  const path = url.split('?')[0]!;
  return path === '/' || path === '/workers' || path.startsWith('/jobs/');
}
