/**
 * One way to connect to NATS for every tally process, with the options the design notes
 * measured (reconnect forever, short pings) and errors that name the server.
 */
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { jetstreamManager, type JetStreamManager } from '@nats-io/jetstream';
import { ServerError, describeError } from '../errors.js';

/** Where and how to connect. `servers` may list several URLs of one cluster. */
export interface ConnectionSettings {
  servers: string[];
  /** Shown in the server's connection list (`nats server report connections`). */
  name?: string;
  /** Milliseconds to wait for the first connection before failing. Default 5000. */
  connectTimeoutMs?: number;
}

/** The servers as one display string, with any credentials in URLs masked. */
export function displayServers(servers: string[]): string {
  return servers.map((url) => url.replace(/\/\/[^@/]*@/, '//***@')).join(',');
}

/** Splits a `--server` value ("nats://a:4222,nats://b:4222") into URLs. */
export function parseServers(value: string): string[] {
  return value
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
}

/**
 * Connects, failing within `connectTimeoutMs` with a ServerError naming the URL. Once connected
 * the client reconnects forever: a worker must outlive a server restart.
 */
export async function connectToNats(settings: ConnectionSettings): Promise<NatsConnection> {
  const where = displayServers(settings.servers);
  const timeout = settings.connectTimeoutMs ?? 5000;
  try {
    return await connect({
      servers: settings.servers,
      name: settings.name ?? 'tally',
      maxReconnectAttempts: -1,
      reconnectTimeWait: 500,
      pingInterval: 15_000,
      timeout,
    });
  } catch (error) {
    throw new ServerError(where, `cannot connect to NATS: ${describeConnectError(error)}`, { cause: error });
  }
}

function describeConnectError(error: unknown): string {
  const text = describeError(error);
  if (/authorization|authentication/i.test(text)) return `authentication failed (${text})`;
  if (/ECONNREFUSED|CONNECTION_REFUSED|refused/i.test(text)) return 'connection refused (is nats-server running there?)';
  if (/timeout/i.test(text)) return 'timed out';
  return text;
}

/** A JetStream manager, or a ServerError saying the server has no JetStream. */
export async function jetstreamManagerFor(nc: NatsConnection, settings: ConnectionSettings): Promise<JetStreamManager> {
  try {
    return await jetstreamManager(nc);
  } catch (error) {
    const text = describeError(error);
    const reason = /not enabled|no responders|503/i.test(text)
      ? 'JetStream is not enabled on this server (start nats-server with -js or a jetstream block)'
      : `JetStream unavailable: ${text}`;
    throw new ServerError(displayServers(settings.servers), reason, { cause: error });
  }
}
