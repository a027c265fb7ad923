/**
 * Where results go: stdout, or a file written atomically (temp file in the same directory,
 * then rename) so a reader never sees half a result; and tables that are safe to print on a
 * terminal.
 */
import { accessSync, chmodSync, closeSync, constants, fstatSync, lstatSync, openSync, readlinkSync, realpathSync, renameSync, rmSync, statSync, unlinkSync, writeFileSync, writeSync, type BigIntStats, type Stats } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { ExitCode, InputError, TallyError, fileErrorReason } from '../shared/errors.js';

export type Format = 'table' | 'json' | 'tsv' | 'csv';

/** The --output value that means stdout, as for inputs: a file really named "-" is `./-`. */
export const STDOUT_NAME = '-';

function isStdout(st: Stats): boolean {
  try {
    const out = fstatSync(1);
    return out.dev === st.dev && out.ino === st.ino;
  } catch {
    return false;
  }
}

/**
 * Where writing to `path` really goes, and how: a symbolic link is followed (the link stays, its
 * target gets the result); an existing regular file is replaced atomically with its permissions
 * kept; a device or FIFO (`/dev/stdout`, a pipe) is written to in place, never replaced.
 */
function outputTarget(path: string): { path: string; inPlace: boolean; mode?: number; stdout?: boolean } {
  let st: Stats;
  try {
    st = statSync(path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    // Nothing there yet; a dangling link names the file to create.
    const link = lstatSync(path, { throwIfNoEntry: false });
    return { path: link?.isSymbolicLink() ? resolve(dirname(path), readlinkSync(path)) : path, inPlace: false };
  }
  if (!st.isFile()) {
    // Our own stdout (/dev/stdout): a socket cannot be opened again by name, so it is written as stdout.
    return { path, inPlace: true, stdout: isStdout(st) };
  }
  return { path: realpathSync(path), inPlace: false, mode: st.mode & 0o7777 };
}

/**
 * Prints to stdout, or writes `outputFile` so that no reader sees half a result: a temp file
 * beside it, then rename. The directory must exist. A link is followed (the link stays, its
 * target gets the result); an existing file keeps its permissions; a device or FIFO
 * (`/dev/stdout`, a named pipe) is written to in place, never replaced.
 * @param outputFile undefined or "-" for stdout
 * @param job the job whose result this is: a failed write names it (exit 1), so that its
 *   stored result can still be fetched with `tally result`
 * @throws InputError (exit 2) without `job`, TallyError (exit 1) with it
 */
export function emit(text: string, outputFile?: string, job?: string): void {
  if (!outputFile || outputFile === STDOUT_NAME) {
    process.stdout.write(text);
    return;
  }
  let temp: string | undefined;
  try {
    const target = outputTarget(outputFile);
    if (target.stdout) process.stdout.write(text);
    else if (target.inPlace) writeFileSync(target.path, text);
    else {
      temp = tempBeside(target.path);
      writeFileSync(temp, text, target.mode === undefined ? {} : { mode: target.mode });
      // The mode given at creation is cut by the umask: set it again.
      if (target.mode !== undefined) chmodSync(temp, target.mode);
      renameSync(temp, target.path);
    }
  } catch (error) {
    if (temp) rmSync(temp, { force: true });
    throw writeError(error, outputFile, job);
  }
}

/**
 * Like {@link emit}, for output made in pieces by `produce` (a table of millions of words,
 * merged from its parts): written as it comes, to stdout with its back-pressure, or to a temp
 * file renamed over `outputFile` only once `produce` has finished, so that a failure half way
 * leaves no half result in its place.
 */
export async function emitStream(produce: (write: (text: string) => void | Promise<void>) => Promise<void>, outputFile?: string, job?: string): Promise<void> {
  const toStdout = async (text: string) => {
    if (process.stdout.write(text)) return;
    // A reader that went away (EPIPE) never drains: cli.ts reports that failure at the end.
    await new Promise<void>((resolve) => {
      const done = () => {
        process.stdout.off('drain', done).off('error', done).off('close', done);
        resolve();
      };
      process.stdout.once('drain', done).once('error', done).once('close', done);
    });
  };
  if (!outputFile || outputFile === STDOUT_NAME) {
    await produce(toStdout);
    return;
  }
  let temp: string | undefined;
  let fd: number | undefined;
  try {
    const target = outputTarget(outputFile);
    if (target.stdout) {
      await produce(toStdout);
      return;
    }
    const path = target.inPlace ? target.path : (temp = tempBeside(target.path));
    fd = openSync(path, target.inPlace ? 'w' : 'wx', target.mode ?? 0o666);
    const out = fd;
    await produce((text) => {
      writeSync(out, text);
    });
    closeSync(fd);
    fd = undefined;
    if (temp) {
      if (target.mode !== undefined) chmodSync(temp, target.mode);
      renameSync(temp, target.path);
    }
  } catch (error) {
    if (fd !== undefined) closeSync(fd);
    if (temp) rmSync(temp, { force: true });
    // Errors of the producer itself (a part that cannot be read) are not about the file.
    if (!(error as NodeJS.ErrnoException | undefined)?.syscall) throw error;
    throw writeError(error, outputFile, job);
  }
}

function tempBeside(path: string): string {
  return join(dirname(path), `.${basename(path)}.${process.pid}.${Date.now()}.tmp`);
}

function writeError(error: unknown, outputFile: string, job: string | undefined): Error {
  const reason = `cannot write: ${reasonOf(error)}`;
  // checkOutputFile passed before the job, so this is the disk or a change since, not bad
  // usage; the result is stored, and the job id is what gets it back.
  if (job) return new TallyError(`${outputFile}: ${reason}; job ${job} is done: tally result ${job} --output FILE`, ExitCode.failed, { cause: error });
  return new InputError(outputFile, reason, { cause: error });
}

function reasonOf(error: unknown): string {
  return fileErrorReason(error) ?? (error as NodeJS.ErrnoException).code ?? (error as Error).message;
}

/**
 * Whether a new file can be made in `dir`, found by making one and removing it: access(2)
 * says yes to root everywhere, also where creating fails (/proc, a read-only mount).
 * @returns null if it can, else why not
 */
function cannotCreateIn(dir: string): string | null {
  let st: Stats | undefined;
  try {
    st = statSync(dir, { throwIfNoEntry: false });
  } catch (error) {
    return reasonOf(error);
  }
  if (!st) return 'no such file or directory';
  if (!st.isDirectory()) return 'not a directory';
  const probe = join(dir, `.tally.${process.pid}.${Date.now()}.probe`);
  try {
    closeSync(openSync(probe, 'wx', 0o600));
  } catch (error) {
    // The directory is there: ENOENT from its file system means it makes no files (procfs).
    return (error as NodeJS.ErrnoException).code === 'ENOENT' ? 'does not accept new files' : reasonOf(error);
  }
  unlinkSync(probe);
  return null;
}

/** Same file: device and inode, in full (bigint: inode numbers can pass 2^53). */
function sameFile(a: BigIntStats, b: BigIntStats): boolean {
  return a.dev === b.dev && a.ino === b.ino;
}

/**
 * Checks, before any job is submitted, that {@link emit} will be able to write `outputFile`
 * and that writing it would not replace one of the job's inputs, so that a bad --output costs
 * nothing: neither a job's run time nor an input.
 * @param outputFile the --output value; undefined or "-" means stdout, which always passes
 * @param inputs the job's input files as paths to open ("-": stdin, compared when stdin is a
 *   regular file); a path that no longer exists is skipped
 * @throws InputError (exit 2) naming `outputFile` and the reason: it is a directory, its
 *   directory is missing or refuses new files, it is not writable, or it is one of the inputs
 */
export function checkOutputFile(outputFile: string | undefined, inputs: readonly string[] = []): void {
  if (!outputFile || outputFile === STDOUT_NAME) return;
  const refuse = (reason: string, cause?: unknown): never => {
    throw new InputError(outputFile, `cannot write: ${reason}`, { cause });
  };
  let st: BigIntStats | undefined;
  let target: ReturnType<typeof outputTarget>;
  try {
    st = statSync(outputFile, { bigint: true, throwIfNoEntry: false });
    target = outputTarget(outputFile);
  } catch (error) {
    return refuse(reasonOf(error), error);
  }
  if (st?.isDirectory()) refuse('is a directory');
  if (st) {
    for (const input of inputs) {
      const other = input === '-' ? stdinFile() : statSync(input, { bigint: true, throwIfNoEntry: false });
      if (!other || !sameFile(st, other)) continue;
      const name = input === '-' ? 'stdin' : input;
      throw new InputError(outputFile, `is an input of this job${name === outputFile ? '' : ` (${name})`}; --output may not replace it`);
    }
  }
  if (target.stdout) return;
  if (st) {
    try {
      accessSync(target.path, constants.W_OK);
    } catch (error) {
      refuse(reasonOf(error), error);
    }
  }
  // Devices and FIFOs are written in place; everything else by a new file and a rename.
  if (target.inPlace) return;
  const dir = dirname(target.path);
  const reason = cannotCreateIn(dir);
  if (reason) refuse(`directory ${dir}: ${reason}`);
}

/** Stdin's file when it is a regular file (`< file`), else undefined. */
function stdinFile(): BigIntStats | undefined {
  try {
    const st = fstatSync(0, { bigint: true });
    return st.isFile() ? st : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Checks, before any job is submitted, that files can be written into `dir` (factorial's
 * --output DIR): it is a writable directory, or it does not exist yet and its nearest existing
 * ancestor is one, where the job will create it.
 * @throws InputError (exit 2) naming `dir` and the reason
 */
export function checkOutputDirectory(dir: string): void {
  let existing = resolve(dir);
  try {
    let st = statOrMissing(existing);
    while (!st && dirname(existing) !== existing) {
      existing = dirname(existing);
      st = statOrMissing(existing);
    }
    if (st && !st.isDirectory()) throw new InputError(dir, existing === resolve(dir) ? 'not a directory' : `cannot create it: ${existing} is not a directory`);
  } catch (error) {
    if (error instanceof InputError) throw error;
    throw new InputError(dir, reasonOf(error), { cause: error });
  }
  const reason = cannotCreateIn(existing);
  if (reason) throw new InputError(dir, existing === resolve(dir) ? `cannot write files there: ${reason}` : `cannot create it in ${existing}: ${reason}`);
}

/** A path's stats, or undefined when it or an ancestor is missing or is a file (ENOTDIR). */
function statOrMissing(path: string): Stats | undefined {
  try {
    return statSync(path, { throwIfNoEntry: false });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOTDIR') return undefined;
    throw error;
  }
}

/** `n` and the noun, plural unless n is 1: "1 file", "11 files". */
export function counted(n: number | string, noun: string): string {
  return `${n} ${noun}${String(n) === '1' ? '' : 's'}`;
}

/** A CSV field, quoted when needed (RFC 4180). */
export function csvField(value: string | number): string {
  const text = String(value);
  return /[",\r\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

/**
 * Characters a table may not print raw: C0 controls, DEL, C1 controls (ESC, BEL, CSI and OSC
 * would steer the terminal; a newline would break the row), the bidi controls (U+202E and its
 * kin reorder what follows on screen), and the backslash that starts every escape, so that an
 * escaped control can never be mistaken for a word that spells one.
 */
const UNSAFE = /[\\\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/g;
const SHORT_ESCAPES: Record<string, string> = { '\\': '\\\\', '\t': '\\t', '\n': '\\n', '\r': '\\r' };

/**
 * `text` as a terminal may show it: each control or bidi character as a visible escape (`\n`,
 * `\x1b`, `\x9b`, `\u202e`) and a backslash doubled (`\\`); everything else as is.
 */
export function terminalSafe(text: string): string {
  return text.replace(UNSAFE, (ch) => {
    const code = ch.charCodeAt(0);
    return SHORT_ESCAPES[ch] ?? (code <= 0xff ? `\\x${code.toString(16).padStart(2, '0')}` : `\\u${code.toString(16).padStart(4, '0')}`);
  });
}

const PRINTABLE_ASCII = /^[\x20-\x7e]*$/;

/** True when a table cell of `text` needs {@link loadDisplayWidth} to be measured (text beyond printable ASCII). */
export function needsDisplayWidth(text: string): boolean {
  return !PRINTABLE_ASCII.test(text);
}

let stringWidth: ((text: string, options?: { countAnsiEscapeCodes?: boolean }) => number) | undefined;

/**
 * Loads what {@link displayWidth} needs for text beyond ASCII (string-width: ~50 ms, with its
 * emoji tables): commands that may print such text in a table call this first, so that no other
 * command pays for it at start-up.
 */
export async function loadDisplayWidth(): Promise<void> {
  stringWidth ??= (await import('string-width')).default;
}

/**
 * Terminal columns `text` takes: wide and fullwidth characters 2, combining and zero-width 0.
 * Beyond printable ASCII it needs {@link loadDisplayWidth} first.
 */
export function displayWidth(text: string): number {
  // Most cells are printable ASCII, one column a character: string-width segments graphemes,
  // several times slower on a million-word table. Escape sequences are counted, not stripped:
  // in a table they have been escaped already, and show as the text they are.
  if (PRINTABLE_ASCII.test(text)) return text.length;
  if (!stringWidth) throw new Error('displayWidth of text beyond ASCII before loadDisplayWidth()');
  return stringWidth(text, { countAnsiEscapeCodes: true });
}

/**
 * Columns aligned by display width (numbers right-aligned), for tables on a terminal. Every
 * text cell is passed through {@link terminalSafe}: what a table shows comes from files, file
 * names and job records, which anyone may have crafted.
 */
export function formatTable(rows: Array<Array<string | number>>, header?: string[]): string {
  // Each cell measured once: for text beyond ASCII that is the costly part.
  const all = (header ? [header, ...rows] : rows).map((row) =>
    row.map((cell) => {
      const text = typeof cell === 'number' ? String(cell) : terminalSafe(cell);
      return { text, width: displayWidth(text), right: typeof cell === 'number' };
    }),
  );
  const widths: number[] = [];
  for (const row of all) row.forEach((cell, i) => (widths[i] = Math.max(widths[i] ?? 0, cell.width)));
  const lines = all.map((row) =>
    row
      .map((cell, i) => {
        const pad = ' '.repeat(widths[i]! - cell.width);
        return cell.right ? pad + cell.text : cell.text + pad;
      })
      .join('  ')
      .trimEnd(),
  );
  return lines.join('\n') + '\n';
}
