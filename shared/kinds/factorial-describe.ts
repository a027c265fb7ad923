/**
 * Describing N! on the coordinator from the tasks' partials: their product times 2^(e2−e5)
 * is N!/10^z (z = e5 = the trailing zeros), whose decimal digits followed by z zeros are N!'s.
 *
 * The decimal conversion is most of the work for a large N (10^6!: ~5.3 M digits). GMP does it
 * where its addon is built ({@link describeWithGmp}); otherwise it runs in two worker threads, so it uses both cores the workers have left idle and the coordinator's
 * event loop (NATS traffic, progress, Ctrl-C) stays responsive:
 *
 *   converter: builds the decimal ladder (powers of ten and their inverses, shared/decimal.ts),
 *              which depends only on a bound on the digit count, so it is started when the job
 *              starts and works while the workers multiply; sends the ladder to the describer,
 *              then converts the `high` half it gets back;
 *   describer: multiplies the partials, splits the value at the top of the ladder
 *              (value = high·10^m + low), sends `high` to the converter, converts `low`, hashes.
 *
 * A converter that has ended (it gives up after {@link CONVERTER_IDLE_MS} without work) is
 * replaced by a new one; if the converter goes away mid-way, or its ladder is too short, the
 * describer converts the rest itself: slower, same digits.
 */
import { createHash } from 'node:crypto';
import { isMainThread, MessageChannel, parentPort, Worker, workerData, type MessagePort } from 'node:worker_threads';
import { fromBytes, fromHex, toHex } from '../bigint-bytes.js';
import { appendDigits, bitLength, decimalLadder, decimalPieces, ladderFromWire, ladderToWire, splitAt, type DecimalLadder, type WireLadder } from '../decimal.js';
import { decimalMod, factorialMod } from '../factorial-residue.js';
import { legendreExponent } from '../prime-powers.js';
import { productOf } from '../product-tree.js';
import type { FactorialEntry } from './factorial.js';
import type { GmpDecimal } from '../gmp-decimal.js';

/** Leading digits reported. */
const LEADING_DIGITS = 20;

/** What describing returns: the entry, and the decimal digits when a file is wanted. */
export interface Description {
  entry: FactorialEntry;
  decimal?: Uint8Array;
}

/** The power of two left in N!/10^z: e(2) − e(5). */
function twosLeft(n: number): number {
  return legendreExponent(n, 2) - legendreExponent(n, 5);
}

/** N!/10^z from the partials (each ∏ p^e over some primes, 2 and 5 left out). */
function valueOf(n: number, partials: Uint8Array[]): bigint {
  return productOf(partials.map(fromBytes)) << BigInt(twosLeft(n));
}

/**
 * An upper bound on the digits of N!/10^z, from N alone (Kamenetsky's formula for the digits
 * of N!, plus a margin far above its floating-point error).
 */
export function digitsBound(n: number): number {
  if (n < 2) return 1;
  const log10Factorial = n * Math.log10(n / Math.E) + Math.log10(2 * Math.PI * n) / 2;
  return Math.floor(log10Factorial) + 1 - legendreExponent(n, 5) + 2;
}

/**
 * The entry for N! whose digits are `pieces` (of N!/10^z) then z zeros, after checking them
 * against N! mod a prime (shared/factorial-residue.ts): a wrong answer is never reported.
 */
function entryOf(n: number, pieces: string[], keepDecimal: boolean): Description {
  const zeros = legendreExponent(n, 5);
  if (decimalMod(pieces, zeros) !== factorialMod(n)) throw new Error(`${n}!: the digits computed fail the check against ${n}! mod a prime (an internal error; nothing is reported)`);
  const hash = createHash('sha256');
  let digits = zeros;
  for (const piece of pieces) {
    hash.update(piece, 'latin1');
    digits += piece.length;
  }
  const zeroText = '0'.repeat(zeros);
  hash.update(zeroText, 'latin1');
  let leading = '';
  for (const piece of [...pieces, zeroText]) {
    if (leading.length >= LEADING_DIGITS) break;
    leading += piece.slice(0, LEADING_DIGITS - leading.length);
  }
  const entry: FactorialEntry = { n, digits, trailingZeros: zeros, leading, sha256: hash.digest('hex') };
  // TextEncoder gives the digits an ArrayBuffer of their own (a Buffer may share a pool), so
  // a thread can move it to the coordinator instead of copying it.
  return keepDecimal ? { entry, decimal: new TextEncoder().encode(pieces.join('') + zeroText) } : { entry };
}

