/**
 * The NATS client's packages, loaded with require() instead of an ES `import`. They are
 * CommonJS, and Node 20 imports a CommonJS module into an ES module by first reading and lexing
 * it (cjs-module-lexer) to find its export names, following every re-export, which the NATS
 * packages are made of: each file was read twice and parsed once more than it runs. Loading
 * jetstream, transport-node, kv and obj this way takes ~10 ms less CPU in every tally process
 * (measured on Node 20.20 with the code cache, shared/code-cache.ts, which applies either way).
 *
 * Each function loads its package on first call (require caches it): the value imports of
 * tally's modules go through here, their type imports stay `import type`.
 */
import Module, { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

const requireHere = createRequire(import.meta.url);
let nkeysDeferred = false;

/** require(), with @nats-io/nkeys deferred first (see deferNkeys). */
function load(id: string): unknown {
  if (!nkeysDeferred) {
    nkeysDeferred = true;
    deferNkeys();
  }
  return requireHere(id);
}

/** The parts of Node's CommonJS loader deferNkeys uses; the typings do not declare them. */
interface ModuleInternals {
  _cache: NodeJS.Dict<NodeModule>;
  new (id: string): NodeModule;
}

/**
 * nats-core requires @nats-io/nkeys when it loads (and with it tweetnacl and node:crypto), for
 * NKey and JWT authentication only: ~10 ms of CPU in every tally process, most of which
 * authenticate with a token or nothing (measured on Node 20). A stand-in takes its place in
 * require's cache and loads the real module on first use: nats-core reads it only through
 * property accesses (`nkeys.fromSeed(…)`) when it authenticates. Any failure leaves things as
 * they are.
 */
function deferNkeys(): void {
  try {
    const modules = Module as unknown as ModuleInternals;
    const core = dirname(requireHere.resolve('@nats-io/nats-core'));
    const fromCore = createRequire(join(core, 'nkeys.js'));
    const path = fromCore.resolve('@nats-io/nkeys');
    if (modules._cache[path]) return;
    let real: Record<string | symbol, unknown> | undefined;
    const loadReal = (): Record<string | symbol, unknown> => {
      if (!real) {
        delete modules._cache[path];
        real = fromCore('@nats-io/nkeys') as Record<string | symbol, unknown>;
      }
      return real;
    };
    const standIn = new modules(path);
    standIn.filename = path;
    standIn.loaded = true;
    // __esModule: nats-core's __importStar then takes the stand-in as it is, reading nothing.
    standIn.exports = new Proxy({}, {
      get: (_, key) => (key === '__esModule' && !real ? true : loadReal()[key]),
      has: (_, key) => key in loadReal(),
      ownKeys: () => Reflect.ownKeys(loadReal()),
      getOwnPropertyDescriptor: (_, key) => {
        const descriptor = Object.getOwnPropertyDescriptor(loadReal(), key);
        return descriptor && { ...descriptor, configurable: true };
      },
    });
    modules._cache[path] = standIn;
  } catch {
    // the client loads as usual
  }
}

/** @nats-io/jetstream: jetstream(), jetstreamManager(), the policy enums. */
export function jetstreamLib(): typeof import('@nats-io/jetstream') {
  return load('@nats-io/jetstream') as typeof import('@nats-io/jetstream');
}

/** @nats-io/transport-node: connect(), headers(), the connection class. */
export function transportLib(): typeof import('@nats-io/transport-node') {
  return load('@nats-io/transport-node') as typeof import('@nats-io/transport-node');
}

/** transport-node's socket transport (see connection.ts, which records the sockets it dials). */
export function nodeTransportLib(): typeof import('@nats-io/transport-node/lib/node_transport.js') {
  return load('@nats-io/transport-node/lib/node_transport.js') as typeof import('@nats-io/transport-node/lib/node_transport.js');
}

/** @nats-io/kv: Kvm. */
export function kvLib(): typeof import('@nats-io/kv') {
  return load('@nats-io/kv') as typeof import('@nats-io/kv');
}

/**
 * @nats-io/obj: Objm, its SHA-256 set to Node's. The library hashes every byte an Object Store
 * put or get moves (a get checks the digest), by default in JavaScript (js-sha256, ~40 MB/s
 * here, against ~1.2 GB/s for node:crypto): a `tally put` of a big file, a stored shuffle
 * share or partial, a sorted part read back. The choice is the library's, process-wide.
 */
export function objLib(): typeof import('@nats-io/obj') {
  const lib = load('@nats-io/obj') as typeof import('@nats-io/obj');
  lib.setSha256Backend('native');
  return lib;
}

/** @nats-io/services: Svcm (it brings its own copy of the client core). */
export function servicesLib(): typeof import('@nats-io/services') {
  return load('@nats-io/services') as typeof import('@nats-io/services');
}
