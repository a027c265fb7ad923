/**
 * A worker thread for bench/inprocess.ts: runs tally's count map function (countKind.map, the
 * very function a worker process runs on a task) on chunks it is handed, with no NATS.
 *
 * Messages in:  {type:'chunk', id, spec, body}      → {type:'partial', id, partial}
 *               {type:'batch', items:[{spec, body}]} → {type:'loaded'}
 *               {type:'go'}                         → {type:'done', ms, partialBytes}
 */
import { parentPort } from 'node:worker_threads';
import { countKind } from '../shared/kinds/count.js';

const port = parentPort;
if (!port) throw new Error('map-thread must run as a worker thread');

const context = { working: () => undefined };
let batch: Array<{ spec: unknown; body: Uint8Array }> = [];

function owned(bytes: Uint8Array): Uint8Array {
  return bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength ? bytes : bytes.slice();
}

port.on('message', (message: { type: string; id?: number; spec?: unknown; body?: Uint8Array; items?: Array<{ spec: unknown; body: Uint8Array }> }) => {
  switch (message.type) {
    case 'chunk': {
      const partial = owned(countKind.map(message.spec, message.body!, context) as Uint8Array);
      port.postMessage({ type: 'partial', id: message.id, partial }, [partial.buffer as ArrayBuffer]);
      break;
    }
    case 'batch':
      batch = message.items!;
      port.postMessage({ type: 'loaded' });
      break;
    case 'go': {
      const t0 = performance.now();
      let partialBytes = 0;
      for (const item of batch) partialBytes += (countKind.map(item.spec, item.body, context) as Uint8Array).length;
      const ms = performance.now() - t0;
      batch = [];
      port.postMessage({ type: 'done', ms, partialBytes });
      break;
    }
    default:
      throw new Error(`map-thread: unknown message ${message.type}`);
  }
});
