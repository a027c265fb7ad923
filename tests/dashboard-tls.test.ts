/**
 * `tally dashboard --https-cert FILE --https-key FILE` against a real nats-server, with a
 * self-signed certificate made by openssl for this run: the pages, the event stream and
 * /metrics over HTTPS (verified against that certificate), plain HTTP refused, the access token
 * still required off loopback (its cookie Secure), the cancel route taking the https origin;
 * the same behind a reverse proxy that terminates TLS (X-Forwarded-Proto); and the usage
 * errors, one line and exit 2 before anything starts.
 */
import test from 'ava';
import { execFileSync, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { join } from 'node:path';
import { cleanEnv, collect, runTally, spawnTally, startTestServer, tempDir, type RunResult, type TestServer } from './helpers/tally.js';
import { waitFor } from './helpers/watch.js';

interface Answer {
  status: number;
  headers: IncomingHttpHeaders;
  /** The whole body, or for an event stream its first chunk. */
  body: string;
}

let server: TestServer;
let dir: ReturnType<typeof tempDir>;
let cert: string;
let key: string;
let ca: Buffer;

test.before(async () => {
  dir = tempDir('tally-dash-tls-');
  cert = join(dir.path, 'cert.pem');
  key = join(dir.path, 'key.pem');
  // prettier-ignore
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-subj', '/CN=localhost',
    '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1', '-days', '1', '-keyout', key, '-out', cert], { stdio: 'ignore' });
  ca = readFileSync(cert);
  server = await startTestServer();
});

test.after.always(async () => {
  await server?.stop();
  dir?.remove();
});

