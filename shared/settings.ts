/**
 * Every TALLY_* environment variable tally reads, in one table: its default, what it tunes (the
 * README's table says the same), and how its value is checked. A bad value is a UsageError that
 * names the variable (`TALLY_ACK_WAIT_MS: must be an integer of at least 1000, got 'soon'`,
 * exit 2); the CLI checks them all before it starts anything (see `checkSettings`).
 *
 * A module reads a setting when it needs it, as before: those that fix a constant at load
 * (`TALLY_ACK_WAIT_MS`, `TALLY_SERVER_LOST_MS`, `TALLY_INLINE_PARTIAL_LIMIT`, `TALLY_TEST_HOOKS`)
 * once per process, the others (`TALLY_DATA_DIR`, `TALLY_NATS_SERVER`, …) on each use, since
 * tests change them within one process. A worker process gets its settings from its
 * supervisor in TALLY_WORKER_SETTINGS and TALLY_WORKER_SECRETS, and inherits the rest.
 *
 * Loaded first thing by the command (coordinator/entry.ts) and worker processes: Node built-ins only.
 */
import { homedir } from 'node:os';
import { join } from 'node:path';
import { UsageError } from './errors.js';

type Env = NodeJS.ProcessEnv;

interface Spec<T> {
  /** The default, in words, for the README's table. */
  default: string;
  /** What the variable tunes, for the README's table. */
  tunes: string;
  /** The value when the variable is unset or empty. */
  fallback: (env: Env) => T;
  /** The value of a non-empty variable; throws a BadValue saying why when it is bad. */
  parse: (raw: string) => T;
  /** Its value never appears in an error message. */
  secret?: boolean;
  /** Who sets it: users, the tests, or tally itself for its worker processes. */
  setBy: 'user' | 'tests' | 'tally';
}

/** A bad value: the reason, said after the variable's name. */
class BadValue extends Error {}

function integer(min: number, max = Number.MAX_SAFE_INTEGER, unit?: string): (raw: string) => number {
  const what = unit ? `a whole number of ${unit}` : 'an integer';
  const range = max === Number.MAX_SAFE_INTEGER ? `, at least ${min}` : ` from ${min} to ${max}`;
  return (raw) => {
    const value = Number(raw);
    if (Number.isInteger(value) && value >= min && value <= max) return value;
    throw new BadValue(`must be ${what}${range}`);
  };
}

/** A parser of one of `values`, as written. */
function oneOf<T extends string>(...values: T[]): (raw: string) => T {
  return (raw) => {
    if ((values as string[]).includes(raw)) return raw as T;
    throw new BadValue(`must be ${values.slice(0, -1).join(', ')} or ${values[values.length - 1]}`);
  };
}

function jsonObject(raw: string): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(raw);
  } catch {
    throw new BadValue('must be a JSON object (not valid JSON)');
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new BadValue('must be a JSON object');
  return value as Record<string, unknown>;
}

/** Partials above this size go through the Object Store unless the server allows more (see shared/nats/partials.ts). */
export const DEFAULT_INLINE_PARTIAL_LIMIT = 512 * 1024;

const spec = <T>(s: Spec<T>): Spec<T> => s;

