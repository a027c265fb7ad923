/**
 * The benchmark corpora: real text that installed packages ship, replicated to size.
 *
 *  - english: every *.md file under node_modules (READMEs, changelogs, licences of the pinned
 *    dependencies), in path order, concatenated; ~1.6 MB of real English prose, code and URLs.
 *  - multilingual: every message of TypeScript's localized diagnosticMessages (cs, de, es, fr,
 *    it, ja, ko, pl, pt-br, ru, tr, zh-cn, zh-tw), one per line; ~3.5 MB in 13 languages.
 *
 * Each seed is repeated whole until the file reaches its target size. The files go to
 * bench/.corpus/ (gitignored) and are reused while the seed's sha256 and the size match.
 *
 * One corpus is generated instead, for high cardinality (every word distinct):
 *
 *  - numbers: the decimal numbers 1..N, one per line, byte for byte what `seq 1 N` prints
 *    (1..20,000,000: 168,888,897 bytes, 20 M words, 20 M distinct).
 */
import { createHash } from 'node:crypto';
import { closeSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { REPO_ROOT, say } from './lib.js';

export const CORPUS_DIR = join(REPO_ROOT, 'bench', '.corpus');

export interface Seed {
  name: 'english' | 'multilingual';
  description: string;
  bytes: Uint8Array;
  files: number;
  sha256: string;
}

export interface CorpusFile {
  seed: Seed['name'];
  path: string;
  bytes: number;
  copies: number;
  seedBytes: number;
  seedSha256: string;
}

function walk(dir: string, out: string[]): void {
  let entries;
  try {
    entries = readdirSync(dir, { withFileTypes: true });
  } catch {
    return;
  }
  for (const entry of entries) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) walk(path, out);
    else if (entry.isFile() && /\.md$/i.test(entry.name)) out.push(path);
  }
}

