/**
 * Where results go: stdout, or a file written atomically (temp file in the same directory,
 * then rename) so a reader never sees half a result.
 */
import { chmodSync, fstatSync, lstatSync, readlinkSync, realpathSync, renameSync, rmSync, statSync, writeFileSync, type Stats } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { InputError, fileErrorReason } from '../shared/errors.js';

export type Format = 'table' | 'json' | 'tsv' | 'csv';

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
 */
export function emit(text: string, outputFile?: string): void {
  if (!outputFile) {
    process.stdout.write(text);
    return;
  }
  let temp: string | undefined;
  try {
    const target = outputTarget(outputFile);
    if (target.stdout) process.stdout.write(text);
    else if (target.inPlace) writeFileSync(target.path, text);
    else {
      temp = join(dirname(target.path), `.${basename(target.path)}.${process.pid}.${Date.now()}.tmp`);
      writeFileSync(temp, text, target.mode === undefined ? {} : { mode: target.mode });
      // The mode given at creation is cut by the umask: set it again.
      if (target.mode !== undefined) chmodSync(temp, target.mode);
      renameSync(temp, target.path);
    }
  } catch (error) {
    if (temp) rmSync(temp, { force: true });
    const reason = fileErrorReason(error) ?? (error as NodeJS.ErrnoException).code ?? (error as Error).message;
    throw new InputError(outputFile, `cannot write: ${reason}`, { cause: error });
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

/** Right-aligned columns, for tables on a terminal. */
export function formatTable(rows: Array<Array<string | number>>, header?: string[]): string {
  const all = header ? [header, ...rows] : rows;
  const widths: number[] = [];
  for (const row of all) row.forEach((cell, i) => (widths[i] = Math.max(widths[i] ?? 0, [...String(cell)].length)));
  const lines = all.map((row) =>
    row
      .map((cell, i) => {
        const text = String(cell);
        const pad = ' '.repeat(widths[i]! - [...text].length);
        return typeof cell === 'number' ? pad + text : text + pad;
      })
      .join('  ')
      .trimEnd(),
  );
  return lines.join('\n') + '\n';
}