/**
 * Describes N! with GMP (shared/gmp-decimal.ts): the partials multiplied and written in decimal
 * by the native addon, off the event loop; checked and hashed here as in the other paths.
 */
export async function describeWithGmp(n: number, partials: Uint8Array[], keepDecimal: boolean, gmp: GmpDecimal): Promise<Description> {
  return entryOf(n, [await gmp.decimal(partials, twosLeft(n))], keepDecimal);
}

/** Describes N! in the calling thread (small N: starting threads costs more). */
export function describeInline(n: number, partials: Uint8Array[], keepDecimal: boolean): Description {
  return entryOf(n, decimalPieces(valueOf(n, partials)), keepDecimal);
}

// ---------------------------------------------------------------------------------------------
// The two threads.

/** The converter gives up (closes its port and ends) after this long without a value to convert. */
const CONVERTER_IDLE_MS = 10 * 60_000;

/** Marks the workerData of a describing thread, so this module knows to act on load. */
const THREAD_MARKER = 'tallyFactorialDescribe';

type ThreadRequest =
  | { [THREAD_MARKER]: true; role: 'describer'; n: number; partials: Uint8Array[]; keepDecimal: boolean; port: MessagePort }
  | { [THREAD_MARKER]: true; role: 'converter'; digits: number; port: MessagePort };

/** Messages between the threads, in order: converter → ladder, describer → high, converter → highDigits. */
type PeerMessage = { ladder: WireLadder } | { high: string | null } | { highDigits: string };

/** The messages of a port as a queue to await one by one; null once the port is closed. */
function messageQueue(port: MessagePort): () => Promise<PeerMessage | null> {
  const arrived: (PeerMessage | null)[] = [];
  const waiting: ((message: PeerMessage | null) => void)[] = [];
  const deliver = (message: PeerMessage | null) => {
    const waiter = waiting.shift();
    if (waiter) waiter(message);
    else arrived.push(message);
  };
  port.on('message', deliver);
  port.once('close', () => deliver(null));
  return () => (arrived.length > 0 ? Promise.resolve(arrived.shift()!) : new Promise((resolve) => waiting.push(resolve)));
}

/** Digits of `value`, a half of the top split, at rungs below the top; `width` 0 = leading. */
function halfDigits(value: bigint, ladder: DecimalLadder, width: number): string[] {
  const pieces: string[] = [];
  appendDigits(value, ladder, ladder.rungs.length - 2, width, pieces);
  return pieces;
}

/** The describer: product, top split, the low half's digits (and the high half's if alone), the entry. */
async function runDescriber(request: Extract<ThreadRequest, { role: 'describer' }>): Promise<Description> {
  const next = messageQueue(request.port);
  const value = valueOf(request.n, request.partials);
  const first = await next();
  const ladder = first !== null && 'ladder' in first ? ladderFromWire(first.ladder) : null;
  const top = ladder?.rungs[ladder.rungs.length - 1];
  // power ≥ 2^(bits−1), so a value below 2^(2·bits−2) is below power² (a bound that was wrong
  // would be a bug; the digits stay exact anyway).
  if (!ladder || !top || ladder.rungs.length < 2 || bitLength(value) > 2 * top.bits - 2) {
    request.port.close();
    return entryOf(request.n, decimalPieces(value), request.keepDecimal);
  }
  const [high, low] = splitAt(value, top);
  request.port.postMessage({ high: high === 0n ? null : toHex(high) } satisfies PeerMessage);
  // With no high half, the low half leads: unpadded.
  const lowPieces = halfDigits(low, ladder, high === 0n ? 0 : top.digits);
  if (high === 0n) {
    request.port.close();
    return entryOf(request.n, lowPieces, request.keepDecimal);
  }
  const answer = await next();
  request.port.close();
  const highPieces = answer !== null && 'highDigits' in answer ? [answer.highDigits] : halfDigits(high, ladder, 0);
  return entryOf(request.n, [...highPieces, ...lowPieces], request.keepDecimal);
}

