/**
 * Keeps docker-compose.yml and the Dockerfile honest without a Docker engine: the commands the
 * containers run must be ones the CLI accepts, and the nats service must run the same config
 * file as the tests. These drift silently otherwise: renaming a CLI option breaks
 * `docker compose up` and nothing else notices.
 */
import test from 'ava';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { isAbsolute, posix, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Command } from 'commander';
import { parse } from 'yaml';
import { buildProgram } from '../coordinator/cli.js';

// This file runs as dist/tests/compose.test.js; the repository root is two levels up.
const repoRoot = fileURLToPath(new URL('../../', import.meta.url));
const fromRoot = (...parts: string[]) => resolve(repoRoot, ...parts);

// ---------------------------------------------------------------------------------------------
// The compose file, as much of its model as these checks need.

interface PortMapping {
  target?: number | string;
  published?: number | string;
}
interface VolumeMapping {
  type?: string;
  source?: string;
  target?: string;
  read_only?: boolean;
}
interface ComposeService {
  image?: string;
  build?: string | { context?: string; dockerfile?: string };
  command?: string | string[];
  container_name?: string;
  ports?: Array<string | number | PortMapping>;
  volumes?: Array<string | VolumeMapping>;
}
interface ComposeFile {
  services: Record<string, ComposeService>;
  volumes?: Record<string, unknown>;
}

/**
 * Compose interpolates ${VAR}, ${VAR:-default}, ${VAR-default} and $VAR in every value. The
 * checks run with an empty environment, so defaults apply and the result does not depend on
 * whoever runs the tests; a ${VAR:?message} without a default is an error, like in compose.
 */
function interpolate(value: unknown): unknown {
  if (typeof value === 'string') {
    return value.replace(/\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}|\$([A-Za-z_][A-Za-z0-9_]*)/g, (match, name?: string, op?: string, arg?: string) => {
      if (match === '$$') return '$';
      if (op === ':?' || op === '?') throw new Error(`${name} must be set: ${arg}`);
      return op ? (arg ?? '') : '';
    });
  }
  if (Array.isArray(value)) return value.map(interpolate);
  if (value !== null && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, interpolate(v)]));
  }
  return value;
}

function loadCompose(): ComposeFile {
  const doc = interpolate(parse(readFileSync(fromRoot('docker-compose.yml'), 'utf8'))) as ComposeFile;
  if (!doc || typeof doc.services !== 'object') throw new Error('docker-compose.yml has no services');
  return doc;
}

/** A service's command as a list; a string command is rejected so every element is checkable. */
function commandOf(name: string, service: ComposeService): string[] {
  if (!Array.isArray(service.command)) {
    throw new Error(`service ${name}: command must be a YAML list (exec form), got ${JSON.stringify(service.command)}`);
  }
  return service.command.map(String);
}

/** Bind mounts and named volumes in one shape; short syntax is SOURCE:TARGET[:MODE]. */
function volumesOf(service: ComposeService): Array<{ source?: string; target: string; readOnly: boolean; bind: boolean }> {
  return (service.volumes ?? []).map((volume) => {
    if (typeof volume === 'string') {
      const parts = volume.split(':');
      if (parts.length === 1) return { target: parts[0]!, readOnly: false, bind: false };
      const [source, target, mode = ''] = parts as [string, string, string?];
      const bind = source.startsWith('.') || source.startsWith('/') || source.startsWith('~');
      return { source, target, readOnly: mode.split(',').includes('ro'), bind };
    }
    return { source: volume.source, target: volume.target ?? '', readOnly: volume.read_only === true, bind: volume.type === 'bind' };
  });
}