/** One request; an event stream is cut after its first chunk. */
function ask(url: string, options: { method?: string; headers?: Record<string, string>; ca?: Buffer } = {}): Promise<Answer> {
  const target = new URL(url);
  const send = target.protocol === 'https:' ? httpsRequest : httpRequest;
  return new Promise((resolve, reject) => {
    const req = send(target, { method: options.method ?? 'GET', headers: options.headers, ...(options.ca ? { ca: options.ca } : {}) }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        body += chunk;
        if (String(res.headers['content-type']).startsWith('text/event-stream')) {
          res.destroy();
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body });
        }
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

interface Running {
  child: ChildProcess;
  url: string;
  done: Promise<RunResult>;
}

/** Starts `tally dashboard ARGS` and resolves once it printed its address. */
async function startDashboard(args: string[]): Promise<Running> {
  const child = spawnTally(['dashboard', '--server', server.url, '--port', '0', ...args]);
  let stdout = '';
  child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
  const done = collect(child);
  await waitFor(() => /tally dashboard: \S+\n/.test(stdout) || child.exitCode !== null, 'the dashboard to print its address');
  const url = /tally dashboard: (\S+)\n/.exec(stdout)?.[1];
  if (!url) throw new Error(`the dashboard did not start: ${(await done).stderr}`);
  return { child, url, done };
}

/** Starts `tally dashboard ARGS` over HTTPS with this run's certificate. */
function startHttpsDashboard(args: string[]): Promise<Running> {
  return startDashboard(['--https-cert', cert, '--https-key', key, ...args]);
}

async function stop(running: Running): Promise<RunResult> {
  if (running.child.exitCode === null) running.child.kill('SIGTERM');
  return running.done;
}

test.serial('on loopback: pages, the event stream and /metrics over HTTPS with the given certificate; plain HTTP to the port fails', async (t) => {
  const running = await startHttpsDashboard([]);
  try {
    t.regex(running.url, /^https:\/\/127\.0\.0\.1:\d+\/$/);
    const origin = new URL(running.url).origin;
    for (const path of ['/', '/workers', '/jobs/mxbwtpqh-yetttj']) {
      const page = await ask(`${origin}${path}`, { ca });
      t.is(page.status, 200, path);
      t.regex(String(page.headers['content-type']), /^text\/html/, path);
    }
    const events = await ask(`${origin}/events?view=jobs`, { ca });
    t.is(events.status, 200);
    t.regex(events.body, /^retry: 2000\n/);
    // The dashboard connects in the background: /metrics says so once it has.
    let metrics: Answer | undefined;
    await waitFor(async () => {
      metrics = await ask(`${origin}/metrics`, { ca });
      return metrics.status === 200 && /^tally_nats_connected 1$/m.test(metrics.body);
    }, '/metrics over HTTPS, connected to NATS');
    t.regex(String(metrics!.headers['content-type']), /^text\/plain; version=0\.0\.4/);
    // Only this certificate is trusted here: without it the handshake is refused.
    await t.throwsAsync(ask(`${origin}/`), { message: /self[- ]signed/i });
    // Plain HTTP to the same port gets no page.
    await t.throwsAsync(ask(`http://127.0.0.1:${new URL(origin).port}/`));
    // The cancel route takes the page's own origin, which is https now (404: no such job; 403: refused).
    const cancel = (from: string) => ask(`${origin}/api/jobs/mxbwtpqh-yetttj/cancel`, { ca, method: 'POST', headers: { 'x-tally-action': 'cancel', origin: from } });
    t.is((await cancel(origin)).status, 404);
    t.is((await cancel(origin.replace('https:', 'http:'))).status, 403);
  } finally {
    const stopped = await stop(running);
    t.is(stopped.code, 0, stopped.stderr);
  }
});

test.serial('off loopback TLS does not replace the token: without it 401, with it a Secure cookie', async (t) => {
  const running = await startHttpsDashboard(['--host', '0.0.0.0']);
  try {
    const printed = new URL(running.url);
    t.is(printed.protocol, 'https:');
    const token = printed.searchParams.get('token');
    t.truthy(token);
    const base = `https://127.0.0.1:${printed.port}`;
    for (const path of ['/', '/metrics', '/events']) t.is((await ask(`${base}${path}`, { ca })).status, 401, path);
    t.is((await ask(`${base}/metrics`, { ca, headers: { authorization: `Bearer ${token}` } })).status, 200);
    const opened = await ask(`${base}/?token=${token}`, { ca });
    t.is(opened.status, 303);
    const cookie = String(opened.headers['set-cookie']);
    t.regex(cookie, /^tally_dashboard_token=[^;]+; HttpOnly; SameSite=Strict; Path=\/; Secure$/);
    t.is((await ask(`${base}/`, { ca, headers: { cookie: cookie.split(';')[0]! } })).status, 200);
  } finally {
    const stopped = await stop(running);
    t.is(stopped.code, 0, stopped.stderr);
  }
});

test.serial('behind a reverse proxy that terminates TLS (X-Forwarded-Proto: https): the cookie is Secure, a cancel must come from the https origin', async (t) => {
  const token = 'proxy-token-0123456789';
  const running = await startDashboard(['--access-token', token]);
  try {
    t.regex(running.url, /^http:\/\/127\.0\.0\.1:\d+\/$/);
    const base = new URL(running.url).origin;
    // As the proxy forwards the browser's request: its public name, and the scheme it was served with.
    const proxied = { host: 'dash.example', 'x-forwarded-proto': 'https' };
    const viaProxy = await ask(`${base}/?token=${token}`, { headers: proxied });
    t.is(viaProxy.status, 303);
    t.regex(String(viaProxy.headers['set-cookie']), /; Secure$/);
    const direct = await ask(`${base}/?token=${token}`, { headers: { host: 'dash.example' } });
    t.notRegex(String(direct.headers['set-cookie']), /Secure/);
    const cancel = (origin: string, headers: Record<string, string>) =>
      ask(`${base}/api/jobs/mxbwtpqh-yetttj/cancel`, { method: 'POST', headers: { ...headers, authorization: `Bearer ${token}`, 'x-tally-action': 'cancel', origin } });
    t.is((await cancel('https://dash.example', proxied)).status, 404);
    t.is((await cancel('http://dash.example', proxied)).status, 403);
    t.is((await cancel('https://dash.example', { host: 'dash.example' })).status, 403);
  } finally {
    const stopped = await stop(running);
    t.is(stopped.code, 0, stopped.stderr);
  }
});

test.serial('--https-cert and --https-key: one without the other, an unreadable or wrong file: one line naming it, exit 2, nothing started', async (t) => {
  const notPem = join(dir.path, 'not.pem');
  writeFileSync(notPem, 'not a certificate\n');
  const otherKey = join(dir.path, 'other-key.pem');
  execFileSync('openssl', ['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', otherKey], { stdio: 'ignore' });
  const missing = join(dir.path, 'missing.pem');
  const cases: Array<[string[], RegExp]> = [
    [['--https-cert', cert], /^tally: --https-cert: give --https-cert and --https-key together$/],
    [['--https-key', key], /^tally: --https-key: give --https-cert and --https-key together$/],
    [['--https-cert', missing, '--https-key', key], new RegExp(`^tally: --https-cert: cannot read ${missing}: no such file or directory$`)],
    [['--https-cert', cert, '--https-key', missing], new RegExp(`^tally: --https-key: cannot read ${missing}: no such file or directory$`)],
    [['--https-cert', notPem, '--https-key', key], new RegExp(`^tally: --https-cert: ${notPem} holds no PEM certificate$`)],
    [['--https-cert', key, '--https-key', key], new RegExp(`^tally: --https-cert: ${key} holds no PEM certificate$`)],
    [['--https-cert', cert, '--https-key', cert], new RegExp(`^tally: --https-key: ${cert} holds no unencrypted PEM private key$`)],
    [['--https-cert', cert, '--https-key', otherKey], new RegExp(`^tally: --https-key: ${otherKey} is not the private key of the certificate in ${cert}$`)],
  ];
  for (const [args, expected] of cases) {
    // No --server: the embedded default, which would make its data directory once started.
    const data = join(dir.path, 'data');
    const run = await runTally(['dashboard', '--port', '0', ...args], { env: cleanEnv({ TALLY_DATA_DIR: data }) });
    t.is(run.code, 2, `${args.join(' ')}: ${run.stderr}`);
    t.is(run.stdout, '', args.join(' '));
    t.is(run.stderr.trimEnd().split('\n').length, 1, run.stderr);
    t.regex(run.stderr.trimEnd(), expected);
    t.false(existsSync(data), `${args.join(' ')}: started the embedded server`);
  }
});
