/**
 * A TCP proxy in front of a nats-server that forwards everything except the first few client
 * publishes to chosen subjects, which it swallows: to the client, a request that the server never
 * answered (the JetStream API timeout), as on an overloaded cluster. It reads the client's side of
 * the NATS protocol (PUB and HPUB carry their payload sizes), so whole messages are dropped.
 */
import { createServer, connect as connectTcp, type Server, type Socket } from 'node:net';

export interface LossyProxy {
  /** nats:// URL of the proxy, for --server. */
  url: string;
  /** Subjects of the publishes swallowed so far. */
  dropped: string[];
  close(): Promise<void>;
}

export interface LossyProxyOptions {
  /** host:port of the real server. */
  target: { host: string; port: number };
  /** Publishes to subjects this matches are swallowed, `times` of them in all. */
  drop: RegExp;
  times: number;
}

const CRLF = Buffer.from('\r\n');

/** Forwards client bytes to `upstream`, dropping matching whole PUB/HPUB messages. */
class ClientStream {
  private pending: Buffer = Buffer.alloc(0);

  constructor(
    private readonly upstream: Socket,
    private readonly shouldDrop: (subject: string) => boolean,
  ) {}

  push(data: Buffer): void {
    this.pending = this.pending.length === 0 ? data : Buffer.concat([this.pending, data]);
    for (;;) {
      const lineEnd = this.pending.indexOf(CRLF);
      if (lineEnd < 0) return;
      const line = this.pending.subarray(0, lineEnd).toString('latin1');
      const [op = '', ...args] = line.split(/[ \t]+/);
      let length = lineEnd + 2;
      let subject: string | undefined;
      if (/^h?pub$/i.test(op)) {
        // PUB subject [reply] size / HPUB subject [reply] header-size total-size
        subject = args[0];
        length += Number(args[args.length - 1]) + 2;
      }
      if (this.pending.length < length) return;
      const message = this.pending.subarray(0, length);
      this.pending = this.pending.subarray(length);
      if (subject === undefined || !this.shouldDrop(subject)) this.upstream.write(message);
    }
  }
}

/** Starts the proxy on a free loopback port. */
export async function startLossyProxy(options: LossyProxyOptions): Promise<LossyProxy> {
  const dropped: string[] = [];
  const sockets = new Set<Socket>();
  const shouldDrop = (subject: string) => {
    if (dropped.length >= options.times || !options.drop.test(subject)) return false;
    dropped.push(subject);
    return true;
  };
  const server: Server = createServer((client) => {
    const upstream = connectTcp(options.target.port, options.target.host);
    sockets.add(client).add(upstream);
    const stream = new ClientStream(upstream, shouldDrop);
    client.on('data', (data) => stream.push(data));
    upstream.pipe(client);
    const close = () => {
      client.destroy();
      upstream.destroy();
      sockets.delete(client);
      sockets.delete(upstream);
    };
    client.on('close', close).on('error', close);
    upstream.on('close', close).on('error', close);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  return {
    url: `nats://127.0.0.1:${port}`,
    dropped,
    close: () =>
      new Promise((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}
