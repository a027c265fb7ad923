/**
 * A worker thread for bench/inprocess.ts: runs tally's map functions (countKind.map and the
 * partitioned maps of count and ngrams, the very functions a worker process runs on a task) on
 * chunks it is handed, with no NATS.
 *
 * Messages in:  {type:'chunk', id, spec, body}      → {type:'partial', id, partial}
 *               {type:'batch', items:[{spec, body}], as} → {type:'loaded'}
 *               {type:'go'}                         → {type:'done', ms, partialBytes}
 */
import { parentPort } from 'node:worker_threads';
import { countKind } from '../shared/kinds/count.js';
import { ngramsKind } from '../shared/kinds/ngrams.js';

/** The map a batch runs: count's (`count`), count's with 2 reduce partitions (`shares`), or n-grams of N words (`ngramsN`). */
function mapperFor(as: string): (spec: unknown, body: Uint8Array) => number {
  if (as === 'count') return (spec, body) => (countKind.map(spec, body, context) as Uint8Array).length;
  const partitioned = as === 'shares' ? countKind.partitioned! : ngramsKind.partitioned!;
  const n = as === 'shares' ? undefined : Number(as.slice('ngrams'.length));
  return (spec, body) => {
    const out = partitioned.map(n === undefined ? spec : { ...(spec as object), n }, body, context, 2) as { summary: Uint8Array; shares: Uint8Array[] };
    return out.summary.length + out.shares.reduce((sum, share) => sum + share.length, 0);
  };
}

const port = parentPort;
if (!port) throw new Error('map-thread must run as a worker thread');

const context = { working: () => undefined };
let batch: Array<{ spec: unknown; body: Uint8Array }> = [];
let mapper = mapperFor('count');

function owned(bytes: Uint8Array): Uint8Array {
  return bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength ? bytes : bytes.slice();
}

port.on('message', (message: { type: string; id?: number; spec?: unknown; body?: Uint8Array; items?: Array<{ spec: unknown; body: Uint8Array }>; as?: string }) => {
  switch (message.type) {
    case 'chunk': {
      const partial = owned(countKind.map(message.spec, message.body!, context) as Uint8Array);
      port.postMessage({ type: 'partial', id: message.id, partial }, [partial.buffer as ArrayBuffer]);
      break;
    }
    case 'batch':
      batch = message.items!;
      mapper = mapperFor(message.as ?? 'count');
      port.postMessage({ type: 'loaded' });
      break;
    case 'go': {
      const t0 = performance.now();
      let partialBytes = 0;
      for (const item of batch) partialBytes += mapper(item.spec, item.body);
      const ms = performance.now() - t0;
      batch = [];
      port.postMessage({ type: 'done', ms, partialBytes });
      break;
    }
    default:
      throw new Error(`map-thread: unknown message ${message.type}`);
  }
});