/** The table: name → default, what it tunes, how it is read. */
export const SETTINGS = {
  TALLY_ACK_WAIT_MS: spec({
    default: '30000',
    tunes: 'Ack wait of the shared worker consumer: how soon a task held by a worker that died goes to another (the fault tests use 2000-3000). Fixed when the consumer is created.',
    fallback: () => 30_000,
    parse: integer(1000, undefined, 'milliseconds'),
    setBy: 'user',
  }),
  TALLY_CODE_CACHE: spec<string | null>({
    default: '`$XDG_CACHE_HOME/tally`, else `~/.cache/tally`',
    tunes: "Directory of the V8 code cache of tally's bundles and the packages they load (the NATS client, commander): the compiled code of a command's last run (a file per command, one for worker processes), for a faster start-up; `off` (or `0`, `false`, `no`) turns it off.",
    fallback: (env) => join(env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'tally'),
    parse: (raw) => (/^(0|off|false|no)$/i.test(raw) ? null : raw),
    setBy: 'user',
  }),
  TALLY_CHROMIUM: spec({
    default: '/usr/bin/chromium',
    tunes: "The Chromium the dashboard tests drive (puppeteer-core); `npm run setup` installs Debian's when it is missing.",
    fallback: () => '/usr/bin/chromium',
    parse: (raw) => raw,
    setBy: 'tests',
  }),
  TALLY_DASHBOARD_TOKEN: spec<string | undefined>({
    default: 'none (made and printed once when --host is not loopback)',
    tunes: 'Access token of `tally dashboard` (as `--access-token`; the environment keeps it out of `ps`).',
    fallback: () => undefined,
    parse: (raw) => raw,
    secret: true,
    setBy: 'user',
  }),
  TALLY_DATA_DIR: spec({
    default: '`$XDG_DATA_HOME/tally`, else `~/.local/share/tally`',
    tunes: "Data directory of the embedded server: its JetStream store (jobs, results), lock and address.",
    fallback: (env) => join(env.XDG_DATA_HOME || join(homedir(), '.local', 'share'), 'tally'),
    parse: (raw) => raw,
    setBy: 'user',
  }),
  TALLY_DECIMAL: spec<'auto' | 'gmp' | 'js'>({
    default: 'auto',
    tunes: "How `tally factorial` writes a large N! in decimal: `gmp` (the native GMP addon `npm run setup` builds where libgmp-dev is), `js` (V8's BigInts in two threads), or `auto` (gmp when it is built, else js). The same digits either way.",
    fallback: () => 'auto',
    parse: oneOf('auto', 'gmp', 'js'),
    setBy: 'user',
  }),
  TALLY_INLINE_PARTIAL_LIMIT: spec<number | undefined>({
    default: "524288 (512 KiB), raised up to 4 MiB where the server's max_payload allows",
    tunes: 'Largest partial result (bytes) a worker sends inline; larger ones go through the Object Store. Lowers only (the tests use 0).',
    fallback: () => undefined,
    parse: integer(0, DEFAULT_INLINE_PARTIAL_LIMIT - 1, 'bytes'),
    setBy: 'tests',
  }),
  TALLY_NATS_SERVER: spec<string | undefined>({
    default: '`nats-server` on PATH, else /usr/sbin, /usr/local/sbin, /usr/bin',
    tunes: 'The nats-server binary the embedded default starts (tried first).',
    fallback: () => undefined,
    parse: (raw) => raw,
    setBy: 'user',
  }),
  TALLY_REDUCE_ON_COORDINATOR: spec({
    default: '0',
    tunes: "`1`: a count's words are all folded on the coordinator instead of in reduce tasks on the workers (the benchmark's A/B).",
    fallback: () => false,
    parse: (raw) => {
      if (raw === '0' || raw === '1') return raw === '1';
      throw new BadValue('must be 0 or 1');
    },
    setBy: 'user',
  }),
  TALLY_REPLICAS: spec<number | undefined>({
    default: '3 on a cluster of 3 or more servers, else 1',
    tunes: "Replicas of the streams and buckets tally creates (a cluster's first start before all its servers are up).",
    fallback: () => undefined,
    parse: integer(1, 5),
    setBy: 'user',
  }),
  TALLY_SCANNER: spec<'auto' | 'wasm' | 'js'>({
    default: 'auto',
    tunes: "Which scanner counts words with the unicode tokenizer: `wasm` (WebAssembly, built by `npm run build`), `js`, or `auto` (wasm when it is built, else js). The two write the same partial lines.",
    fallback: () => 'auto',
    parse: oneOf('auto', 'wasm', 'js'),
    setBy: 'user',
  }),
  TALLY_SIEVE: spec<'auto' | 'wasm' | 'js'>({
    default: 'auto',
    tunes: "Which loop crosses off multiples in `tally primes`' sieve, in the process that sieves (a worker): `wasm` (WebAssembly, built by `npm run build`), `js`, or `auto` (wasm when it is built, else js). The same counts either way.",
    fallback: () => 'auto',
    parse: oneOf('auto', 'wasm', 'js'),
    setBy: 'user',
  }),
  TALLY_SERVER_LOST_MS: spec({
    default: '60000',
    tunes: 'How long a running job waits for a server it lost before it gives up (the record stays `running`, for `tally resume`).',
    fallback: () => 60_000,
    parse: integer(1000, undefined, 'milliseconds'),
    setBy: 'user',
  }),
  TALLY_URL_TIMEOUT_MS: spec({
    default: '30000',
    tunes: 'How long a server given as a URL input may take to answer, and to send the next bytes of its body.',
    fallback: () => 30_000,
    parse: integer(1, undefined, 'milliseconds'),
    setBy: 'user',
  }),
  TALLY_TEST_HOOKS: spec<Record<string, unknown>>({
    default: 'none',
    tunes: "Fault injection in worker processes, for the reliability tests (see worker/test-hooks.ts): a JSON object.",
    fallback: () => ({}),
    parse: jsonObject,
    setBy: 'tests',
  }),
  TALLY_WORKER_SETTINGS: spec<Record<string, unknown> | undefined>({
    default: 'unset: the process asks its supervisor',
    tunes: "A worker process's settings (connection without secrets, log level, index), JSON, set by its supervisor.",
    fallback: () => undefined,
    parse: jsonObject,
    setBy: 'tally',
  }),
  TALLY_WORKER_SECRETS: spec<Record<string, unknown>>({
    default: 'none',
    tunes: "A worker process's password or token, JSON, set by its supervisor apart from its settings; removed from the environment once read.",
    fallback: () => ({}),
    parse: jsonObject,
    secret: true,
    setBy: 'tally',
  }),
} as const;

