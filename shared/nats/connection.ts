/**
 * One way to connect to NATS for every tally process: reconnecting forever (the client's default
 * gives up after ~20 s, and a worker must outlive a server restart) with short pings, the
 * credentials and TLS settings of a secured deployment, and errors that name the server (never
 * a secret) and say what failed (connect-diagnosis.ts). Faults measured: docs/RELIABILITY.md.
 */
import { readFileSync } from 'node:fs';
import type { NatsConnection, NodeConnectionOptions } from '@nats-io/transport-node';
import type { NodeTransport } from '@nats-io/transport-node/lib/node_transport.js';
import type { JetStreamManager } from '@nats-io/jetstream';
import { ServerError, UsageError, describeError } from '../errors.js';
import { displayServers, inboxPrefixFor, redact, type ConnectionSettings } from './connection-settings.js';
import { describeConnectError, diagnoseControlLine, diagnoseTls } from './connect-diagnosis.js';
import { authenticationFailure, isJetStreamUnavailable } from './errors.js';
import { permissionDenied } from './permissions.js';
// The NATS client modules load when a connection is first made, not with this module: the
// worker supervisor and the CLI's argument handling load the connection modules without them.
import { jetstreamLib, nodeTransportLib, transportLib } from './client.js';


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
  const { credsAuthenticator, nkeyAuthenticator } = transportLib();
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
    return await connectOnceMore(options);
  } catch (error) {
    let reason = describeConnectError(error, settings);
    // A TLS 1.3 server refuses a client certificate after the client thinks the handshake is
    // done; nats.js then retries until its timeout. Ask the server once more, by hand, why.
    if (reason === 'timed out' && settings.tls) reason = (await diagnoseTls(settings).catch(() => undefined)) ?? reason;
    // Long credentials (an operator-mode JWT with many permissions) can outgrow the server's
    // protocol line limit, which nats.js also reports only as a timeout.
    if (reason === 'timed out') reason = (await diagnoseControlLine(settings).catch(() => undefined)) ?? reason;
    throw new ServerError(where, `cannot connect to NATS: ${reason}`, { cause: error });
  }
}

/**
 * Connects, and once more when the server stopped waiting for our credentials (its
 * authentication timeout: nats-server's default is 2 s): the CONNECT came late, from a process
 * too busy to send it (a loaded machine, seen in a test run) or over a slow link, not a refusal.
 * A second late CONNECT is reported as such.
 */
async function connectOnceMore(options: NodeConnectionOptions): Promise<NatsConnection> {
  try {
    return await connectClosingFailedAttempts(options);
  } catch (error) {
    if (authenticationFailure(error) !== 'timed out') throw error;
    return await connectClosingFailedAttempts(options);
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
  const { NatsConnectionImpl, setTransportFactory } = transportLib();
  const { NodeTransport, nodeResolveHost } = nodeTransportLib();
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

/** A JetStream manager, or a ServerError saying the server has no JetStream. */
export async function jetstreamManagerFor(nc: NatsConnection, settings: ConnectionSettings): Promise<JetStreamManager> {
  try {
    const { jetstreamManager } = jetstreamLib();
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
