/**
 * Turning the paths a user typed into the list of files a count job reads.
 *
 * - A file is taken as is (a binary one too); a directory is walked recursively in sorted
 *   order, hidden files included, version-control folders (.git, .hg, .svn, …) left out, and
 *   --include / --exclude applied (WalkFilters). Inside a directory, binary files (a NUL byte in
 *   the first 8 KiB, as git and ripgrep decide; compressed files are not binary) are skipped and
 *   counted for a note; FIFOs, sockets, devices, dangling or looping symlinks and unreadable
 *   files or folders are each a warning naming them, and the count goes on. Named on the
 *   command line, any of those is an error.
 * - The first bytes of every file say whether it is compressed (shared/text/compressed.ts).
 * - A glob (*, ?, **, [abc], [!abc]) is expanded here when the shell did not do it (quoted, or
 *   no match in the shell). As in sh, a wildcard does not match a leading "." unless the
 *   pattern segment starts with "."; ** matches zero or more directories and does not follow
 *   symlinks. A path that exists literally is never treated as a pattern.
 * - obj://BUCKET[/PREFIX] names the objects of a NATS Object Store bucket whose names start
 *   with PREFIX (shared/text/object-input.ts), listed by the caller's `listObjects`: their
 *   sizes and upload times only, never their bytes.
 * - "-" is stdin, at most once. An http:// or https:// URL is fetched by the coordinator, or in
 *   byte ranges by the workers where its server serves them (shared/text/url-input.ts); it must
 *   answer before the job starts, and that first answer says which.
 * - The same file reached twice (same device and inode: a file given twice, a directory and a
 *   file inside it, overlapping globs, hard links) is read once, under the first spelling, and
 *   the paths merged so are counted for the user to be told. Paths keep the user's spelling:
 *   relative stays relative.
 * - tally's own data directory (the embedded server's store, which changes while it is read)
 *   is skipped where a walk or a glob reaches it, also through a symlink; a path inside it
 *   named on the command line is refused.
 */
import { accessSync, closeSync, constants, openSync, readdirSync, readSync, realpathSync, statSync } from 'node:fs';
import type { BigIntStats, Dirent } from 'node:fs';
import { isAbsolute, relative } from 'node:path';
import { fileErrorReason, InputError, UsageError } from '../shared/errors.js';
import { dataDirectory } from './embedded/data-dir.js';
import { GLOB_CHARS, byName, child, expandGlob, pathMatcher } from './glob.js';
import { isUrl, probeUrl } from '../shared/text/url-input.js';
import { isObjectUrl } from '../shared/text/object-input.js';
import { MAGIC_BYTES, compressionOf, unsupported, type Compression } from '../shared/text/compressed.js';

/** One input of a count job: a file path as spelled, or "-" for stdin; size null when unknown. */
export interface ResolvedInput {
  path: string;
  size: number | null;
  /** Last modification, for `tally resume` to notice a changed file (absent for stdin). */
  mtimeMs?: number;
  /** A file whose first bytes say it is compressed (shared/text/compressed.ts). */
  compression?: Compression;
  /** A URL whose server serves byte ranges: size is its length (shared/text/url-input.ts). */
  byteRanges?: boolean;
  /** Such a URL's ETag, when it has one. */
  etag?: string;
}

/** What a walk reads of a file's start to tell a binary file (as git and ripgrep do). */
const BINARY_PROBE_BYTES = 8192;

/** Where every file's head is read: one buffer for a walk of many files (nothing keeps its bytes). */
const headBuffer = Buffer.allocUnsafe(BINARY_PROBE_BYTES);

/**
 * A file's first bytes, as far as they decide anything: its compression, and (when `probe`
 * asks for the 8 KiB a binary check needs) whether it holds a NUL byte.
 */
function headOf(path: string, size: number, probe: boolean): { compression: Compression | null; nul: boolean } {
  const want = Math.min(size, probe ? BINARY_PROBE_BYTES : MAGIC_BYTES);
  if (want === 0) return { compression: null, nul: false };
  const head = headBuffer;
  let fd: number;
  let got: number;
  try {
    fd = openSync(path, 'r');
  } catch (error) {
    throw new InputError(path, reasonOf(error), { cause: error });
  }
  try {
    got = readSync(fd, head, 0, want, 0);
  } catch (error) {
    throw new InputError(path, reasonOf(error), { cause: error });
  } finally {
    closeSync(fd);
  }
  const bytes = head.subarray(0, got);
  const compression = compressionOf(bytes);
  const why = compression && unsupported(compression);
  if (why) throw new InputError(path, why);
  return { compression, nul: probe && compression === null && bytes.includes(0) };
}

