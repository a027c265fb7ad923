/**
 * The command-line side of a job kind: coordinator/kinds/NAME.ts exports `cli`, found by the
 * kind's name (the registry is shared/kinds/index.ts, one line per kind). cli.ts adds every
 * kind's command; `tally result` and `tally resume` print a stored result through it.
 */
import type { Command } from 'commander';
import { OptionError, UsageError } from '../shared/errors.js';
import type { Json } from '../shared/json.js';
import { KIND_NAMES } from '../shared/kinds/index.js';
import type { JobStore } from './job-store.js';
import { STDOUT_NAME, terminalSafe, type Format } from './output.js';
import { skippedNote } from './skipped-tasks.js';

/** How a result is to be printed. */
export interface ResultView {
  format: Format;
  /** count-like kinds: rows to show, 0 = all. */
  top: number;
}

/** What the command line knows about a job kind. */
export interface KindCli {
  /** The kind's subcommand: arguments, options and help; its action runs a job of the kind. */
  command(): Command;
  /** The formats its results print in; the first is the default. */
  readonly formats: readonly Format[];
  /**
   * The kind's option fields as the command line spells them (`{ chunkSize: '--chunk-size' }`),
   * so that the kind's OptionErrors name what the user typed.
   */
  readonly flags: Readonly<Record<string, string>>;
  /**
   * Prints a result of the kind, as its job printed it: to stdout, or to `output` atomically
   * (a failed write names `job`). May read parts of the result from `store`.
   */
  print(result: Json, view: ResultView, store: JobStore, output?: string, job?: string): Promise<void> | void;
}

const loaded = new Map<string, Promise<KindCli>>();

/** The command-line side of kind `name` (see the module comment); loaded once. */
export function loadKindCli(name: string): Promise<KindCli> {
  let cli = loaded.get(name);
  if (!cli) {
    if (!KIND_NAMES.includes(name)) return Promise.reject(new UsageError(`unknown job kind '${name}'`));
    cli = (import(`./kinds/${name}.js`) as Promise<{ cli?: KindCli }>).then((module) => {
      if (!module.cli) throw new Error(`coordinator/kinds/${name}.js exports no cli`);
      return module.cli;
    });
    loaded.set(name, cli);
  }
  return cli;
}

/**
 * A kind's OptionError spoken in the command line's terms: `chunkSize: …` becomes
 * `--chunk-size: …`; any other error is returned as it is.
 */
export function inCommandLineTerms(error: unknown, flags: Readonly<Record<string, string>>): unknown {
  if (!(error instanceof OptionError) || !Object.hasOwn(flags, error.field)) return error;
  return new UsageError(`${flags[error.field]}: ${error.reason}`, { cause: error });
}

/** Throws unless `kind`'s results print in `format`. */
export function checkFormat(kind: string, cli: KindCli, format: Format): void {
  if (!cli.formats.includes(format)) throw new UsageError(`--format ${format} does not apply to ${kind} results; use ${cli.formats.join(', ')}`);
}

/**
 * Prints a stored result as the job of its kind printed it (`tally result`, `tally resume`).
 * @param job named by a failed write to `output`
 */
export async function printResult(kind: string, result: Json, view: ResultView, store: JobStore, output?: string, job?: string): Promise<void> {
  const cli = await loadKindCli(kind);
  checkFormat(kind, cli, view.format);
  await cli.print(result, view, store, output, job);
  noteSkipped(result, { format: view.format, output });
}

/**
 * Says which inputs a printed result leaves out (`--skip-failed`), in one line: after a table
 * on stdout, whose totals it qualifies; on stderr when the result is data (json, tsv, csv) or
 * went to a file, which the line must not corrupt.
 */
export function noteSkipped(result: Json, view: { format?: Format; output?: string }): void {
  const note = skippedNote(result);
  if (note === null) return;
  const toStdout = (view.format ?? 'table') === 'table' && (view.output === undefined || view.output === STDOUT_NAME);
  if (toStdout) process.stdout.write(`${terminalSafe(note)}\n`);
  else process.stderr.write(`tally: ${terminalSafe(note)}\n`);
}
