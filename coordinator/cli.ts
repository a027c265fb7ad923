/**
 * The `tally` command line. Each subcommand lives in coordinator/commands/; this file wires
 * them together and turns errors into one line on stderr and the documented exit code.
 */
import { Command, CommanderError } from './commander.js';
import { readFileSync } from 'node:fs';
import { ExitCode, TallyError, describeError, fileErrorReason } from '../shared/errors.js';
import { parseInteger } from '../shared/integers.js';
import { checkSettings } from '../shared/settings.js';
import { KIND_NAMES } from '../shared/kinds/index.js';
import { loadKindCli } from './kind-cli.js';
import { withBackupOptions, withDashboardOption, withSkipFailedOption } from './commands/common.js';

function packageVersion(): string {
  try {
    const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
    return pkg.version;
  } catch {
    return 'unknown';
  }
}

/** The subcommands other than the job kinds', each module loaded only when the program has them. */
async function otherCommands(): Promise<Command[]> {
  const [result, resume, jobs, workers, worker, dashboard, put, objects] = await Promise.all([
    import('./commands/result.js'),
    import('./commands/resume.js'),
    import('./commands/jobs.js'),
    import('./commands/workers.js'),
    import('./commands/worker.js'),
    import('./commands/dashboard.js'),
    import('./commands/put.js'),
    import('./commands/objects.js'),
  ]);
  return [
    result.resultCommand(),
    withBackupOptions(withDashboardOption(resume.resumeCommand())),
    jobs.jobsCommand(),
    workers.workersCommand(),
    worker.workerCommand(),
    dashboard.dashboardCommand(),
    put.putCommand(),
    objects.lsCommand(),
    objects.rmCommand(),
  ];
}

/**
 * The program with every subcommand: one per job kind (shared/kinds/index.ts), then the rest.
 * With `kind` (a job kind's name, the command line's first word) it has only that kind's
 * command: a job then parses its command line without loading the modules of every other
 * command (~15 ms of CPU on the embedded start-up, the CLI process being its longest path).
 */
export async function buildProgram(kind?: string): Promise<Command> {
  const program = new Command('tally')
    .description('exact distributed counting on NATS JetStream: words, range sums, primes, factorials')
    .version(packageVersion());
  const names = kind !== undefined && KIND_NAMES.includes(kind) ? [kind] : KIND_NAMES;
  const kinds = await Promise.all(names.map((name) => loadKindCli(name)));
  const others = names === KIND_NAMES ? await otherCommands() : [];
  for (const command of [...kinds.map((kind) => withSkipFailedOption(withBackupOptions(withDashboardOption(kind.command())))), ...others]) {
    program.addCommand(command);
  }
  // Commander's own usage errors exit 2 like ours; help and version exit 0.
  program.exitOverride();
  for (const command of program.commands) command.exitOverride();
  return program;
}

/**
 * Commander reads "-1_000" or "-3E12" as an unknown option; rewrite negative integers in any
 * accepted spelling to plain decimals (e.g. "-1000") first, which it takes as arguments.
 */
function normalizeNegativeNumbers(argv: string[]): string[] {
  return argv.map((arg, i) => {
    if (i < 2 || !/^-\d[\d_.]*([eE][+-]?\d+)?$/.test(arg)) return arg;
    try {
      return parseInteger(arg, 'argument').toString();
    } catch {
      return arg;
    }
  });
}

/**
 * A failed write to stdout (a full disk, a reader that went away: `tally … | head`) is noted
 * and reported once the command has shut down in order, instead of crashing it mid-way and
 * leaving its embedded server and workers behind.
 */
async function stdoutFailure(failure: { error?: NodeJS.ErrnoException }): Promise<number | undefined> {
  // Write errors are emitted on a later tick.
  await new Promise((resolve) => setImmediate(resolve));
  if (!failure.error) return undefined;
  // The reader closed the pipe on purpose: nothing to say, but the output is incomplete.
  if (failure.error.code !== 'EPIPE') process.stderr.write(`tally: cannot write to stdout: ${fileErrorReason(failure.error) ?? failure.error.code ?? failure.error.message}\n`);
  return ExitCode.failed;
}

/** Runs the CLI; resolves to the exit code. */
export async function main(argv: string[]): Promise<number> {
  const failure: { error?: NodeJS.ErrnoException } = {};
  process.stdout.on('error', (error: NodeJS.ErrnoException) => (failure.error ??= error));
  try {
    // entry.ts checks first, before it starts anything; this is for other callers.
    const badSetting = checkSettings();
    if (badSetting) throw badSetting;
    // The first word that names a job kind is that command (commander reads no option before it).
    const program = await buildProgram(argv[2]);
    await program.parseAsync(normalizeNegativeNumbers(argv));
    return (await stdoutFailure(failure)) ?? ExitCode.ok;
  } catch (error) {
    if (error instanceof CommanderError) {
      if (error.code === 'commander.helpDisplayed' || error.code === 'commander.version') return ExitCode.ok;
      // Help asked for is fine; help shown because no command was given is a usage error.
      if (error.code === 'commander.help') return error.exitCode === 0 ? ExitCode.ok : ExitCode.usage;
      return ExitCode.usage;
    }
    if (error instanceof TallyError) {
      process.stderr.write(`tally: ${error.message}\n`);
      if (process.env.LOG_LEVEL === 'debug' && error.stack) process.stderr.write(`${error.stack}\n`);
      return error.exitCode;
    }
    process.stderr.write(`tally: ${describeError(error)}\n`);
    if (process.env.LOG_LEVEL === 'debug' && error instanceof Error && error.stack) process.stderr.write(`${error.stack}\n`);
    return ExitCode.failed;
  }
}