/** True for the error of a compressed file this Node cannot read: named or walked, it stops the job. */
function unsupportedCompression(error: InputError): boolean {
  return error.message.includes('cannot decompress');
}

/** Folders of version control systems: never walked into. */
const VCS_FOLDERS = new Set(['.git', '.hg', '.svn', '.bzr', '_darcs', '.jj', 'CVS']);

/** How a folder walk chooses files (what the user named outright is always counted). */
export interface WalkFilters {
  /** Files with a NUL byte in their first 8 KiB: 'skip' (default) or 'count'. */
  binary: 'skip' | 'count';
  /** When given, only files that match one of these are counted (see pathMatcher in glob.ts). */
  include: readonly string[];
  /** Files and folders that match one of these are left out. */
  exclude: readonly string[];
}

export const DEFAULT_WALK_FILTERS: WalkFilters = Object.freeze({ binary: 'skip', include: [], exclude: [] });

function reasonOf(error: unknown): string {
  return fileErrorReason(error) ?? (error instanceof Error ? error.message : String(error));
}

/** tally's data directory as found on disk: what a walk compares directories with. */
interface OwnStore {
  /** As dataDirectory() spells it, for messages. */
  path: string;
  dev: bigint;
  ino: bigint;
  /** Its real path, for paths that reach inside it by other names. */
  real: string;
}

async function findOwnStore(path: string | undefined): Promise<OwnStore | null> {
  if (!path) return null;
  try {
    const st = statSync(path, { bigint: true });
    if (!st.isDirectory()) return null;
    return { path, dev: st.dev, ino: st.ino, real: realpathSync(path) };
  } catch {
    return null; // none yet: nothing of ours to find
  }
}

const uid = process.getuid?.() ?? -1;
const groups = new Set(process.getgroups?.() ?? []);

/**
 * True when a file's mode alone says this process may read it (root reads everything): then
 * the access(2) call is saved, a fifth of a walk's time over a folder of small files. When the
 * mode says no, access(2) decides (an ACL may still grant it).
 */
function readableByMode(st: BigIntStats): boolean {
  if (uid === 0) return true;
  const mode = Number(st.mode);
  if (BigInt(uid) === st.uid) return (mode & 0o400) !== 0;
  if (groups.has(Number(st.gid))) return (mode & 0o040) !== 0;
  return (mode & 0o004) !== 0;
}

class Collector {
  readonly files: ResolvedInput[] = [];
  /** Paths that named a file already taken. */
  mergedPaths = 0;
  /** Times a walk or a glob reached the store and left it out. */
  storeSkips = 0;
  /** Files a walk left out as binary. */
  binarySkips = 0;
  /** What a walk could not count, one line each ("path: why"): the count goes on without them. */
  readonly warnings: string[] = [];
  private readonly seen = new Set<string>();
  private readonly urls = new Set<string>();
  private stdin = false;
  private readonly includes: Array<(path: string, name: string) => boolean>;
  private readonly excludes: Array<(path: string, name: string) => boolean>;

  constructor(
    readonly store: OwnStore | null,
    private readonly filters: WalkFilters,
  ) {
    this.includes = filters.include.map(pathMatcher);
    this.excludes = filters.exclude.map(pathMatcher);
  }

  /**
   * Adds a URL, once it answers (see shared/text/url-input.ts), with its length and validators
   * when its server serves byte ranges; the same URL twice is read once.
   */
  async addUrl(url: string): Promise<void> {
    if (this.urls.has(url)) {
      this.mergedPaths++;
      return;
    }
    const probe = await probeUrl(url);
    this.urls.add(url);
    // Served in byte ranges: planned like a file of its length, its validators kept for the
    // workers to check (whether they fetch it is the job's choice: workersFetchUrls).
    const ranges = probe.ranges;
    this.files.push(
      ranges
        ? { path: url, size: ranges.size, mtimeMs: ranges.mtimeMs, byteRanges: true, ...(ranges.etag !== undefined ? { etag: ranges.etag } : {}), ...(probe.compression ? { compression: probe.compression } : {}) }
        : { path: url, size: null },
    );
  }

