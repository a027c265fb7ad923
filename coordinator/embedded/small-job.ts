/**
 * Whether an embedded command line's job is small enough for the coordinator's stand-in worker
 * (stand-in.ts) to finish alone before a worker process could be ready. Such a job's worker
 * processes are held back (prestart.ts): a Node process starting on the other core takes ~120 ms
 * of CPU that the command, the server and the stand-in would otherwise have, and would never take
 * a task. Read from the raw arguments before they are parsed, as the rest of the head start is.
 *
 * Only a guess, and a cautious one: anything it cannot read (an unknown option, a folder, a glob,
 * a URL, stdin, a value it cannot parse) is not small, and a held-back supervisor forks its
 * processes anyway once a job outlasts the hold (SMALL_JOB_HOLD_MS).
 */
import { statSync } from 'node:fs';
import { parseInteger } from '../../shared/integers.js';

/** Input bytes a small count or n-gram job reads at most (the stand-in maps ~100 MB/s). */
export const SMALL_JOB_BYTES = 2 * 1024 * 1024;

/** Integers a small primes job sieves at most (~10 ms on one core). */
export const SMALL_JOB_RANGE = 20_000_000n;

/** Largest N of a small factorial job (20,000! has 77,338 digits). */
export const SMALL_JOB_FACTORIAL = 20_000n;

/** Most tasks a small job asks for with --tasks or --split (each task is a round trip). */
export const SMALL_JOB_TASKS = 64;

/**
 * How long a small job's worker processes are held back before they are forked anyway: a job
 * misjudged small, or one on a machine so loaded that it outlasts this, gets them late.
 */
export const SMALL_JOB_HOLD_MS = 500;

/**
 * The options of the job commands that take a value (`--top 5`, `--tasks=8`): the word after one
 * is its value, not an input. An option missing here leaves its value read as an input (two
 * bounds and a third word; a file that is not there), which is not small: the guess errs on the
 * safe side. tests/small-job.test.ts checks this list against the commands' own definitions.
 */
export const VALUE_OPTIONS: ReadonlySet<string> = new Set([
  '--backup-after', '--binary', '--chunk-size', '--creds', '--exclude', '--format', '--inbox-prefix',
  '--include', '--log-level', '--max-word-bytes', '--nkey', '--output', '--password', '--reducers',
  '--server', '--skip-failed', '--split', '--tasks', '--tls-ca', '--tls-cert', '--tls-key', '--token',
  '--tokenizer', '--top', '--user', '--workers',
]);

/** The words of a command line that are not options or their values, and the values of --tasks/--split. */
function readArguments(args: readonly string[]): { positionals: string[]; tasks: string[] } | null {
  const positionals: string[] = [];
  const tasks: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (arg === '--') {
      positionals.push(...args.slice(i + 1));
      break;
    }
    // A negative number is an argument, as the command line reads it (cli.ts).
    if (!arg.startsWith('-') || arg === '-' || /^-\d/.test(arg)) {
      positionals.push(arg);
      continue;
    }
    const equals = arg.indexOf('=');
    const name = equals > 0 ? arg.slice(0, equals) : arg;
    if (!name.startsWith('--')) return null; // -h, or something only the parser can read
    if (!VALUE_OPTIONS.has(name)) continue;
    const value = equals > 0 ? arg.slice(equals + 1) : args[++i];
    if (value === undefined) return null;
    if (name === '--tasks' || name === '--split') tasks.push(value);
  }
  return { positionals, tasks };
}

function integer(text: string): bigint | null {
  try {
    return parseInteger(text, 'argument');
  } catch {
    return null;
  }
}

/** Regular files of at most SMALL_JOB_BYTES in all; false for anything else (folders, globs, URLs, stdin). */
function smallFiles(paths: readonly string[]): boolean {
  if (paths.length === 0) return false;
  let bytes = 0;
  for (const path of paths) {
    try {
      const stat = statSync(path);
      if (!stat.isFile()) return false;
      bytes += stat.size;
    } catch {
      return false;
    }
    if (bytes > SMALL_JOB_BYTES) return false;
  }
  return true;
}

/**
 * True when the job of `tally COMMAND ARGS…` (argv without node and the script) looks small:
 * `sum` with at most SMALL_JOB_TASKS tasks, `primes` over at most SMALL_JOB_RANGE integers,
 * `factorial` of numbers up to SMALL_JOB_FACTORIAL, `count` and `ngrams` of regular files of at
 * most SMALL_JOB_BYTES in all. Anything else, `resume` among them, is not.
 */
export function isSmallJob(args: readonly string[]): boolean {
  const [command, ...rest] = args;
  const read = readArguments(rest);
  if (!read) return false;
  const { positionals, tasks } = read;
  if (!tasks.every((text) => /^\d{1,9}$/.test(text) && Number(text) <= SMALL_JOB_TASKS)) return false;
  switch (command) {
    case 'sum':
      return positionals.length === 2 && positionals.every((text) => integer(text) !== null);
    case 'primes': {
      if (positionals.length !== 2) return false;
      const [from, to] = positionals.map(integer);
      return from !== null && from !== undefined && to !== null && to !== undefined && to - from < SMALL_JOB_RANGE;
    }
    case 'factorial':
      return positionals.length >= 1 && positionals.length <= 8 && positionals.every((text) => {
        const n = integer(text);
        return n !== null && n >= 0n && n <= SMALL_JOB_FACTORIAL;
      });
    case 'count':
      return smallFiles(positionals);
    case 'ngrams':
      return positionals.length >= 2 && smallFiles(positionals.slice(1));
    default:
      return false;
  }
}