export type SettingName = keyof typeof SETTINGS;
export type SettingValue<N extends SettingName> = (typeof SETTINGS)[N] extends Spec<infer T> ? T : never;
export type Settings = { [N in SettingName]: SettingValue<N> };

export const SETTING_NAMES = Object.keys(SETTINGS) as SettingName[];

/** The value of one setting in `env`: its default when unset or empty, a UsageError naming it when bad. */
export function setting<N extends SettingName>(name: N, env: Env = process.env): SettingValue<N> {
  const s = SETTINGS[name] as unknown as Spec<SettingValue<N>>;
  const raw = env[name];
  if (raw === undefined || raw === '') return s.fallback(env);
  try {
    return s.parse(raw);
  } catch (error) {
    if (!(error instanceof BadValue)) throw error;
    const shown = s.secret ? '' : `, got '${raw.length > 60 ? `${raw.slice(0, 60)}…` : raw}'`;
    throw new UsageError(`${name}: ${error.message}${shown}`);
  }
}

/** Every setting of `env`, resolved; the first bad one throws. */
export function settings(env: Env = process.env): Settings {
  const out: Partial<Record<SettingName, unknown>> = {};
  for (const name of SETTING_NAMES) out[name] = setting(name, env);
  return out as Settings;
}

/**
 * The first bad setting of `env` as a UsageError, or null when all are good. The CLI asks
 * before it loads anything that reads one; those tally sets for its worker processes are
 * checked by the processes they are written for.
 */
export function checkSettings(env: Env = process.env): UsageError | null {
  for (const name of SETTING_NAMES) {
    if (SETTINGS[name].setBy === 'tally') continue;
    try {
      setting(name, env);
    } catch (error) {
      if (error instanceof UsageError) return error;
      throw error;
    }
  }
  return null;
}