  /** Adds listed objects; the same object twice is read once. */
  addObjects(objects: readonly ResolvedInput[]): void {
    for (const object of objects) {
      if (this.urls.has(object.path)) {
        this.mergedPaths++;
        continue;
      }
      this.urls.add(object.path);
      this.files.push(object);
    }
  }

  addStdin(): void {
    if (this.stdin) throw new UsageError('- (stdin) may be given only once');
    this.stdin = true;
    this.files.push({ path: '-', size: null });
  }

  /** True when `st` is the store directory itself. */
  isStore(st: BigIntStats): boolean {
    return this.store !== null && st.dev === this.store.dev && st.ino === this.store.ino;
  }

  /** True when `path` is the store or lies inside it, by whatever name. */
  async inStore(path: string): Promise<boolean> {
    if (!this.store) return false;
    let real: string;
    try {
      real = realpathSync(path);
    } catch {
      return false;
    }
    const rel = relative(this.store.real, real);
    return rel === '' || (rel !== '..' && !rel.startsWith('../') && !isAbsolute(rel));
  }

  /**
   * Adds a regular file after checking it can be read; a file already added is skipped. In a
   * walk (`walked`), an unreadable file is a warning and a binary one is left out (see
   * WalkFilters); named outright, an unreadable file is an error and a binary one is counted.
   */
  async addFile(path: string, st: BigIntStats, walked = false): Promise<void> {
    if (!readableByMode(st)) {
      try {
        accessSync(path, constants.R_OK);
      } catch (error) {
        if (walked) return this.warn(path, reasonOf(error));
        throw new InputError(path, reasonOf(error), { cause: error });
      }
    }
    const key = `${st.dev}:${st.ino}`;
    if (this.seen.has(key)) {
      this.mergedPaths++;
      return;
    }
    const size = Number(st.size);
    let head: { compression: Compression | null; nul: boolean };
    try {
      head = headOf(path, size, walked && this.filters.binary === 'skip');
    } catch (error) {
      if (walked && error instanceof InputError && !unsupportedCompression(error)) return this.warn(path, error.message.slice(path.length + 2));
      throw error;
    }
    if (head.nul) {
      this.binarySkips++;
      return;
    }
    this.seen.add(key);
    this.files.push({ path, size, mtimeMs: Number(st.mtimeMs), ...(head.compression ? { compression: head.compression } : {}) });
  }

  private warn(path: string, reason: string): void {
    this.warnings.push(`${path}: ${reason}`);
  }

  /** True when the walk from `root` leaves out `path` (a file when `isFile`). */
  private leftOut(root: string, path: string, name: string, isFile: boolean): boolean {
    if (!isFile && VCS_FOLDERS.has(name)) return true;
    // Without filters nothing else is left out (and no path is made relative: a walk of many files asks this of each).
    if (this.excludes.length === 0 && this.includes.length === 0) return false;
    const below = relative(root, path);
    if (this.excludes.some((matches) => matches(below, name))) return true;
    return isFile && this.includes.length > 0 && !this.includes.some((matches) => matches(below, name));
  }

  /**
   * Adds what `path` names when the user (or a glob) pointed at it. Returns how many regular
   * files were found (duplicates included), or -1 if it was neither a file nor a directory.
   */
  async addPath(path: string, st: BigIntStats): Promise<number> {
    if (st.isFile()) {
      await this.addFile(path, st);
      return 1;
    }
    if (st.isDirectory()) return this.walk(path, new Set(), path);
    return -1;
  }

