/**
 * A V8 code cache for the CommonJS modules a tally process loads: tally's own bundles
 * (dist/bundle/*.cjs, scripts/bundle.mjs) and the packages (the NATS client, commander, pino).
 * Their compiled bytecode is kept in a per-user cache file and handed back to V8 the next time,
 * instead of parsing and compiling them again; made at exit, it holds every function the last
 * run compiled, not only what a module compiles as it loads (all that Node 22+'s own compile
 * cache keeps). Measured on the embedded start-up (`tally sum 1 10 --workers 2`): for the
 * packages ~40 ms less CPU in all, ~25 ms less wall time on two cores; for the bundles 25-45 ms
 * less wall time again, on Node 20 and 24 (docs/BENCHMARKS.md, issue 17's ninth pass). This does what the
 * `v8-compile-cache` package did for CommonJS.
 *
 * Safe by construction: an entry is used only for the same file (path, size and mtime), V8
 * itself refuses data from another V8 version or other flags (the module is then compiled as
 * usual and the entry replaced), and the cache lives in a directory only this user can write
 * (bytecode is trusted input). Any failure means no cache, never a failed command.
 * TALLY_CODE_CACHE=off disables it; TALLY_CODE_CACHE=DIR puts it elsewhere.
 */
import Module from 'node:module';
import { Script } from 'node:vm';
import { lstatSync, mkdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setting } from './settings.js';

interface Entry {
  key: string;
  data: Buffer;
}

interface Compiled {
  filename: string;
  key: string;
  script: Script;
}

/** What Node's own Module.prototype._compile gets; the typings do not declare it. */
type CompileFn = (this: NodeModule, content: string, filename: string) => unknown;
interface ModuleInternals {
  prototype: { _compile: CompileFn };
  wrap(content: string): string;
  _resolveFilename(request: string, parent: NodeModule, isMain: boolean, options?: unknown): string;
  _resolveLookupPaths(request: string, parent: NodeModule): string[] | null;
  _extensions: NodeJS.RequireExtensions;
  _cache: NodeJS.Dict<NodeModule>;
}

const ModuleImpl = Module as unknown as ModuleInternals;
const DYNAMIC_IMPORT = /\bimport\s*\(/;
/**
 * Where tally's bundles are: their code leaves no import() to Node (scripts/bundle.mjs refuses
 * one), so they need no look for one (their text has `import(` in esbuild's comments).
 */
const BUNDLE_DIR = fileURLToPath(new URL('../bundle/', import.meta.url));
let installed = false;

/** $TALLY_CODE_CACHE, else $XDG_CACHE_HOME/tally, else ~/.cache/tally; null when turned off. */
export function codeCacheDirectory(env: NodeJS.ProcessEnv = process.env): string | null {
  return setting('TALLY_CODE_CACHE', env);
}

/** A directory we own and nobody else may write to, made if missing; else null. */
function privateDirectory(dir: string): string | null {
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const stat = lstatSync(dir);
    const uid = process.getuid?.();
    if (!stat.isDirectory() || (uid !== undefined && stat.uid !== uid) || (stat.mode & 0o022) !== 0) return null;
    return dir;
  } catch {
    return null;
  }
}

function read(file: string): Map<string, Entry> {
  const entries = new Map<string, Entry>();
  let buffer: Buffer;
  try {
    buffer = readFileSync(file);
  } catch {
    return entries;
  }
  try {
    let at = 0;
    const u32 = () => {
      const value = buffer.readUInt32LE(at);
      at += 4;
      return value;
    };
    const text = () => {
      const length = u32();
      const value = buffer.toString('utf8', at, at + length);
      at += length;
      return value;
    };
    const count = u32();
    for (let i = 0; i < count; i++) {
      const filename = text();
      const key = text();
      const length = u32();
      if (at + length > buffer.length) throw new RangeError('truncated');
      entries.set(filename, { key, data: buffer.subarray(at, at + length) });
      at += length;
    }
  } catch {
    entries.clear(); // a damaged file: start afresh
  }
  return entries;
}

