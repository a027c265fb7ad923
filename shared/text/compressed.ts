/**
 * Compressed inputs: a file (or stdin) that starts with the magic bytes of gzip, bzip2 or zstd
 * is counted as the text it decompresses to, whatever its name. gzip and zstd through Node's
 * zlib, bzip2 through unbzip2-stream; concatenated gzip members and bzip2 streams are read on
 * to the end, as gzip -d and bzip2 -d do.
 *
 * The coordinator decompresses (a compressed file cannot be cut into byte ranges that workers
 * read on their own) and carries the text to the workers in chunks, like stdin: many compressed
 * files are decompressed one after another on the coordinator, in parallel with the counting.
 */
import { createRequire } from 'node:module';
import { PassThrough, Readable, pipeline, type Duplex } from 'node:stream';
import * as zlib from 'node:zlib';
import { InputError } from '../errors.js';

export type Compression = 'gzip' | 'bzip2' | 'zstd';

export const COMPRESSIONS: readonly Compression[] = ['gzip', 'bzip2', 'zstd'];

/** Bytes of a file's start that {@link compressionOf} needs. */
export const MAGIC_BYTES = 4;

/** The compression a file's first bytes announce, or null for none. */
export function compressionOf(head: Uint8Array): Compression | null {
  if (head.length >= 3 && head[0] === 0x1f && head[1] === 0x8b && head[2] === 0x08) return 'gzip';
  // "BZh" and a block size digit.
  if (head.length >= 4 && head[0] === 0x42 && head[1] === 0x5a && head[2] === 0x68 && head[3]! >= 0x31 && head[3]! <= 0x39) return 'bzip2';
  if (head.length >= 4 && head[0] === 0x28 && head[1] === 0xb5 && head[2] === 0x2f && head[3] === 0xfd) return 'zstd';
  return null;
}

type ZstdZlib = { createZstdDecompress?: () => Duplex };

/** Why this Node cannot read `compression`, or null when it can. */
export function unsupported(compression: Compression): string | null {
  if (compression === 'zstd' && typeof (zlib as ZstdZlib).createZstdDecompress !== 'function') {
    return `zstd-compressed, and Node ${process.versions.node} cannot decompress zstd (Node 22.15 or later can); decompress it first (zstd -d)`;
  }
  return null;
}

const require = createRequire(import.meta.url);

/**
 * Where zstd frames end, read from their headers as the bytes go by: Node's zstd stream stops
 * at the end of the first frame and drops the rest, so each frame gets a decompressor of its own
 * (RFC 8878: a frame is its header, blocks each announcing their size, and an optional checksum;
 * a skippable frame announces its size).
 */
class ZstdFrames {
  /** Bytes held until a header can be read whole. */
  private pending = Buffer.alloc(0);
  /** Bytes of the current frame still to pass before its next header (block or frame). */
  private toSkip = 0;
  private state: 'frame' | 'block' | 'checksum-then-frame' = 'frame';
  private checksum = false;
  private lastBlock = false;

