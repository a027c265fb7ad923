/** Whether a NATS connection reaches its server right now, as its client last reported. */
import type { NatsConnection, Status } from '@nats-io/transport-node';

/** A connection's link to its server, followed from the client's status events. */
export interface LinkWatch {
  /** Since when (epoch ms) the client has been disconnected; null while connected. */
  readonly disconnectedSince: number | null;
  /** Stops following the connection. */
  stop(): void;
}

/**
 * Follows `nc`'s disconnects and reconnects until stopped. Calls that need the server (a drain,
 * a request) wait out their timeouts while it is gone; the owner asks this first instead.
 */
export function watchLink(nc: NatsConnection): LinkWatch {
  const statuses = nc.status() as AsyncIterable<Status> & { stop?: () => void };
  const link = {
    disconnectedSince: null as number | null,
    stop: () => statuses.stop?.(),
  };
  void (async () => {
    for await (const status of statuses) {
      if (status.type === 'disconnect') link.disconnectedSince ??= Date.now();
      else if (status.type === 'reconnect') link.disconnectedSince = null;
    }
  })().catch(() => undefined);
  return link;
}
