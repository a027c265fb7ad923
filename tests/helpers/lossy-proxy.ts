/**
 * A TCP proxy in front of a nats-server that forwards everything except the first few client
 * publishes to chosen subjects, which it swallows: to the client, a request that the server never
 * answered (the JetStream API timeout), as on an overloaded cluster; or, given an answer, a
 * request the server answered so (an error nats-server gives only in a narrow race). It reads
 * both sides of the NATS protocol (PUB, HPUB, MSG and HMSG carry their payload sizes), so whole
 * messages are dropped and an answer is put between two whole messages of the server's.
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
  /** The reply the client gets to a swallowed request instead of none (a JSON API response). */
  answer?: string;
}

const CRLF = Buffer.from('\r\n');

/**
 * Splits one side's bytes of the NATS protocol into whole messages: a line, and for the ops that
 * carry a payload (PUB, HPUB, MSG, HMSG: its size is their last argument) the payload after it.
 */
class ProtocolMessages {
  private pending: Buffer = Buffer.alloc(0);

  constructor(private readonly onMessage: (op: string, args: string[], message: Buffer) => void) {}

  push(data: Buffer): void {
    this.pending = this.pending.length === 0 ? data : Buffer.concat([this.pending, data]);
    for (;;) {
      const lineEnd = this.pending.indexOf(CRLF);
      if (lineEnd < 0) return;
      const [op = '', ...args] = this.pending.subarray(0, lineEnd).toString('latin1').split(/[ \t]+/);
      let length = lineEnd + 2;
      if (/^h?(pub|msg)$/i.test(op)) length += Number(args[args.length - 1]) + 2;
      if (this.pending.length < length) return;
      const message = this.pending.subarray(0, length);
      this.pending = this.pending.subarray(length);
      this.onMessage(op.toUpperCase(), args, message);
    }
  }
}

/** The subscription id through which a client receives a message on `subject` (its inbox's wildcard). */
function subscriptionFor(subscriptions: Map<string, string>, subject: string): string | undefined {
  const tokens = subject.split('.');
  for (const [sid, pattern] of subscriptions) {
    const parts = pattern.split('.');
    const matches = parts.every((part, i) => part === '>' ? i < tokens.length : i < tokens.length && (part === '*' || part === tokens[i]));
    if (matches && (parts.length === tokens.length || parts[parts.length - 1] === '>')) return sid;
  }
  return undefined;
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
    const subscriptions = new Map<string, string>();
    const fromClient = new ProtocolMessages((op, args, message) => {
      // SUB subject [queue] sid
      if (op === 'SUB') subscriptions.set(args[args.length - 1]!, args[0]!);
      // PUB subject [reply] size / HPUB subject [reply] header-size total-size
      const isPublish = op === 'PUB' || op === 'HPUB';
      if (!isPublish || !shouldDrop(args[0]!)) return void upstream.write(message);
      const reply = args.length === (op === 'PUB' ? 3 : 4) ? args[1]! : undefined;
      const sid = reply === undefined ? undefined : subscriptionFor(subscriptions, reply);
      if (options.answer === undefined || sid === undefined) return;
      const payload = Buffer.from(options.answer);
      client.write(Buffer.concat([Buffer.from(`MSG ${reply} ${sid} ${payload.length}\r\n`), payload, CRLF]));
    });
    // The server's bytes go on in whole messages, so that an answer never lands inside one.
    const fromServer = new ProtocolMessages((_op, _args, message) => void client.write(message));
    client.on('data', (data) => fromClient.push(data));
    upstream.on('data', (data) => fromServer.push(data));
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