  /**
   * Walks a directory; `visited` holds real paths on this walk, so symlink loops end. File
   * system calls are synchronous here: nothing else waits on this process meanwhile, and a
   * folder of 12,000 mails took 1.7 s with one awaited call after another, 0.1 s like this.
   */
  private async walk(dir: string, visited: Set<string>, root: string): Promise<number> {
    let real: string;
    let entries: Dirent[];
    try {
      real = realpathSync(dir);
      if (visited.has(real)) return 0;
      visited.add(real);
      entries = readdirSync(dir, { withFileTypes: true });
    } catch (error) {
      // The folder named outright must be readable; one found inside it is a warning.
      if (dir !== root) {
        this.warn(dir, reasonOf(error));
        return 0;
      }
      throw new InputError(dir, reasonOf(error), { cause: error });
    }
    entries.sort(byName);
    let found = 0;
    for (const entry of entries) {
      const path = child(dir, entry.name);
      if (!entry.isFile() && !entry.isDirectory() && !entry.isSymbolicLink()) {
        this.warn(path, 'not a regular file');
        continue;
      }
      let st: BigIntStats;
      try {
        st = statSync(path, { bigint: true });
      } catch (error) {
        // A symlink that leads nowhere (dangling, or a loop) names no content.
        if (entry.isSymbolicLink()) {
          const code = (error as NodeJS.ErrnoException).code;
          this.warn(path, code === 'ELOOP' ? 'symbolic link loop' : 'broken symbolic link');
        } else this.warn(path, reasonOf(error));
        continue;
      }
      if (!st.isFile() && !st.isDirectory()) {
        this.warn(path, 'not a regular file');
        continue;
      }
      if (this.leftOut(root, path, entry.name, st.isFile())) continue;
      // The store changes while it is read (and holds nothing the user wrote); compared by
      // device and inode, so that a symlink to it is left out as well.
      if (st.isDirectory() && this.isStore(st)) {
        this.storeSkips++;
        continue;
      }
      if (st.isFile()) {
        // A walk never enters the store, but a symlink may point at a file in it.
        if (entry.isSymbolicLink() && (await this.inStore(path))) {
          this.storeSkips++;
          continue;
        }
        const before = this.files.length + this.mergedPaths;
        await this.addFile(path, st, true);
        if (this.files.length + this.mergedPaths > before) found++;
      } else if (st.isDirectory()) {
        found += await this.walk(path, visited, root);
      }
    }
    return found;
  }
}

/**
 * Lists the objects an obj://BUCKET[/PREFIX] names, as inputs: path obj://BUCKET/NAME, size,
 * and mtimeMs the upload's time (a worker refuses an object whose size or time changed).
 */
export type ObjectLister = (url: string) => Promise<ResolvedInput[]>;

/** The files a count job reads, and what the user should be told about how they were chosen. */
export interface InputSelection {
  /** The inputs in order, without duplicates, with their sizes (null for stdin). */
  files: ResolvedInput[];
  /**
   * Paths that named a file already taken (a file given twice, a directory and a file inside
   * it, overlapping globs, a hard or symbolic link): each file is counted once.
   */
  mergedPaths: number;
  /** tally's data directory, when a walk or a glob reached it and left it out. */
  skippedDataDirectory?: string;
  /** Files walks left out as binary (see WalkFilters). */
  binarySkips: number;
  /** What walks could not count ("path: why"), each to be said on stderr. */
  warnings: string[];
}

/**
 * Expands the paths given on the command line into the files to count.
 * @param args paths as typed: files, directories, globs, "-" for stdin
 * @returns the inputs in order, without duplicates, with their sizes (null for stdin)
 * @throws UsageError when no path is given or "-" appears twice; InputError (naming the path)
 *   for a missing or unreadable path, a non-regular file, a directory without files, a glob
 *   that matches no file, or a path inside tally's own data directory
 */
export async function resolveInputs(args: string[]): Promise<ResolvedInput[]> {
  return (await selectInputs(args)).files;
}

/**
 * {@link resolveInputs}, also saying how many paths were merged into a file already taken and
 * whether tally's data directory was left out of a walk or a glob.
 * @param args paths as typed: files, directories, globs, "-" for stdin
 * @param options.dataDirectory the store to leave out (default: dataDirectory(), the embedded
 *   server's)
 */