/** Services built from this repository's Dockerfile, or run from the image such a build tags. */
function tallyServices(compose: ComposeFile): string[] {
  const builds = Object.entries(compose.services).filter(([, service]) => {
    if (service.build === undefined) return false;
    const context = typeof service.build === 'string' ? service.build : (service.build.context ?? '.');
    const dockerfile = typeof service.build === 'string' ? 'Dockerfile' : (service.build.dockerfile ?? 'Dockerfile');
    return resolve(repoRoot, context, dockerfile) === fromRoot('Dockerfile');
  });
  const images = new Set(builds.map(([, service]) => service.image).filter((image): image is string => image !== undefined));
  return Object.entries(compose.services)
    .filter(([name, service]) => builds.some(([built]) => built === name) || (service.image !== undefined && images.has(service.image)))
    .map(([name]) => name);
}

// ---------------------------------------------------------------------------------------------
// The CLI side: does `tally ARGS...` name a subcommand and only options it declares?

interface ArgsCheck {
  errors: string[];
  subcommand?: Command;
  positional: string[];
  values: Map<string, string>;
}

/**
 * Walks ARGS the way commander would: the first is the subcommand; `--flag value` and
 * `--flag=value` for options that take a value, bare `--flag` for the others, everything else
 * positional. Reports what commander would reject, without running the command.
 */
function checkTallyArgs(program: Command, args: readonly string[]): ArgsCheck {
  const result: ArgsCheck = { errors: [], positional: [], values: new Map() };
  const [name, ...rest] = args;
  const subcommand = program.commands.find((c) => c.name() === name || c.aliases().includes(name ?? ''));
  if (!subcommand) {
    result.errors.push(`'${name}' is not a tally subcommand (have: ${program.commands.map((c) => c.name()).join(', ')})`);
    return result;
  }
  result.subcommand = subcommand;
  for (let i = 0; i < rest.length; i++) {
    const arg = rest[i]!;
    if (arg === '--') {
      result.positional.push(...rest.slice(i + 1));
      break;
    }
    if (!arg.startsWith('-') || arg === '-') {
      result.positional.push(arg);
      continue;
    }
    const eq = arg.startsWith('--') ? arg.indexOf('=') : -1;
    const flag = eq === -1 ? arg : arg.slice(0, eq);
    const option = subcommand.options.find((o) => o.long === flag || o.short === flag);
    if (!option) {
      const known = subcommand.options.map((o) => o.long ?? o.short).join(' ');
      result.errors.push(`${name}: unknown option ${flag} (declared: ${known})`);
      continue;
    }
    const takesValue = option.required || option.optional;
    let value: string | undefined;
    if (eq !== -1) {
      if (!takesValue) result.errors.push(`${name}: ${flag} takes no value`);
      value = arg.slice(eq + 1);
    } else if (option.required) {
      value = rest[i + 1];
      if (value === undefined) result.errors.push(`${name}: ${flag} needs a value`);
      else i++;
    } else if (option.optional && rest[i + 1] !== undefined && !rest[i + 1]!.startsWith('-')) {
      value = rest[++i];
    }
    // A variadic option keeps taking values until the next option.
    if (option.variadic) while (rest[i + 1] !== undefined && !rest[i + 1]!.startsWith('-')) i++;
    if (value !== undefined && option.argChoices && !option.argChoices.includes(value)) {
      result.errors.push(`${name}: ${flag} ${value} is not one of ${option.argChoices.join(', ')}`);
    }
    result.values.set(option.long ?? flag, value ?? 'true');
  }
  const declared = subcommand.registeredArguments;
  const acceptsMore = declared.at(-1)?.variadic === true;
  if (!acceptsMore && result.positional.length > declared.length) {
    result.errors.push(`${name}: too many arguments (${result.positional.join(' ')})`);
  }
  const required = declared.filter((a) => a.required).length;
  if (result.positional.length < required) result.errors.push(`${name}: missing required arguments`);
  return result;
}

// ---------------------------------------------------------------------------------------------

