/**
 * Typed errors that carry what a user needs to act on them, and the exit code the CLI
 * contract assigns to each: 1 for a failed job or an unreachable server, 2 for bad usage or
 * bad input, 130 for an interrupt.
 */
export const ExitCode = {
  ok: 0,
  failed: 1,
  usage: 2,
  interrupted: 130,
} as const;

export type ExitCodeValue = (typeof ExitCode)[keyof typeof ExitCode];

/** Base class: every error tally raises on purpose. `message` is one line, fit for a user. */
export class TallyError extends Error {
  readonly exitCode: ExitCodeValue;
  constructor(message: string, exitCode: ExitCodeValue, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.exitCode = exitCode;
  }
}

/** A bad argument or option: names the argument. Exit 2. */
export class UsageError extends TallyError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, ExitCode.usage, options);
  }
}

/**
 * A job option or argument that cannot be used, named by its field in the job's options
 * (`chunkSize`, `from`): kinds know their options, not the command line that fills them. The
 * CLI says it with the flag the user typed (see `inCommandLineTerms` in coordinator/kind-cli.ts):
 * `--chunk-size: must be a positive integer, got 0`. Exit 2.
 */
export class OptionError extends UsageError {
  readonly field: string;
  /** The message without the field's name. */
  readonly reason: string;
  constructor(field: string, reason: string, options?: { cause?: unknown }) {
    super(`${field}: ${reason}`, options);
    this.field = field;
    this.reason = reason;
  }
}

/** An input path that cannot be used: names the path. Exit 2. */
export class InputError extends TallyError {
  readonly path: string;
  constructor(path: string, reason: string, options?: { cause?: unknown }) {
    super(`${path}: ${reason}`, ExitCode.usage, options);
    this.path = path;
  }
}

/**
 * An input given as a URL cannot be fetched (HTTP error, refused, no response, too many
 * redirects): names the URL. Exit 1, as for a server that cannot be reached.
 */
export class RemoteInputError extends TallyError {
  readonly url: string;
  constructor(url: string, reason: string, options?: { cause?: unknown }) {
    super(`${url}: ${reason}`, ExitCode.failed, options);
    this.url = url;
  }
}

/** The NATS server cannot be reached or cannot serve tally: names the server. Exit 1. */
export class ServerError extends TallyError {
  readonly server: string;
  constructor(server: string, reason: string, options?: { cause?: unknown }) {
    super(`${server}: ${reason}`, ExitCode.failed, options);
    this.server = server;
  }
}

/** A job that could not complete: names the job and, where known, the input that broke it. Exit 1. */
export class JobFailedError extends TallyError {
  readonly job: string;
  readonly input: string | undefined;
  /** The task that failed, when one did. */
  readonly task: number | undefined;
  readonly reason: string;
  constructor(job: string, reason: string, input?: string, task?: number) {
    super(`job ${job} failed${input ? ` on ${input}` : ''}: ${reason}`, ExitCode.failed);
    this.job = job;
    this.input = input;
    this.task = task;
    this.reason = reason;
  }
}

/** The user interrupted (SIGINT/SIGTERM). Exit 130. */
export class InterruptedError extends TallyError {
  constructor(message = 'interrupted') {
    super(message, ExitCode.interrupted);
  }
}

/** A task message that can never be processed (malformed, unknown kind, over a limit). */
export class TaskRejectedError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TaskRejectedError';
  }
}

/**
 * A task refused because its input file changed while the job ran (the user edited it, not a
 * fault of the worker). Its coordinator reports it to the user, so a worker does not log it as
 * its own error.
 */
export class InputChangedError extends TaskRejectedError {
  constructor(path: string, change: string) {
    super(`${path} changed while it was being counted: ${change}`);
    this.name = 'InputChangedError';
  }
}

/**
 * A task refused because its input's data is corrupt (a compressed file that does not
 * decompress): like an edited file, the submitter's to mend, and no other delivery would read
 * it differently.
 */
export class CorruptInputError extends TaskRejectedError {
  constructor(message: string) {
    super(message);
    this.name = 'CorruptInputError';
  }
}

/** One line describing any error, without a stack trace. */
export function describeError(error: unknown): string {
  if (error instanceof Error) return error.message.split('\n')[0] ?? String(error);
  return String(error);
}

/** An error the operating system reported (it carries an errno code: EIO, ENOENT, ...). */
export function isSystemError(error: unknown): error is NodeJS.ErrnoException {
  return error instanceof Error && typeof (error as NodeJS.ErrnoException).code === 'string' && /^E[A-Z0-9]+$/.test((error as NodeJS.ErrnoException).code!);
}

/**
 * The usual words for a failed file operation ("no such file or directory", "permission
 * denied", ...) from its errno code, or null for a code without one.
 */
export function fileErrorReason(error: unknown): string | null {
  switch ((error as NodeJS.ErrnoException | undefined)?.code) {
    case 'ENOENT':
      return 'no such file or directory';
    case 'EACCES':
    case 'EPERM':
      return 'permission denied';
    case 'EISDIR':
      return 'is a directory';
    case 'ENOTDIR':
      return 'not a directory';
    case 'ELOOP':
      return 'too many levels of symbolic links';
    case 'ENAMETOOLONG':
      return 'file name too long';
    case 'ENOSPC':
      return 'no space left on device';
    case 'EROFS':
      return 'read-only file system';
    default:
      return null;
  }
}
