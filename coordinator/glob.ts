/**
 * Glob patterns as tally reads them: in paths the shell did not expand (`tally count '*.txt'`)
 * and in --include / --exclude. As in sh: * ? [abc] [a-z] [!abc], \x for a literal x; a wildcard
 * does not match a leading "." unless the pattern segment starts with "."; ** matches zero or
 * more directories.
 */
import type { Dirent } from 'node:fs';
import { readdirSync } from 'node:fs';

/** Characters that make a path a pattern. */
export const GLOB_CHARS = /[*?[]/;

/** Joins a child name to a directory without normalising the user's spelling of the directory. */
export function child(dir: string, name: string): string {
  if (dir === '') return name;
  return dir.endsWith('/') ? dir + name : `${dir}/${name}`;
}

export function byName(a: Dirent, b: Dirent): number {
  return a.name < b.name ? -1 : a.name > b.name ? 1 : 0;
}

/**
 * Paths matching a glob pattern, sorted within each directory, as spelled from the pattern's
 * literal prefix. Exported for tests.
 */
export async function expandGlob(pattern: string): Promise<string[]> {
  const absolute = pattern.startsWith('/');
  const segments = pattern.split('/').filter((s) => s !== '');
  // The literal leading segments are kept exactly as typed.
  let i = 0;
  while (i < segments.length && !GLOB_CHARS.test(segments[i])) i++;
  const literal = segments.slice(0, i).join('/');
  const base = absolute ? `/${literal}` : literal;
  const out = new Set<string>();
  await expand(base, segments.slice(i), 0, out);
  return [...out];
}

async function listDir(dir: string): Promise<Dirent[]> {
  try {
    const entries = readdirSync(dir === '' ? '.' : dir, { withFileTypes: true });
    return entries.sort(byName);
  } catch {
    return []; // not a directory, gone, or unreadable: nothing matches below it
  }
}

async function expand(base: string, segments: string[], i: number, out: Set<string>): Promise<void> {
  if (i === segments.length) {
    if (base !== '') out.add(base);
    return;
  }
  const segment = segments[i];
  if (segment === '**') {
    await expand(base, segments, i + 1, out);
    for (const entry of await listDir(base)) {
      if (entry.isDirectory() && !entry.name.startsWith('.')) await expand(child(base, entry.name), segments, i, out);
    }
    return;
  }
  if (!GLOB_CHARS.test(segment)) {
    await expand(child(base, segment), segments, i + 1, out);
    return;
  }
  const matcher = segmentMatcher(segment);
  for (const entry of await listDir(base)) {
    if (matcher(entry.name)) await expand(child(base, entry.name), segments, i + 1, out);
  }
}

/**
 * A matcher for one path segment: * (any run), ? (one character), [abc], [a-z], [!abc] or
 * [^abc], and \x for a literal x. An unclosed [ is literal.
 */
export function segmentMatcher(segment: string): (name: string) => boolean {
  const chars = Array.from(segment);
  let source = '';
  for (let i = 0; i < chars.length; i++) {
    const ch = chars[i];
    if (ch === '*') source += '.*';
    else if (ch === '?') source += '.';
    else if (ch === '\\' && i + 1 < chars.length) source += escapeRegex(chars[++i]);
    else if (ch === '[') {
      let j = i + 1;
      let negate = false;
      if (chars[j] === '!' || chars[j] === '^') {
        negate = true;
        j++;
      }
      // A ']' right after the opening bracket is a member, as in sh.
      let close = chars[j] === ']' ? j + 1 : j;
      while (close < chars.length && chars[close] !== ']') close++;
      if (close >= chars.length) {
        source += '\\[';
        continue;
      }
      let set = '';
      for (let k = j; k < close; k++) {
        if (chars[k] === '-' && k > j && k + 1 < close) set += '-';
        else set += escapeClass(chars[k]);
      }
      source += negate ? `[^${set}]` : `[${set}]`;
      i = close;
    } else source += escapeRegex(ch);
  }
  const re = new RegExp(`^${source}$`, 'su');
  const dotExplicit = segment.startsWith('.');
  return (name) => (dotExplicit || !name.startsWith('.')) && re.test(name);
}

function escapeRegex(ch: string): string {
  // Only syntax characters may be escaped in a 'u' regex ("\-" would be a SyntaxError).
  return /[\\^$.*+?()[\]{}|/]/.test(ch) ? `\\${ch}` : ch;
}

function escapeClass(ch: string): string {
  return /[\\\]^[-]/.test(ch) ? `\\${ch}` : ch;
}

/**
 * A matcher for --include / --exclude: a pattern without "/" is matched against a file's or
 * folder's name, one with "/" against its path below the folder walked (`docs/**` is all of
 * docs, `**` matches any number of folders).
 */
export function pathMatcher(pattern: string): (relativePath: string, name: string) => boolean {
  const segments = pattern.split('/').filter((segment) => segment !== '');
  if (!pattern.includes('/')) {
    const matches = segmentMatcher(pattern);
    return (_path, name) => matches(name);
  }
  const matchers = segments.map((segment) => (segment === '**' ? null : segmentMatcher(segment)));
  const match = (parts: string[], i: number, j: number): boolean => {
    if (i === matchers.length) return j === parts.length;
    const matcher = matchers[i];
    if (matcher === null) {
      for (let k = j; k <= parts.length; k++) if (match(parts, i + 1, k)) return true;
      return false;
    }
    return j < parts.length && matcher(parts[j]!) && match(parts, i + 1, j + 1);
  };
  return (relativePath) => match(relativePath.split('/'), 0, 0);
}