function sha256(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/** All *.md files under node_modules, sorted by path (byte order), joined by newlines. */
export function englishSeed(): Seed {
  const root = join(REPO_ROOT, 'node_modules');
  const paths: string[] = [];
  walk(root, paths);
  const rel = paths.map((p) => relative(REPO_ROOT, p)).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  if (rel.length === 0) throw new Error('no *.md files under node_modules: run `npm ci` first');
  const parts: Buffer[] = [];
  for (const p of rel) {
    parts.push(readFileSync(join(REPO_ROOT, p)));
    parts.push(Buffer.from('\n'));
  }
  const bytes = Buffer.concat(parts);
  return { name: 'english', description: `all ${rel.length} *.md files under node_modules, concatenated`, bytes, files: rel.length, sha256: sha256(bytes) };
}

/** Every localized TypeScript diagnostic message, one per line, locales in name order. */
export function multilingualSeed(): Seed {
  const lib = join(REPO_ROOT, 'node_modules', 'typescript', 'lib');
  const locales = readdirSync(lib, { withFileTypes: true })
    .filter((e) => e.isDirectory() && existsSync(join(lib, e.name, 'diagnosticMessages.generated.json')))
    .map((e) => e.name)
    .sort();
  if (locales.length === 0) throw new Error('no localized diagnosticMessages in node_modules/typescript/lib');
  const lines: string[] = [];
  for (const locale of locales) {
    const messages = JSON.parse(readFileSync(join(lib, locale, 'diagnosticMessages.generated.json'), 'utf8')) as Record<string, string>;
    for (const value of Object.values(messages)) lines.push(value.replace(/\s*\n\s*/g, ' '));
  }
  const bytes = Buffer.from(lines.join('\n') + '\n', 'utf8');
  return {
    name: 'multilingual',
    description: `TypeScript ${readTsVersion()} localized diagnosticMessages (${locales.join(', ')}), one message per line`,
    bytes,
    files: locales.length,
    sha256: sha256(bytes),
  };
}

function readTsVersion(): string {
  try {
    return (JSON.parse(readFileSync(join(REPO_ROOT, 'node_modules', 'typescript', 'package.json'), 'utf8')) as { version: string }).version;
  } catch {
    return '?';
  }
}

interface Manifest {
  /** For generated files, seedSha256 is the sha256 of the command that prints the same bytes and sha256 the file's. */
  [file: string]: { bytes: number; seedSha256: string; copies: number; sha256?: string };
}

function readManifest(): Manifest {
  try {
    return JSON.parse(readFileSync(join(CORPUS_DIR, 'manifest.json'), 'utf8')) as Manifest;
  } catch {
    return {};
  }
}

/**
 * A file of at least `targetBytes` made of whole copies of the seed, built once and reused.
 * @param label distinguishes sizes: "english-200MiB"
 */
export function corpusFile(seed: Seed, targetBytes: number, label: string): CorpusFile {
  mkdirSync(CORPUS_DIR, { recursive: true });
  const path = join(CORPUS_DIR, `${label}.txt`);
  const copies = Math.max(1, Math.ceil(targetBytes / seed.bytes.length));
  const bytes = copies * seed.bytes.length;
  const manifest = readManifest();
  const known = manifest[label];
  const result: CorpusFile = { seed: seed.name, path, bytes, copies, seedBytes: seed.bytes.length, seedSha256: seed.sha256 };
  if (known && known.seedSha256 === seed.sha256 && known.copies === copies && existsSync(path) && statSync(path).size === bytes) return result;
  say(`building ${label} (${(bytes / 1e6).toFixed(0)} MB, ${copies} copies of the ${seed.name} seed)`);
  const tmp = `${path}.tmp`;
  const fd = openSync(tmp, 'w');
  try {
    // Write several copies per syscall.
    const perWrite = Math.max(1, Math.floor((8 << 20) / seed.bytes.length));
    const block = Buffer.concat(Array.from({ length: perWrite }, () => seed.bytes));
    let left = copies;
    while (left > 0) {
      const n = Math.min(left, perWrite);
      const piece = n === perWrite ? block : block.subarray(0, n * seed.bytes.length);
      let off = 0;
      while (off < piece.length) off += writeSync(fd, piece, off, piece.length - off);
      left -= n;
    }
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, path);
  manifest[label] = { bytes, seedSha256: seed.sha256, copies };
  writeFileSync(join(CORPUS_DIR, 'manifest.json'), JSON.stringify(manifest, null, 2) + '\n');
  return result;
}

/** A folder of many small files and one file holding the same bytes. */
export interface CorpusFolder {
  /** The folder (files in subfolders of 100). */
  dir: string;
  /** One file: the folder's files concatenated in walk order. */
  file: string;
  files: number;
  bytes: number;
}

/**
 * A folder of `files` files of about `fileBytes` each, cut from the seed (repeated as needed) at
 * line ends, and one file of the same bytes: each piece ends with a newline, so both hold exactly
 * the same words. Built once and reused (manifest entry `label`).
 */
export function corpusFolder(seed: Seed, files: number, fileBytes: number, label: string): CorpusFolder {
  mkdirSync(CORPUS_DIR, { recursive: true });
  const dir = join(CORPUS_DIR, label);
  const file = join(CORPUS_DIR, `${label}.txt`);
  const manifest = readManifest();
  const known = manifest[label];
  if (known && known.seedSha256 === seed.sha256 && known.copies === files && existsSync(file) && existsSync(dir)) {
    return { dir, file, files, bytes: known.bytes };
  }
  say(`building ${label} (${files} files of ~${fileBytes} bytes from the ${seed.name} seed)`);
  const text = Buffer.from(seed.bytes);
  const tmpDir = `${dir}.tmp`;
  rmSync(tmpDir, { recursive: true, force: true });
  const out = openSync(`${file}.tmp`, 'w');
  let at = 0;
  let bytes = 0;
  try {
    for (let i = 0; i < files; i++) {
      if (at >= text.length - fileBytes) at = 0;
      let end = text.indexOf(0x0a, at + fileBytes);
      end = end < 0 ? text.length : end + 1;
      const piece = text.subarray(at, end);
      at = end;
      const sub = join(tmpDir, String(Math.floor(i / 100)).padStart(3, '0'));
      if (i % 100 === 0) mkdirSync(sub, { recursive: true });
      writeFileSync(join(sub, `${String(i).padStart(6, '0')}.txt`), piece);
      let off = 0;
      while (off < piece.length) off += writeSync(out, piece, off, piece.length - off);
      bytes += piece.length;
    }
  } finally {
    closeSync(out);
  }
  rmSync(dir, { recursive: true, force: true });
  renameSync(tmpDir, dir);
  renameSync(`${file}.tmp`, file);
  manifest[label] = { bytes, seedSha256: seed.sha256, copies: files };
  writeFileSync(join(CORPUS_DIR, 'manifest.json'), JSON.stringify(manifest, null, 2) + '\n');
  return { dir, file, files, bytes };
}

/** The decimal numbers 1..n, one per line, as `seq 1 n` prints them. */
export interface NumbersFile {
  path: string;
  n: number;
  bytes: number;
  /** sha256 of the file: `seq 1 n | sha256sum` prints the same. */
  sha256: string;
  /** The one-line shell command that prints the same bytes. */
  command: string;
}

/** Size of `seq 1 n`'s output: each number's digits and a newline. */
export function seqBytes(n: number): number {
  let bytes = 0;
  for (let digits = 1, lo = 1; lo <= n; digits++, lo *= 10) bytes += (Math.min(n, lo * 10 - 1) - lo + 1) * (digits + 1);
  return bytes;
}

/**
 * The numbers 1..n, one per line (n words, n distinct), built once into bench/.corpus/ and
 * reused (manifest entry `label`). Written with a decimal counter in ASCII, without spawning
 * seq; the file's sha256 is kept in the manifest.
 */
export function numbersFile(n: number, label: string): NumbersFile {
  if (!Number.isSafeInteger(n) || n < 1) throw new Error(`numbersFile: bad n ${n}`);
  mkdirSync(CORPUS_DIR, { recursive: true });
  const path = join(CORPUS_DIR, `${label}.txt`);
  const command = `seq 1 ${n}`;
  const commandSha256 = sha256(Buffer.from(command));
  const bytes = seqBytes(n);
  const manifest = readManifest();
  const known = manifest[label];
  if (known?.sha256 && known.seedSha256 === commandSha256 && known.bytes === bytes && existsSync(path) && statSync(path).size === bytes) {
    return { path, n, bytes, sha256: known.sha256, command };
  }
  say(`building ${label} (${(bytes / 1e6).toFixed(1)} MB: ${command})`);
  const tmp = `${path}.tmp`;
  const fd = openSync(tmp, 'w');
  const hash = createHash('sha256');
  let written = 0;
  try {
    const block = Buffer.allocUnsafe(8 << 20);
    // The current number in ASCII, most significant digit first.
    const digits = Buffer.alloc(24, 0x30);
    let len = 1;
    digits[0] = 0x31;
    let at = 0;
    const flush = () => {
      const piece = block.subarray(0, at);
      hash.update(piece);
      let off = 0;
      while (off < piece.length) off += writeSync(fd, piece, off, piece.length - off);
      written += piece.length;
      at = 0;
    };
    for (let i = 1; i <= n; i++) {
      if (at + len + 1 > block.length) flush();
      digits.copy(block, at, 0, len);
      at += len;
      block[at++] = 0x0a;
      // Add one: trailing nines become zeros; all nines grow by a digit (999 -> 1000).
      let k = len - 1;
      while (k >= 0 && digits[k] === 0x39) digits[k--] = 0x30;
      if (k >= 0) digits[k]++;
      else {
        digits[0] = 0x31;
        digits[len++] = 0x30;
      }
    }
    flush();
  } finally {
    closeSync(fd);
  }
  if (written !== bytes) throw new Error(`numbersFile: wrote ${written} bytes, expected ${bytes}`);
  renameSync(tmp, path);
  const fileSha256 = hash.digest('hex');
  manifest[label] = { bytes, seedSha256: commandSha256, copies: 1, sha256: fileSha256 };
  writeFileSync(join(CORPUS_DIR, 'manifest.json'), JSON.stringify(manifest, null, 2) + '\n');
  return { path, n, bytes, sha256: fileSha256, command };
}
