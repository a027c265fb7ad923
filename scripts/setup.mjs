#!/usr/bin/env node
// `npm run setup`: installs what tally needs on a fresh Debian/Ubuntu machine with Node >= 20.19
// and builds it. Idempotent: each step is skipped when already done. Plain JavaScript on
// purpose: it runs before any dependency is installed.
import { execFileSync, spawnSync } from 'node:child_process';
import { accessSync, constants, existsSync, statSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const say = (text) => process.stderr.write(`setup: ${text}\n`);

function run(command, args, options = {}) {
  const result = spawnSync(command, args, { cwd: root, stdio: 'inherit', ...options });
  if (result.status !== 0) {
    say(`'${command} ${args.join(' ')}' failed (exit ${result.status ?? result.signal})`);
    process.exit(1);
  }
}

// 1. Node itself.
const [major, minor] = process.versions.node.split('.').map(Number);
if (major < 20 || (major === 20 && minor < 19)) {
  say(`Node ${process.versions.node} is too old: tally needs Node >= 20.19`);
  process.exit(1);
}

// 2. npm dependencies, when missing or older than the lock file.
const installedMarker = join(root, 'node_modules', '.package-lock.json');
const lock = join(root, 'package-lock.json');
if (!existsSync(installedMarker) || (existsSync(lock) && statSync(lock).mtimeMs > statSync(installedMarker).mtimeMs)) {
  say('installing npm dependencies');
  run('npm', existsSync(lock) ? ['ci', '--no-audit', '--no-fund'] : ['install', '--no-audit', '--no-fund']);
}

// 3. nats-server (Debian/Ubuntu package), unless one is already on PATH or at TALLY_NATS_SERVER.
function findNatsServer() {
  const candidates = [];
  if (process.env.TALLY_NATS_SERVER) candidates.push(process.env.TALLY_NATS_SERVER);
  for (const dir of (process.env.PATH ?? '').split(delimiter)) if (dir) candidates.push(join(dir, 'nats-server'));
  candidates.push('/usr/sbin/nats-server', '/usr/local/sbin/nats-server', '/usr/bin/nats-server');
  return candidates.find((path) => {
    try {
      accessSync(path, constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
}

/** True where Debian packages may be installed from here: apt-get, as root. */
function mayApt() {
  const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
  return isRoot && spawnSync('sh', ['-c', 'command -v apt-get'], { stdio: 'ignore' }).status === 0;
}

/** Installs Debian packages with apt-get (one update, one install). */
function aptInstall(packages, why) {
  say(`installing ${packages.join(' ')} with apt-get (${why})`);
  run('apt-get', ['update', '-qq']);
  run('apt-get', ['install', '-y', '-qq', ...packages], { env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
}

const onPath = (command) => spawnSync('sh', ['-c', `command -v ${command}`], { stdio: 'ignore' }).status === 0;

if (!findNatsServer()) {
  if (mayApt()) {
    aptInstall(['nats-server'], 'the server tally runs on');
  } else {
    say('nats-server is missing. Install it with:  sudo apt-get install -y nats-server');
    say('(or put a nats-server 2.9+ binary on PATH, or set TALLY_NATS_SERVER to its path)');
    process.exit(1);
  }
  if (!findNatsServer()) {
    say('nats-server still not found after installing it');
    process.exit(1);
  }
}
try {
  const version = execFileSync(findNatsServer(), ['--version'], { encoding: 'utf8' }).trim();
  say(`using ${version}`);
} catch {
  // a version banner is nice to have, not required
}

// 4. What the tests use beyond Node and nats-server, never tally itself: Debian's Chromium (the
// dashboard's browser tests), bzip2 and zstd (compressing the corpus the compressed-input tests
// count), iproute2 (`ip netns`, the network-partition tests), openssl (the dashboard's HTTPS
// tests make a certificate per run), primesieve and python3-gmpy2 (the reference prime counter
// and GMP: the primes and factorial tests check against them, the benchmark runs them as
// peers). Installed only when missing, and only where apt-get may run as root; otherwise said.
const CHROMIUM = process.env.TALLY_CHROMIUM || '/usr/bin/chromium';
// Debian's package is for Debian's Python (a pyenv python3 on PATH does not see it).
const hasGmpy2 = spawnSync(existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3', ['-c', 'import gmpy2'], { stdio: 'ignore' }).status === 0;
const testPackages = [
  ...(existsSync(CHROMIUM) ? [] : ['chromium']),
  ...['bzip2', 'zstd', 'openssl', 'primesieve'].filter((command) => !onPath(command)),
  ...(onPath('ip') ? [] : ['iproute2']),
  ...(hasGmpy2 ? [] : ['python3-gmpy2']),
];
if (testPackages.length > 0) {
  if (mayApt()) aptInstall(testPackages, 'for the tests');
  else say(`missing for the tests: ${testPackages.join(' ')}; install with:  sudo apt-get install -y ${testPackages.join(' ')}  (Chromium: or set TALLY_CHROMIUM)`);
}

// 5. Build the TypeScript sources into dist/.
run(process.execPath, [join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', join(root, 'tsconfig.json')]);
// ... and bundle the command and the worker process, one file each (scripts/bundle.mjs: ~0.3 s).
run(process.execPath, [join(root, 'scripts', 'bundle.mjs')]);

// 6. Compile the WebAssembly modules (wasm/) with AssemblyScript, each when its source or options
// are newer than the module (a 2 s compile for the word scanner; counting words and primes works
// without them, slower).
for (const [source, config, output] of [
  ['word-scanner.ts', 'asconfig.json', 'word-scanner.wasm'],
  ['prime-sieve.ts', 'prime-sieve.asconfig.json', 'prime-sieve.wasm'],
]) {
  const wasmOut = join(root, 'dist', 'wasm', output);
  const wasmInputs = [source, config].map((name) => join(root, 'wasm', name));
  if (!existsSync(wasmOut) || wasmInputs.some((input) => statSync(input).mtimeMs > statSync(wasmOut).mtimeMs)) {
    run(process.execPath, [join(root, 'node_modules', 'assemblyscript', 'bin', 'asc.js'), '--config', join(root, 'wasm', config)]);
  }
}
// 7. The GMP addon for the factorial's decimal digits (native/), when its source is newer than
// the build. It needs GMP's headers (Debian: libgmp-dev, installed here where apt-get may run)
// and a C compiler; without them tally works, and `tally factorial` converts with V8's BigInts.
const addonOut = join(root, 'native', 'build', 'Release', 'tally_gmp.node');
const addonInputs = ['gmp-decimal.c', 'binding.gyp'].map((name) => join(root, 'native', name));
if (!existsSync(addonOut) || addonInputs.some((input) => statSync(input).mtimeMs > statSync(addonOut).mtimeMs)) {
  const hasGmpHeader = () => spawnSync('sh', ['-c', 'echo "#include <gmp.h>" | cc -E - >/dev/null 2>&1']).status === 0;
  if (!hasGmpHeader() && mayApt()) aptInstall(['libgmp-dev'], "GMP's headers, for the factorial's addon");
  if (!hasGmpHeader()) {
    say("GMP's headers are missing (Debian: sudo apt-get install -y libgmp-dev): tally factorial will convert with V8's BigInts, several times slower");
  } else {
    // Node's own headers where this Node has them (a distribution's /usr/include/node), else
    // node-gyp downloads them.
    const prefix = join(process.execPath, '..', '..');
    const nodedir = existsSync(join(prefix, 'include', 'node', 'node_api.h')) ? [`--nodedir=${prefix}`] : [];
    const gyp = spawnSync(process.execPath, [join(root, 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'), 'rebuild', '--loglevel=warn', ...nodedir], { cwd: join(root, 'native'), stdio: ['ignore', 'ignore', 'inherit'] });
    if (gyp.status !== 0) say("building the GMP addon failed (above): tally factorial will convert with V8's BigInts, several times slower");
  }
}
say('ready');
