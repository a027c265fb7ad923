/** What an embedded server's monitoring endpoint (/varz) says of it: its name, its clients. */
import { connect } from 'node:net';

/** How long the endpoint may take to answer. */
const MONITOR_TIMEOUT_MS = 5_000;

/**
 * The body of `GET PATH` on the endpoint at `monitorUrl` (http://HOST:PORT, on loopback: the
 * embedded server's, which nats-server writes in its log). Over a plain socket, in HTTP/1.0 (the
 * server answers and closes): loading node:http would take ~4.5 ms of CPU on every embedded
 * command, which asks this once before it stops its server (fetch takes ~20 ms to load).
 */
function monitorGet(monitorUrl: string, path: string): Promise<string> {
  const url = new URL(path, monitorUrl);
  return new Promise((resolve, reject) => {
    const socket = connect({ host: url.hostname, port: Number(url.port) || 80 });
    const chunks: Buffer[] = [];
    socket.setTimeout(MONITOR_TIMEOUT_MS, () => socket.destroy(new Error(`monitoring endpoint ${url.origin} timed out`)));
    socket.on('connect', () => socket.end(`GET ${url.pathname}${url.search} HTTP/1.0\r\nHost: ${url.host}\r\n\r\n`));
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.on('error', reject);
    socket.on('end', () => {
      const response = Buffer.concat(chunks).toString('utf8');
      const headersEnd = response.indexOf('\r\n\r\n');
      const status = /^HTTP\/1\.[01] (\d{3})/.exec(response);
      if (headersEnd < 0 || !status) reject(new Error(`monitoring endpoint ${url.origin} sent no HTTP response`));
      else if (status[1] !== '200') reject(new Error(`monitoring endpoint ${url.origin} answered ${status[1]}`));
      else resolve(response.slice(headersEnd + 4));
    });
  });
}

/** What a server's monitoring endpoint says of it. */
export async function serverStatus(monitorUrl: string): Promise<{ connections: number; serverName: string }> {
  const varz = JSON.parse(await monitorGet(monitorUrl, '/varz')) as { connections?: number; server_name?: string };
  return { connections: varz.connections ?? 0, serverName: varz.server_name ?? '' };
}

/** Client connections on the server, from its monitoring endpoint. */
export async function connectionsOn(monitorUrl: string): Promise<number> {
  return (await serverStatus(monitorUrl)).connections;
}