test('the args checker rejects what commander would reject', async (t) => {
  // Guards the guard: if these pass, the compose checks below could pass vacuously.
  const program = await buildProgram();
  t.deepEqual(checkTallyArgs(program, ['worker', '--server', 'nats://x:4222']).errors, []);
  t.regex(checkTallyArgs(program, ['wroker', '--server', 'nats://x:4222']).errors.join(), /not a tally subcommand/);
  t.regex(checkTallyArgs(program, ['worker', '--servr', 'nats://x:4222']).errors.join(), /unknown option --servr/);
  t.regex(checkTallyArgs(program, ['worker', '--server']).errors.join(), /needs a value/);
  t.regex(checkTallyArgs(program, ['count', '/input', '--format', 'yaml']).errors.join(), /not one of/);
  // --server consumes its value, so the URL is not taken for a path.
  t.deepEqual(checkTallyArgs(program, ['count', '--server', 'nats://x:4222', '/input']).positional, ['/input']);
});

test('every tally container runs a real subcommand with declared options only', async (t) => {
  const compose = loadCompose();
  const program = await buildProgram();
  const services = tallyServices(compose);
  // The rest of this file is about these two; make sure they were recognized as tally services.
  t.true(services.includes('worker'), `tally services found: ${services.join(', ')}`);
  t.true(services.includes('coordinator'), `tally services found: ${services.join(', ')}`);
  for (const name of services) {
    const service = compose.services[name]!;
    // Without a command the image's CMD (--help) runs, and a restarting worker would loop.
    const check = checkTallyArgs(program, commandOf(name, service));
    t.deepEqual(check.errors, [], `service ${name}: ${JSON.stringify(service.command)}`);
  }
});

test('tally containers reach the nats service on the port it listens on', async (t) => {
  const compose = loadCompose();
  const program = await buildProgram();
  const nats = commandOf('nats', compose.services.nats!);
  const portFlag = nats.findIndex((a) => a === '-p' || a === '--port');
  // nats-server listens on 4222 unless told otherwise.
  const port = portFlag === -1 ? '4222' : nats[portFlag + 1];
  for (const name of tallyServices(compose)) {
    const check = checkTallyArgs(program, commandOf(name, compose.services[name]!));
    const server = check.values.get('--server');
    t.truthy(server, `service ${name} passes --server (in a container there is no embedded server to fall back on)`);
    for (const url of server!.split(',')) {
      const parsed = new URL(url.trim());
      t.is(parsed.protocol, 'nats:', `service ${name}: ${url}`);
      t.true(parsed.hostname in compose.services, `service ${name}: ${parsed.hostname} is not a compose service`);
      t.is(parsed.port || '4222', port, `service ${name}: ${url} vs nats-server port ${port}`);
    }
  }
});

test('the coordinator counts paths that are mounted into its container', async (t) => {
  const compose = loadCompose();
  const service = compose.services.coordinator!;
  const check = checkTallyArgs(await buildProgram(), commandOf('coordinator', service));
  t.is(check.subcommand?.name(), 'count');
  t.true(check.positional.length > 0);
  const targets = volumesOf(service).map((v) => v.target);
  for (const path of check.positional) {
    const mounted = targets.some((target) => path === target || path.startsWith(target.endsWith('/') ? target : `${target}/`));
    t.true(mounted, `${path} is not under any mount target (${targets.join(', ')})`);
  }
  // Counting must never write to the input.
  t.true(volumesOf(service).every((v) => !v.bind || v.readOnly), 'input bind mounts are read-only');
});

