/**
 * `tally put PATHS… [--bucket NAME]`: uploads files into a NATS Object Store bucket, so that
 * `tally count obj://BUCKET` reads them from any machine, no shared disk needed. With no
 * --server, into the embedded server's store (tally's data directory), where later embedded
 * commands find them; like `ls` and `rm` it starts (or joins) that server and no worker.
 *
 * - Paths are chosen as `tally count` chooses them (coordinator/inputs.ts: folders walked, VCS
 *   folders and binary files left out, globs expanded); stdin and URLs are refused.
 * - An object is named by the file's path relative to the parent of what was named (as
 *   `cp -r` names what it copies): `put books` stores books/a.txt as "books/a.txt", `put
 *   /data/corpus` stores /data/corpus/x as "corpus/x". A folder spelled with a trailing slash,
 *   or ".", names its contents (as rsync does): `put books/` stores "a.txt".
 * - Resumable: a file whose object already has the same size and SHA-256 is not sent again, so
 *   a second run sends only what changed or is missing (an interrupted upload leaves no object:
 *   the client writes an object's info only after its last chunk).
 * - Every upload is checked: the digest the server stores (the client's SHA-256 of what it
 *   sent) must equal the one computed here while reading the file.
 * - Bad paths: one line each, exit 2, nothing uploaded.
 */
import { Command } from '../commander.js';
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { dirname, relative, resolve, sep } from 'node:path';
import type { ObjectStore } from '@nats-io/obj';
import { InputError, TallyError, UsageError } from '../../shared/errors.js';
import { isUrl } from '../../shared/text/url-input.js';
import { DEFAULT_INPUT_BUCKET, checkBucketName, isObjectUrl, objectDigest, sameDigest } from '../../shared/text/object-input.js';
import { withCommonOptions, withSession, type CommonOptions } from './common.js';
import { jetstreamLib, objLib } from '../../shared/nats/client.js';

/** One file to upload: where it is, and the object it becomes. */
export interface Upload {
  path: string;
  name: string;
  size: number;
}

interface PutCliOptions extends CommonOptions {
  bucket: string;
}

/** Read size: the Object Store cuts objects into 128 KiB chunks, a few per read. */
const READ_BYTES = 1024 * 1024;

/**
 * The object name of `file`, found from the command-line argument `arg` that led to it (see the
 * module comment). Always "/"-separated and relative.
 */
export function objectName(arg: string, file: string): string {
  const named = resolve(arg);
  const contents = arg === '.' || arg.endsWith('/') || arg.endsWith(sep);
  const base = contents ? named : dirname(named);
  return relative(base, resolve(file)).split(sep).join('/');
}

/**
 * The files to upload, or a UsageError after writing one line per bad argument: nothing is
 * uploaded while any path is wrong.
 */
export async function planUploads(args: string[]): Promise<{ uploads: Upload[]; notes: string[] }> {
  if (args.length === 0) throw new UsageError('no path given (files, directories or globs to upload)');
  // Loaded with the command that walks folders, not with the CLI.
  const { selectInputs, selectionNotes } = await import('../inputs.js');
  const problems: string[] = [];
  const uploads: Upload[] = [];
  const notes: string[] = [];
  const byName = new Map<string, string>();
  for (const arg of args) {
    if (arg === '-' || isUrl(arg) || isObjectUrl(arg)) {
      problems.push(`${arg}: only files, directories and globs can be uploaded`);
      continue;
    }
    try {
      const selection = await selectInputs([arg]);
      notes.push(...selectionNotes(selection));
      for (const file of selection.files) {
        const name = objectName(arg, file.path);
        const earlier = byName.get(name);
        if (earlier !== undefined) {
          // Same object name for two different files: one would overwrite the other.
          if (resolve(earlier) !== resolve(file.path)) problems.push(`${file.path}: would be stored as '${name}', as ${earlier} is`);
          continue;
        }
        byName.set(name, file.path);
        uploads.push({ path: file.path, name, size: file.size ?? 0 });
      }
    } catch (error) {
      if (!(error instanceof TallyError)) throw error;
      problems.push(error.message);
    }
  }
  if (problems.length > 0) {
    for (const line of problems.slice(0, -1)) process.stderr.write(`tally: ${line}\n`);
    throw new UsageError(`${problems.at(-1)!}${problems.length > 1 ? ` (${problems.length} bad paths; nothing uploaded)` : ' (nothing uploaded)'}`);
  }
  return { uploads, notes };
}

/** SHA-256 of a whole file, as an object digest. */
async function fileDigest(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const piece of createReadStream(path, { highWaterMark: READ_BYTES })) hash.update(piece as Buffer);
  return objectDigest(hash.digest());
}

