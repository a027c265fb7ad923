/**
 * tally's count pipeline in one process with no NATS, as the benchmark's in-process baseline.
 * Prints one JSON line. Modes:
 *
 *   serial    one thread does everything: read, chunk, map, reduce, finalize (countBytes path)
 *   pipeline  the main thread reads, chunks and reduces (the coordinator's work) while
 *             --threads worker threads run the map (the workers' work), two chunks in flight
 *             per thread; chunk bodies and partials move by transfer, not copy
 *   map       the map function alone: chunks are made first (untimed), dealt round-robin to
 *             --threads threads, and the clock runs from "go" until the last thread is done
 *
 *   node dist/bench/inprocess.js --mode pipeline --threads 2 --file F [--tokenizer unicode]
 */
import { readFileSync } from 'node:fs';
import { Worker } from 'node:worker_threads';
import { parseArgs } from 'node:util';
import { chunkTask, countBytes, countKind, type CountResult } from '../shared/kinds/count.js';
import { chunkBytes, type Chunk, type Tokenizer } from '../shared/text/chunker.js';

const CHUNK_SIZE = 1024 * 1024; // tally count's default --chunk-size
const MAX_WORD_BYTES = 1024; // tally count's default --max-word-bytes
const IN_FLIGHT_PER_THREAD = 2;

/** The spec and body a coordinator would send for one chunk (bodies are moved, not copied). */
function taskOf(chunk: Chunk, tokenizer: Tokenizer): { spec: unknown; body: Uint8Array } {
  return chunkTask(chunk, { tokenizer, caseSensitive: false, maxWordBytes: MAX_WORD_BYTES });
}

async function startThreads(n: number): Promise<Worker[]> {
  const url = new URL('./map-thread.js', import.meta.url);
  return Promise.all(
    Array.from({ length: n }, async () => {
      const worker = new Worker(url);
      await new Promise<void>((resolve, reject) => {
        worker.once('online', resolve);
        worker.once('error', reject);
      });
      return worker;
    }),
  );
}

interface Output {
  mode: string;
  threads: number;
  bytes: number;
  ms: number;
  tasks: number;
  totalWords?: number;
  uniqueWords?: number;
  threadMs?: number[];
}

function summary(result: CountResult) {
  return { totalWords: result.totalWords, uniqueWords: result.uniqueWords, tasks: result.tasks };
}

async function serial(file: string, tokenizer: Tokenizer): Promise<Output> {
  const t0 = performance.now();
  const bytes = readFileSync(file);
  const result = countBytes(bytes, { tokenizer, caseSensitive: false, maxWordBytes: MAX_WORD_BYTES, chunkSize: CHUNK_SIZE });
  const ms = performance.now() - t0;
  return { mode: 'serial', threads: 1, bytes: bytes.length, ms, ...summary(result) };
}

async function pipeline(file: string, tokenizer: Tokenizer, threads: number): Promise<Output> {
  const workers = await startThreads(threads);
  const t0 = performance.now();
  const bytes = readFileSync(file);
  const chunks = chunkBytes(bytes, { tokenizer, chunkSize: CHUNK_SIZE, maxWordBytes: MAX_WORD_BYTES });
  const options = { inputs: [{ path: file, size: bytes.length }], tokenizer, caseSensitive: false, maxWordBytes: MAX_WORD_BYTES, chunkSize: CHUNK_SIZE };
  let acc = countKind.init(options);
  let nextId = 0;
  let inFlight = 0;
  let exhausted = false;
  const result = await new Promise<CountResult>((resolve, reject) => {
    const feed = (worker: Worker): boolean => {
      if (exhausted) return false;
      const next = chunks.next();
      if (next.done) {
        exhausted = true;
        return false;
      }
      const chunk = next.value;
      inFlight++;
      worker.postMessage({ type: 'chunk', id: nextId++, ...taskOf(chunk, tokenizer) }, [chunk.body.buffer as ArrayBuffer]);
      return true;
    };
    const finishIfDone = () => {
      if (exhausted && inFlight === 0) {
        Promise.resolve(countKind.finalize(acc, { job: 'local', tasks: nextId }, options)).then(resolve, reject);
      }
    };
    for (const worker of workers) {
      worker.on('error', reject);
      worker.on('message', (message: { type: string; id: number; partial: Uint8Array }) => {
        try {
          acc = countKind.reduce(acc, message.partial, message.id);
          inFlight--;
          feed(worker);
          finishIfDone();
        } catch (error) {
          reject(error as Error);
        }
      });
    }
    for (let k = 0; k < IN_FLIGHT_PER_THREAD; k++) for (const worker of workers) feed(worker);
    finishIfDone();
  });
  const ms = performance.now() - t0;
  await Promise.all(workers.map((w) => w.terminate()));
  return { mode: 'pipeline', threads, bytes: bytes.length, ms, ...summary(result) };
}

/**
 * @param as 'count': count's map as a job that reduces on the coordinator runs it; 'shares': as a
 *   job with 2 reduce partitions runs it; 'ngramsN': the n-gram map (N words), 2 partitions
 */
async function mapOnly(file: string, tokenizer: Tokenizer, threads: number, as = 'count'): Promise<Output> {
  const workers = await startThreads(threads);
  const bytes = readFileSync(file);
  const hands: Array<Array<{ spec: unknown; body: Uint8Array }>> = workers.map(() => []);
  let tasks = 0;
  for (const chunk of chunkBytes(bytes, { tokenizer, chunkSize: CHUNK_SIZE, maxWordBytes: MAX_WORD_BYTES })) {
    hands[tasks++ % threads].push(taskOf(chunk, tokenizer));
  }
  await Promise.all(
    workers.map((worker, i) => {
      const items = hands[i];
      worker.postMessage({ type: 'batch', items, as }, items.map((item) => item.body.buffer as ArrayBuffer));
      return new Promise<void>((resolve) => worker.once('message', () => resolve()));
    }),
  );
  const t0 = performance.now();
  const threadMs = await Promise.all(
    workers.map((worker) => {
      const done = new Promise<number>((resolve) => worker.once('message', (m: { ms: number }) => resolve(m.ms)));
      worker.postMessage({ type: 'go' });
      return done;
    }),
  );
  const ms = performance.now() - t0;
  await Promise.all(workers.map((w) => w.terminate()));
  return { mode: 'map', threads, bytes: bytes.length, ms, tasks, threadMs };
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      mode: { type: 'string', default: 'pipeline' },
      threads: { type: 'string', default: '1' },
      file: { type: 'string' },
      tokenizer: { type: 'string', default: 'unicode' },
      as: { type: 'string', default: 'count' },
    },
  });
  const file = values.file;
  if (!file) throw new Error('--file is required');
  const tokenizer = values.tokenizer as Tokenizer;
  const threads = Number(values.threads);
  const out =
    values.mode === 'serial' ? await serial(file, tokenizer)
    : values.mode === 'map' ? await mapOnly(file, tokenizer, threads, values.as)
    : await pipeline(file, tokenizer, threads);
  process.stdout.write(JSON.stringify(out) + '\n');
}

main().catch((error) => {
  process.stderr.write(`inprocess: ${error instanceof Error ? error.stack : String(error)}\n`);
  process.exit(1);
});