export async function selectInputs(args: string[], options: { dataDirectory?: string; filters?: WalkFilters; listObjects?: ObjectLister } = {}): Promise<InputSelection> {
  if (args.length === 0) throw new UsageError('no input given (files, directories, globs, or - for stdin)');
  const collector = new Collector(await findOwnStore('dataDirectory' in options ? options.dataDirectory : dataDirectory()), options.filters ?? DEFAULT_WALK_FILTERS);
  for (const arg of args) {
    if (arg === '-') {
      collector.addStdin();
      continue;
    }
    if (arg === '') throw new UsageError('an input path is empty');
    if (isUrl(arg)) {
      await collector.addUrl(arg);
      continue;
    }
    if (isObjectUrl(arg)) {
      // A caller that reads no objects gives no lister (`tally put` refuses obj:// first).
      if (!options.listObjects) throw new UsageError(`${arg}: objects are not read by this command`);
      const objects = await options.listObjects(arg);
      if (objects.length === 0) throw new InputError(arg, 'no objects');
      collector.addObjects(objects);
      continue;
    }
    let st: BigIntStats | null = null;
    let failure: unknown;
    try {
      st = statSync(arg, { bigint: true });
    } catch (error) {
      failure = error;
    }
    if (st === null) {
      const code = (failure as NodeJS.ErrnoException | undefined)?.code;
      if (code === 'ENOENT' && GLOB_CHARS.test(arg)) {
        await addGlob(collector, arg);
        continue;
      }
      throw new InputError(arg, reasonOf(failure), { cause: failure });
    }
    // Named outright, it is not left out quietly: its files change while they are counted.
    if (collector.isStore(st) || (await collector.inStore(arg))) {
      throw new InputError(arg, `inside tally's own data directory ${collector.store!.path}, which changes while it is counted`);
    }
    const skips = collector.storeSkips;
    const binaries = collector.binarySkips;
    const warned = collector.warnings.length;
    const found = await collector.addPath(arg, st);
    if (found < 0) throw new InputError(arg, 'not a regular file');
    if (found === 0) {
      throw new InputError(arg, nothingToCount(collector, { skips, binaries, warned }, options.filters ?? DEFAULT_WALK_FILTERS));
    }
  }
  const selection: InputSelection = { files: collector.files, mergedPaths: collector.mergedPaths, binarySkips: collector.binarySkips, warnings: collector.warnings };
  if (collector.storeSkips > 0) selection.skippedDataDirectory = collector.store!.path;
  return selection;
}

/** Why a folder named on the command line gave no file to count, in one line. */
function nothingToCount(collector: Collector, before: { skips: number; binaries: number; warned: number }, filters: WalkFilters): string {
  if (collector.storeSkips > before.skips) return "directory contains no files besides tally's own data directory";
  const binaries = collector.binarySkips - before.binaries;
  if (binaries > 0) return `no files to count in it: ${binaries} binary file${binaries === 1 ? '' : 's'} skipped (--binary count counts them)`;
  if (filters.include.length > 0 || filters.exclude.length > 0) return 'no files to count in it: none matches --include and --exclude';
  const warnings = collector.warnings.slice(before.warned);
  if (warnings.length > 0) return `no files to count in it: ${printable(warnings[0]!)}${warnings.length > 1 ? ` and ${warnings.length - 1} more` : ''}`;
  return 'directory contains no files';
}

/** Control characters, which would break a one-line message or drive the terminal, escaped as in JSON. */
function printable(text: string): string {
  return text.replace(/[\u0000-\u001f\u007f-\u009f]/g, (ch) => {
    const code = ch.charCodeAt(0);
    return code < 0x20 ? JSON.stringify(ch).slice(1, -1) : `\\u${code.toString(16).padStart(4, '0')}`;
  });
}

/**
 * The lines `tally count` prints on stderr about how its inputs were chosen: the data directory
 * it left out, the paths it merged. Empty when there is nothing to say.
 */
export function selectionNotes(selection: InputSelection): string[] {
  const notes: string[] = [];
  if (selection.skippedDataDirectory !== undefined) notes.push(`tally: skipping tally's own data directory ${printable(selection.skippedDataDirectory)}`);
  for (const warning of selection.warnings) notes.push(`tally: warning: ${printable(warning)}; not counted`);
  const b = selection.binarySkips;
  if (b > 0) notes.push(`tally: skipped ${b} binary file${b === 1 ? '' : 's'} (a NUL byte in the first 8 KiB; --binary count counts them)`);
  const n = selection.mergedPaths;
  if (n === 1) notes.push('tally: 1 path names a file already counted (same file); each file is counted once');
  else if (n > 1) notes.push(`tally: ${n} paths name files already counted (same file); each file is counted once`);
  return notes;
}

async function addGlob(collector: Collector, pattern: string): Promise<void> {
  const matches = await expandGlob(pattern);
  let found = 0;
  for (const path of matches) {
    let st: BigIntStats;
    try {
      st = statSync(path, { bigint: true });
    } catch {
      continue; // a dangling symlink matched by name
    }
    // As in a walk (`**` descends into it like any directory).
    if (collector.isStore(st) || (await collector.inStore(path))) {
      collector.storeSkips++;
      continue;
    }
    const n = await collector.addPath(path, st);
    if (n > 0) found += n;
  }
  if (found === 0) throw new InputError(pattern, 'no files match');
}