  /**
   * Cuts `piece` where frames end: the parts of it, each with whether a frame ends right after.
   * @throws Error on bytes that cannot start a frame
   */
  split(piece: Buffer): Array<{ bytes: Buffer; frameEnds: boolean }> {
    const out: Array<{ bytes: Buffer; frameEnds: boolean }> = [];
    let data = this.pending.length > 0 ? Buffer.concat([this.pending, piece]) : piece;
    this.pending = Buffer.alloc(0);
    let at = 0;
    let from = 0;
    for (;;) {
      if (this.toSkip > 0) {
        const take = Math.min(this.toSkip, data.length - at);
        at += take;
        this.toSkip -= take;
        if (this.toSkip > 0) break;
        if (this.state === 'frame') {
          out.push({ bytes: data.subarray(from, at), frameEnds: true });
          from = at;
        }
        continue;
      }
      if (this.state === 'block') {
        if (data.length - at < 3) break;
        const header = data[at]! | (data[at + 1]! << 8) | (data[at + 2]! << 16);
        const type = (header >> 1) & 3;
        if (type === 3) throw new Error('a zstd block of the reserved type');
        this.lastBlock = (header & 1) === 1;
        at += 3;
        this.toSkip = type === 1 ? 1 : header >>> 3;
        if (this.lastBlock) {
          this.toSkip += this.checksum ? 4 : 0;
          this.state = 'frame';
          if (this.toSkip === 0) {
            out.push({ bytes: data.subarray(from, at), frameEnds: true });
            from = at;
          }
        }
        continue;
      }
      // A frame starts here.
      if (data.length - at < 4) break;
      const magic = data.readUInt32LE(at);
      if ((magic & 0xfffffff0) === 0x184d2a50) {
        if (data.length - at < 8) break;
        this.toSkip = 8 + data.readUInt32LE(at + 4);
        continue;
      }
      if (magic !== 0xfd2fb528) throw new Error('bytes after a zstd frame that start no frame');
      if (data.length - at < 5) break;
      const descriptor = data[at + 4]!;
      const fcsFlag = descriptor >> 6;
      const singleSegment = (descriptor >> 5) & 1;
      const didFlag = descriptor & 3;
      const headerSize = 5 + (singleSegment ? 0 : 1) + [0, 1, 2, 4][didFlag]! + [singleSegment, 2, 4, 8][fcsFlag]!;
      if (data.length - at < headerSize) break;
      this.checksum = ((descriptor >> 2) & 1) === 1;
      at += headerSize;
      this.state = 'block';
    }
    if (from < at) out.push({ bytes: data.subarray(from, at), frameEnds: false });
    this.pending = Buffer.from(data.subarray(at));
    return out;
  }

  /** True when the bytes so far end on a frame's end. */
  get atFrameEnd(): boolean {
    return this.state === 'frame' && this.toSkip === 0 && this.pending.length === 0;
  }
}

/**
 * The text of a zstd stream of one or more frames, a decompressor per frame, pulled as it is
 * read (a frame may be a whole big file: nothing waits for its end).
 */
async function* zstdFrames(source: AsyncIterable<Uint8Array>): AsyncGenerator<Uint8Array> {
  const input = source[Symbol.asyncIterator]();
  const frames = new ZstdFrames();
  const queue: Array<{ bytes: Buffer; frameEnds: boolean }> = [];
  let ended = false;
  const nextPart = async () => {
    while (queue.length === 0 && !ended) {
      const next = await input.next();
      if (next.done) ended = true;
      else queue.push(...frames.split(Buffer.from(next.value.buffer, next.value.byteOffset, next.value.byteLength)));
    }
    return queue.shift() ?? null;
  };
  for (let first = await nextPart(); first !== null; first = await nextPart()) {
    const frameBytes = async function* (part: { bytes: Buffer; frameEnds: boolean } | null) {
      while (part !== null) {
        yield part.bytes;
        if (part.frameEnds) return;
        part = await nextPart();
      }
    };
    let failure: Error | undefined;
    const text = new PassThrough();
    pipeline(Readable.from(frameBytes(first)), (zlib as ZstdZlib).createZstdDecompress!(), text, (error) => {
      if (error) failure ??= error;
    });
    for await (const piece of text as AsyncIterable<Uint8Array>) yield piece;
    if (failure) throw failure;
  }
  if (!frames.atFrameEnd) throw Object.assign(new Error('it ends in the middle (truncated)'), { code: 'Z_BUF_ERROR' });
}

/** unbzip2-stream's through stream, loaded when a bzip2 input is met: most jobs never need it. */
function unbzip2(): Duplex {
  return (require('unbzip2-stream') as () => Duplex)();
}

/**
 * `source` written into a classic (pre-streams2) through stream such as unbzip2-stream's, and
 * what it emits, without pipe(): such a stream emits its output synchronously from write(),
 * so each piece's output is taken before the next piece goes in, and nothing waits on the
 * classic stream's own pause and drain.
 */