/** The converter: the ladder, then the high half's digits. */
async function runConverter(request: Extract<ThreadRequest, { role: 'converter' }>): Promise<void> {
  const next = messageQueue(request.port);
  const ladder = decimalLadder(request.digits);
  request.port.postMessage({ ladder: ladderToWire(ladder) } satisfies PeerMessage);
  const idle = setTimeout(() => request.port.close(), CONVERTER_IDLE_MS);
  const message = await next();
  clearTimeout(idle);
  if (message !== null && 'high' in message && message.high !== null) {
    request.port.postMessage({ highDigits: halfDigits(fromHex(message.high), ladder, 0).join('') } satisfies PeerMessage);
  }
  request.port.close();
}

// When this very module is loaded as a describing thread, do the work and report back.
if (!isMainThread && parentPort && (workerData as Partial<ThreadRequest> | null)?.[THREAD_MARKER] === true) {
  const request = workerData as ThreadRequest;
  const parent = parentPort;
  if (request.role === 'describer') {
    void runDescriber(request).then((result) => parent.postMessage(result, result.decimal ? [result.decimal.buffer as ArrayBuffer] : []));
  } else {
    void runConverter(request);
  }
}

/** A converter thread at work (see the module comment); hand it to {@link describeInThreads}. */
export interface Converter {
  /** The bound on digits it builds the ladder for. */
  digits: number;
  /** The describer's end of the channel to the converter. */
  port: MessagePort;
  worker: Worker;
  /**
   * False once the thread has ended (given up idle, or failed): a port handed over after that
   * would never tell the describer (measured: it neither delivers nor closes), so a describer
   * needs a new converter.
   */
  alive: boolean;
}

/**
 * Starts a converter for values of at most `digits` digits (see {@link digitsBound}). It does
 * not keep the process alive, and ends by itself if no describer comes.
 */
export function startConverter(digits: number): Converter {
  const { port1, port2 } = new MessageChannel();
  const request: ThreadRequest = { [THREAD_MARKER]: true, role: 'converter', digits, port: port2 };
  const worker = new Worker(new URL(import.meta.url), { workerData: request, transferList: [port2] });
  worker.unref();
  const converter: Converter = { digits, port: port1, worker, alive: true };
  // Its failure only means the describer works alone (it sees the port close).
  worker.on('error', () => undefined);
  worker.once('exit', () => (converter.alive = false));
  return converter;
}

/**
 * Converters started before their job exists, by N: the command line knows N at once, and the
 * ladder (~0.5 s of CPU for 10^6!) is then built while the server and the workers start.
 */
const early = new Map<number, Converter>();

/** Starts the converter for N now, for a job about to be submitted in this process. */
export function startConverterEarly(n: number): void {
  if (!early.has(n)) early.set(n, startConverter(digitsBound(n)));
}

/** The converter started early for N (handed over once), or a new one. */
export function converterFor(n: number): Converter {
  const ready = early.get(n);
  early.delete(n);
  return ready?.alive ? ready : startConverter(digitsBound(n));
}

/**
 * Describes N! in a describer thread helped by `converter` (started now when not given),
 * moving the partials there. Each partial must own its ArrayBuffer (reduce copies them).
 */
export function describeInThreads(n: number, partials: Uint8Array[], keepDecimal: boolean, ready?: Converter): Promise<Description> {
  const converter = ready?.alive ? ready : startConverter(digitsBound(n));
  const request: ThreadRequest = { [THREAD_MARKER]: true, role: 'describer', n, partials, keepDecimal, port: converter.port };
  const worker = new Worker(new URL(import.meta.url), { workerData: request, transferList: [converter.port, ...partials.map((p) => p.buffer as ArrayBuffer)] });
  return new Promise<Description>((resolve, reject) => {
    let answered = false;
    worker.once('message', (message: Description) => {
      answered = true;
      resolve(message);
    });
    worker.once('error', reject);
    worker.once('exit', (code) => {
      if (!answered) reject(new Error(`computing ${n}! failed: the describing thread exited with code ${code}`));
    });
  }).finally(() => void converter.worker.terminate());
}
