/**
 * Where results go: stdout, or a file written atomically (temp file in the same directory,
 * then rename) so a reader never sees half a result.
 */
import { mkdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, basename } from 'node:path';
import { InputError } from '../shared/errors.js';

export type Format = 'table' | 'json' | 'tsv' | 'csv';

/** Writes `text` to `path` atomically; the directory must exist. */
export function writeFileAtomic(path: string, text: string | Uint8Array): void {
  const temp = join(dirname(path), `.${basename(path)}.${process.pid}.${Date.now()}.tmp`);
  try {
    writeFileSync(temp, text);
    renameSync(temp, path);
  } catch (error) {
    rmSync(temp, { force: true });
    throw new InputError(path, `cannot write: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`, { cause: error });
  }
}

/** Creates a directory (and parents) or fails naming it. */
export function ensureDirectory(path: string): void {
  try {
    mkdirSync(path, { recursive: true });
  } catch (error) {
    throw new InputError(path, `cannot create directory: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
  }
}

/** Prints to stdout, or writes the file atomically when `outputFile` is given. */
export function emit(text: string, outputFile?: string): void {
  if (outputFile) writeFileAtomic(outputFile, text);
  else process.stdout.write(text);
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
