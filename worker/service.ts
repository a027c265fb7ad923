/**
 * Registers a worker process with the NATS services protocol, so `tally workers` and the
 * standard tooling (`nats micro ls`, `nats micro stats tally-worker`) see it.
 */
import type { Service } from '@nats-io/services';
import { servicesLib } from '../shared/nats/client.js';
import type { NatsConnection } from '@nats-io/transport-node';
import { WORKER_SERVICE } from '../shared/subjects.js';
import type { WorkerStats } from './task-loop.js';

export const SERVICE_VERSION = '0.1.0';

/** Adds the service; its `status` endpoint and its stats both report `stats()`. */
export async function registerWorkerService(nc: NatsConnection, stats: () => WorkerStats): Promise<Service> {
  const current = stats();
  const { Svcm } = servicesLib();
  // @nats-io/services 3.0.0-25 bundles its own nats-core typings; the connection is the same at run time.
  const service = await new Svcm(nc as unknown as ConstructorParameters<typeof Svcm>[0]).add({
    name: WORKER_SERVICE,
    version: SERVICE_VERSION,
    description: 'tally worker process: pulls tasks from JetStream, maps them, publishes partial results',
    metadata: { host: current.host, pid: String(current.pid), worker: current.name },
    statsHandler: async () => stats(),
  });
  service.addEndpoint('status', {
    handler: (error, msg) => {
      if (error) return;
      msg.respond(JSON.stringify(stats()));
    },
    metadata: { description: 'this process: tasks done, busy or idle' },
  });
  return service;
}