/** What one run of `put` did. */
export interface PutReport {
  uploaded: number;
  unchanged: number;
  bytes: number;
}

/**
 * Uploads `uploads` into `store`, skipping those already there with the same size and digest.
 * @param onBytes called as bytes are read for upload (progress)
 * @throws InputError naming a file that changed while it was uploaded, or whose stored digest
 *   differs from the one computed while reading it
 */
export async function uploadFiles(store: ObjectStore, uploads: readonly Upload[], onBytes: (n: number) => void = () => undefined): Promise<PutReport> {
  const report: PutReport = { uploaded: 0, unchanged: 0, bytes: 0 };
  for (const upload of uploads) {
    const existing = await store.info(upload.name);
    // Only a same-sized object may hold the same bytes: only then is the file read twice.
    if (existing && !existing.deleted && existing.size === upload.size && sameDigest(existing.digest, await fileDigest(upload.path))) {
      report.unchanged++;
      onBytes(upload.size);
      continue;
    }
    const hash = createHash('sha256');
    let read = 0;
    const source = createReadStream(upload.path, { highWaterMark: READ_BYTES });
    const iterator = source[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
    const stream = new ReadableStream<Uint8Array>({
      async pull(controller) {
        try {
          const next = await iterator.next();
          if (next.done) return controller.close();
          hash.update(next.value);
          read += next.value.length;
          onBytes(next.value.length);
          controller.enqueue(new Uint8Array(next.value.buffer, next.value.byteOffset, next.value.length));
        } catch (error) {
          controller.error(new InputError(upload.path, `cannot read: ${error instanceof Error ? error.message : String(error)}`, { cause: error }));
        }
      },
      cancel() {
        source.destroy();
      },
    });
    const info = await store.put({ name: upload.name }, stream);
    const digest = objectDigest(hash.digest());
    if (read !== upload.size || info.size !== read) throw new InputError(upload.path, `changed while it was uploaded (${upload.size} bytes before, ${read} read, ${info.size} stored)`);
    if (!sameDigest(info.digest, digest)) throw new InputError(upload.path, `the stored digest ${info.digest} is not the ${digest} of the bytes read`);
    report.uploaded++;
    report.bytes += read;
  }
  return report;
}

/** "12.3 MB" */
function megabytes(bytes: number): string {
  return bytes < 1e6 ? `${bytes} bytes` : `${(bytes / 1e6).toFixed(1)} MB`;
}

export function putCommand(): Command {
  const command = new Command('put')
    .description('upload files into a NATS Object Store bucket, for `tally count obj://BUCKET`: sends only what is missing or changed, checks every digest')
    .argument('<paths...>', 'files, directories and globs (as for count)')
    .option('--bucket <name>', 'the bucket (created when missing)', (v) => checkBucketName(v, '--bucket'), DEFAULT_INPUT_BUCKET);
  return withCommonOptions(command).action(async (paths: string[], options: PutCliOptions) => {
    // Every path is checked before anything connects: a typo uploads nothing.
    const { uploads, notes } = await planUploads(paths);
    for (const note of notes) process.stderr.write(`${note}\n`);
    const total = uploads.reduce((sum, upload) => sum + upload.size, 0);
    await withSession(
      options,
      async (session) => {
        const { Objm } = objLib();
        const { StorageType } = jetstreamLib();
        const { createOrFind, replicasFor } = await import('../../shared/nats/topology.js');
        const store = await createOrFind(() => new Objm(session.nc).create(options.bucket, { storage: StorageType.File, replicas: replicasFor(session.nc) }));
        const tty = options.progress && process.stderr.isTTY === true;
        const started = Date.now();
        let done = 0;
        let drawn = 0;
        const report = await uploadFiles(store, uploads, (n) => {
          done += n;
          if (!tty || Date.now() - drawn < 100) return;
          drawn = Date.now();
          const rate = done / Math.max(0.001, (drawn - started) / 1000);
          process.stderr.write(`\r${total > 0 ? ((100 * done) / total).toFixed(0).padStart(3) : 100}%  ${megabytes(done)} of ${megabytes(total)}  ${(rate / 1e6).toFixed(1)} MB/s\x1b[K`);
        });
        if (tty && drawn > 0) process.stderr.write('\r\x1b[K');
        process.stdout.write(`uploaded ${report.uploaded} file${report.uploaded === 1 ? '' : 's'} (${megabytes(report.bytes)}), ${report.unchanged} unchanged, to obj://${options.bucket}\n`);
      },
      0,
    );
  });
}