test('the nats service runs the repository config file with JetStream on', (t) => {
  const compose = loadCompose();
  const service = compose.services.nats!;
  const volumes = volumesOf(service);
  const config = fromRoot('config', 'nats', 'tally.conf');
  // Exactly the file the tests and the embedded mode use, not a copy that can drift.
  const configMounts = volumes.filter((v) => v.bind && v.source !== undefined && resolve(repoRoot, v.source) === config);
  t.is(configMounts.length, 1, `mounts: ${JSON.stringify(service.volumes)}`);
  const mount = configMounts[0]!;
  t.true(existsSync(config) && statSync(config).isFile(), `${config} exists`);
  t.true(mount.readOnly, 'config is mounted read-only');
  t.true(posix.isAbsolute(mount.target));

  const command = commandOf('nats', service);
  const configFlag = command.findIndex((a) => a === '-c' || a === '--config');
  t.not(configFlag, -1, `nats command uses -c: ${command.join(' ')}`);
  t.is(command[configFlag + 1], mount.target, 'nats-server reads the mounted file');
  t.true(command.includes('-js') || command.includes('--jetstream'), 'JetStream is enabled');

  // The JetStream store lives on a volume, so jobs and results outlive the container.
  const storeFlag = command.findIndex((a) => a === '-sd' || a === '--store_dir');
  t.not(storeFlag, -1, 'nats command sets the store directory');
  const store = volumes.find((v) => v.target === command[storeFlag + 1]);
  t.truthy(store, `store directory ${command[storeFlag + 1]} is a mount target`);
  if (store && !store.bind) t.true(store.source !== undefined && store.source in (compose.volumes ?? {}), 'named store volume is declared');
});

test('bind-mounted sources exist in the repository', (t) => {
  // With an empty environment ${INPUT:-./samples} is ./samples: the default must be there.
  const compose = loadCompose();
  for (const [name, service] of Object.entries(compose.services)) {
    for (const volume of volumesOf(service)) {
      if (!volume.bind || volume.source === undefined || !volume.source.startsWith('.')) continue;
      t.true(existsSync(resolve(repoRoot, volume.source)), `service ${name}: ${volume.source} exists`);
    }
  }
});

test('the worker service can be scaled', (t) => {
  // `docker compose up --scale worker=N` fails on a fixed container name or host port.
  const worker = loadCompose().services.worker!;
  t.is(worker.container_name, undefined);
  for (const port of worker.ports ?? []) {
    if (typeof port === 'object') {
      t.is(port.published, undefined, `fixed host port ${JSON.stringify(port)}`);
    } else {
      // HOST:CONTAINER or IP:HOST:CONTAINER fixes a host port; CONTAINER or IP::CONTAINER does not.
      const parts = String(port).split(':');
      t.true(parts.length === 1 || parts.at(-2) === '', `fixed host port ${port}`);
    }
  }
});

test("the Dockerfile's entrypoint runs bin/tally.js", (t) => {
  const dockerfile = readFileSync(fromRoot('Dockerfile'), 'utf8').replace(/\\\r?\n/g, ' ');
  const instructions = dockerfile.split(/\r?\n/).map((line) => line.trim());
  // Only the final stage's ENTRYPOINT counts; earlier stages are build stages.
  const lastFrom = instructions.map((line) => /^FROM\s/i.test(line)).lastIndexOf(true);
  const entrypoints = instructions.slice(lastFrom).filter((line) => /^ENTRYPOINT\s/i.test(line));
  t.is(entrypoints.length, 1, 'one ENTRYPOINT in the final stage');
  const raw = entrypoints[0]!.replace(/^ENTRYPOINT\s+/i, '');
  // Exec form (a JSON array) so node is the process that gets SIGTERM, not /bin/sh, and the
  // compose `command` is appended as arguments.
  let entrypoint: unknown;
  t.notThrows(() => {
    entrypoint = JSON.parse(raw);
  }, `exec form: ${raw}`);
  t.true(Array.isArray(entrypoint) && entrypoint.every((part) => typeof part === 'string'));
  const [runtime, script] = entrypoint as string[];
  t.is(runtime, 'node');
  t.truthy(script && posix.normalize(script).endsWith('/bin/tally.js') && isAbsolute(script), `script: ${script}`);
  t.true(existsSync(fromRoot('bin', 'tally.js')));
});

test('.dockerignore keeps host builds out of the image', (t) => {
  // The image runs its own `npm ci` and tsc; a host node_modules could carry binaries for
  // another platform.
  const ignored = readFileSync(fromRoot('.dockerignore'), 'utf8')
    .split(/\r?\n/)
    .map((line) => line.trim().replace(/^\/|\/$/g, ''));
  for (const entry of ['node_modules', 'dist']) t.true(ignored.includes(entry), `${entry} is ignored`);
});