function write(file: string, compiled: Compiled[], previous: Map<string, Entry>): void {
  const parts: Buffer[] = [];
  const u32 = (value: number) => {
    const b = Buffer.alloc(4);
    b.writeUInt32LE(value);
    parts.push(b);
  };
  const text = (value: string) => {
    const b = Buffer.from(value, 'utf8');
    u32(b.length);
    parts.push(b);
  };
  // Entries of modules this run did not load (another command's) stay while their file does.
  const names = new Set(compiled.map((c) => c.filename));
  const kept = [...previous].filter(([filename, entry]) => !names.has(filename) && keyOf(filename) === entry.key);
  u32(compiled.length + kept.length);
  for (const { filename, key, script } of compiled) {
    text(filename);
    text(key);
    // Made now, at exit: it then holds every function this run compiled, not only the top level.
    const data = script.createCachedData();
    u32(data.length);
    parts.push(data);
  }
  for (const [filename, { key, data }] of kept) {
    text(filename);
    text(key);
    u32(data.length);
    parts.push(data);
  }
  const temp = `${file}.${process.pid}.tmp`;
  writeFileSync(temp, Buffer.concat(parts), { mode: 0o600 });
  renameSync(temp, file);
}

/** Size and modification time: an entry is for this file as it is now. */
function keyOf(filename: string): string | null {
  try {
    const stat = statSync(filename);
    return `${stat.size}:${stat.mtimeMs}`;
  } catch {
    return null;
  }
}

/** A module compiled through the cache: a package's, or one of tally's bundles. */
function cacheable(filename: string, content: string): boolean {
  if (filename.startsWith(BUNDLE_DIR)) return filename.endsWith('.cjs');
  // Node compiles the others: a script made by node:vm cannot import() (Node 20 offers that
  // only as an experimental option, which warns on stderr), and a hashbang must come first.
  return filename.includes('/node_modules/') && !content.startsWith('#!') && !DYNAMIC_IMPORT.test(content);
}

/**
 * Compiles tally's bundles and the CommonJS packages this process loads from here on through
 * the cache named `name` (one per command, one for worker processes), and writes the cache back
 * at exit when anything in it was missing or stale. Call it before those modules load (a
 * bundle's launcher: bin/tally.js, dist/bundle/worker-main.cjs); a second call does nothing.
 */
export function installCodeCache(name: string, env: NodeJS.ProcessEnv = process.env): void {
  if (installed) return;
  let configured: string | null;
  try {
    configured = codeCacheDirectory(env);
  } catch {
    return; // a bad setting: the command reports it
  }
  if (!configured || typeof ModuleImpl.prototype._compile !== 'function') return;
  const dir = privateDirectory(configured);
  if (!dir) return;
  installed = true;
  const file = join(dir, `${name}-${process.version}-${process.arch}.v8cache`);
  const entries = read(file);
  const compiled: Compiled[] = [];
  let stale = false;
  const original = ModuleImpl.prototype._compile;

  ModuleImpl.prototype._compile = function compileWithCache(this: NodeModule, content: string, filename: string): unknown {
    const key = cacheable(filename, content) ? keyOf(filename) : null;
    if (key === null) return original.call(this, content, filename);
    const entry = entries.get(filename);
    const cachedData = entry?.key === key ? entry.data : undefined;
    const script = new Script(ModuleImpl.wrap(content), { filename, cachedData });
    if (cachedData === undefined || script.cachedDataRejected) stale = true;
    compiled.push({ filename, key, script });
    const wrapper = script.runInThisContext({ displayErrors: true }) as (...args: unknown[]) => unknown;
    // The `require` Node gives a module (lib/internal/modules/helpers.js, makeRequireFunction).
    const mod = this;
    const require = ((id: string) => mod.require(id)) as NodeJS.Require;
    const resolve = ((request: string, options?: unknown) => ModuleImpl._resolveFilename(request, mod, false, options)) as NodeJS.RequireResolve;
    resolve.paths = (request: string) => ModuleImpl._resolveLookupPaths(request, mod);
    require.resolve = resolve;
    require.main = process.mainModule;
    require.extensions = ModuleImpl._extensions;
    require.cache = ModuleImpl._cache;
    return wrapper.call(mod.exports, mod.exports, require, mod, filename, dirname(filename));
  };

  process.once('exit', () => {
    if (!stale || compiled.length === 0) return;
    try {
      write(file, compiled, entries);
    } catch {
      // no cache this time
    }
  });
}