async function* throughClassic(source: AsyncIterable<Uint8Array>, stream: Duplex): AsyncGenerator<Uint8Array> {
  const out: Uint8Array[] = [];
  let ended = false;
  let failure: Error | undefined;
  let wake: (() => void) | undefined;
  stream.on('data', (piece: Uint8Array) => {
    out.push(piece);
    wake?.();
  });
  stream.on('end', () => {
    ended = true;
    wake?.();
  });
  stream.on('error', (error: Error) => {
    failure ??= error;
    wake?.();
  });
  for await (const piece of source) {
    stream.write(piece);
    while (out.length > 0) yield out.shift()!;
    if (failure) throw failure;
  }
  stream.end();
  for (;;) {
    while (out.length > 0) yield out.shift()!;
    if (failure) throw failure;
    if (ended) return;
    await new Promise<void>((resolve) => (wake = resolve));
    wake = undefined;
  }
}

/**
 * The text of a compressed stream, as it is decompressed.
 * @param name the input as the user gave it, for errors
 * @param offset where `source` starts in the file (a piece read by a worker), for errors
 * @throws InputError naming the input and how far into its compressed bytes it went wrong
 */
export async function* decompress(source: AsyncIterable<Uint8Array>, compression: Compression, name: string, offset = 0): AsyncGenerator<Uint8Array> {
  const why = unsupported(compression);
  if (why) throw new InputError(name, why);
  let consumed = offset;
  let readError: unknown;
  const counted = Readable.from(
    (async function* () {
      try {
        for await (const piece of source) {
          yield piece;
          consumed += piece.length;
        }
      } catch (error) {
        readError = error;
        throw error;
      }
    })(),
  );
  const text = compression === 'zstd' ? zstdFrames(counted) : compression === 'bzip2' ? throughClassic(counted, unbzip2()) : gunzipped(counted);
  let failure: Error | undefined;
  try {
    for await (const piece of text) yield piece;
  } catch (error) {
    failure = error instanceof Error ? error : new Error(String(error));
  } finally {
    counted.destroy();
  }
  if (readError !== undefined) throw readError;
  if (failure) {
    if (failure instanceof InputError) throw failure;
    throw new InputError(name, `${compression} data is corrupt near compressed byte ${consumed}: ${corruptReason(failure, compression)}`, { cause: failure });
  }
}

/** Why a decompressor failed, in words: zlib's messages say what is wrong ("incorrect header check"); unbzip2-stream's do not. */
export function corruptReason(failure: Error, compression: Compression): string {
  if ((failure as NodeJS.ErrnoException).code === 'Z_BUF_ERROR') return 'it ends in the middle (truncated)';
  return compression === 'bzip2' ? 'not valid bzip2 data (corrupt or truncated)' : failure.message;
}

/**
 * Text per piece out of the gzip stream: zlib's default of 16 KiB made a carried 60 MB member
 * (200 MB of text) cost more in the streams' handling of its 13,000 pieces than in inflating.
 */
const GUNZIP_STREAM_CHUNK_BYTES = 256 * 1024;

/** The text of a gzip stream (members concatenated), through a PassThrough so that zlib's errors end the iteration. */
async function* gunzipped(source: Readable): AsyncGenerator<Uint8Array> {
  let failure: Error | undefined;
  const text = new PassThrough();
  pipeline(source, zlib.createGunzip({ chunkSize: GUNZIP_STREAM_CHUNK_BYTES }), text, (error) => {
    if (error) failure ??= error;
  });
  for await (const piece of text as AsyncIterable<Uint8Array>) yield piece;
  if (failure) throw failure;
}

/**
 * A stream's compression, from its first bytes, and the stream again from its start (stdin
 * cannot be read twice).
 */
export async function peekCompression(source: AsyncIterable<Uint8Array>): Promise<{ compression: Compression | null; stream: AsyncIterable<Uint8Array> }> {
  const iterator = source[Symbol.asyncIterator]();
  const head: Uint8Array[] = [];
  let length = 0;
  let ended = false;
  while (length < MAGIC_BYTES) {
    const next = await iterator.next();
    if (next.done) {
      ended = true;
      break;
    }
    head.push(next.value);
    length += next.value.length;
  }
  const compression = compressionOf(Buffer.concat(head));
  const stream = (async function* () {
    yield* head;
    if (ended) return;
    for (;;) {
      const next = await iterator.next();
      if (next.done) return;
      yield next.value;
    }
  })();
  return { compression, stream };
}
