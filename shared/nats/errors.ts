/**
 * What tally makes of a failure of the NATS client, decided by the client's own error classes
 * (`errors.*` of the NATS core, `JetStreamApiError` and its kin) and JetStream API codes, not by
 * the words of its messages. Every module that branches on a NATS failure asks here.
 *
 * The classes are looked up on first use, from the client modules a failure can only have come
 * from (so already loaded: the lookup is a cache hit): importing this module loads nothing, and
 * the CLI and the worker supervisor, which import connection helpers early, start as before.
 */
import { createRequire } from 'node:module';
import type * as Transport from '@nats-io/transport-node';
import type * as JetStream from '@nats-io/jetstream/internal';
import { RemoteInputError, ServerError, TallyError, TaskRejectedError, describeError } from '../errors.js';

const require = createRequire(import.meta.url);
let coreErrors: typeof Transport.errors | undefined;
let jetstreamModule: typeof JetStream | undefined;
/** The NATS core's error classes (ConnectionError, TimeoutError, PermissionViolationError, …). */
const core = (): typeof Transport.errors => (coreErrors ??= (require('@nats-io/transport-node') as typeof Transport).errors);
/** JetStreamApiError, JetStreamNotEnabled, JetStreamStatusError and the API codes. */
const js = (): typeof JetStream => (jetstreamModule ??= require('@nats-io/jetstream/internal') as typeof JetStream);

/**
 * JetStream API error codes tally branches on: the client's `JetStreamApiCodes` plus those it
 * does not name (identifiers as in nats-server's server/errors.json).
 */
export const ApiCodes = {
  ConsumerNotFound: 10014,
  StreamNotFound: 10059,
  StreamWrongLastSequence: 10071,
  StreamWrongLastSequenceUnknown: 10164,
  NoMessageFound: 10037,
  /** JSStreamMsgDeleteFailedF: deleting a sequence past the end of the store ("stream store EOF"). */
  StreamMsgDeleteFailed: 10057,
  /** JSStreamNameExistErr: "stream name already in use with a different configuration". */
  StreamNameExist: 10058,
  /** JSStreamSubjectOverlapErr: "subjects overlap with an existing stream". */
  StreamSubjectOverlap: 10065,
  /** JSConsumerNameExistErr: "consumer name already in use". */
  ConsumerNameExist: 10013,
  /** JSConsumerExistingActiveErr: "consumer already exists and is still active". */
  ConsumerExistingActive: 10105,
  /** JSConsumerAlreadyExists: "consumer already exists". */
  ConsumerAlreadyExists: 10148,
  /** JSConsumerCreateErrF: a consumer's creation failed; the description is the server's reason. */
  ConsumerCreate: 10012,
  /** JSStreamInvalidErr: "stream not valid" (a stream without its connection: not set up, or stopping). */
  StreamInvalid: 10096,
} as const;

/** `error` and the errors it was caused by, outermost first (a few levels: the client nests). */
function chain(error: unknown, depth = 6): unknown[] {
  const out: unknown[] = [];
  for (let e = error; e !== undefined && e !== null && out.length < depth; e = (e as { cause?: unknown }).cause) out.push(e);
  return out;
}

/** True when `error` is one of the client's errors (core or JetStream). */
function isClientError(error: unknown): boolean {
  if (!(error instanceof Error)) return false;
  const c = core();
  const j = js();
  return (
    Object.values(c).some((type) => error instanceof type) ||
    error instanceof j.JetStreamError ||
    error instanceof j.JetStreamApiError ||
    error instanceof j.jserrors.JetStreamNotEnabled ||
    error instanceof j.jserrors.InvalidNameError
  );
}

/** The JetStream API error code of `error` (or of an error that caused it), if any. */
export function apiErrorCode(error: unknown): number | undefined {
  const { JetStreamApiError } = js();
  for (const e of chain(error)) if (e instanceof JetStreamApiError) return e.code;
  return undefined;
}

/** The server said the stream or consumer does not exist. */
export function isNotFound(error: unknown): boolean {
  const code = apiErrorCode(error);
  return code === ApiCodes.StreamNotFound || code === ApiCodes.ConsumerNotFound;
}

/**
 * The message asked for is not (or no longer) in the stream: "no message found", or, deleting
 * one, "stream store EOF" (nats-server 2.9).
 */
export function isNoMessage(error: unknown): boolean {
  const code = apiErrorCode(error);
  return code === ApiCodes.NoMessageFound || code === ApiCodes.StreamMsgDeleteFailed;
}

/** The server refused to create a stream or consumer that another process created meanwhile. */
export function isAlreadyInUse(error: unknown): boolean {
  const code = apiErrorCode(error);
  return code === ApiCodes.StreamNameExist || code === ApiCodes.ConsumerNameExist || code === ApiCodes.ConsumerExistingActive || code === ApiCodes.ConsumerAlreadyExists;
}

/**
 * The server refused a consumer because its stream, though listed, is not set up yet: nats-server
 * 2.9 lists a new stream before it opens the stream's store, and a consumer created in between
 * is refused with "stream not valid" (10096) or a failed creation (10012) whose reason is
 * "invalid stream". Only the code is branched on, so any failed creation (10012) counts; callers
 * try again a few times and then report what the server said.
 */
export function isStreamNotReady(error: unknown): boolean {
  const code = apiErrorCode(error);
  return code === ApiCodes.StreamInvalid || code === ApiCodes.ConsumerCreate;
}

/**
 * The server refused a new stream because its subjects overlap an existing stream's. nats-server
 * 2.9 also says so to the loser of two processes creating the same stream at one moment.
 */
export function isSubjectOverlap(error: unknown): boolean {
  return apiErrorCode(error) === ApiCodes.StreamSubjectOverlap;
}

/**
 * A publish with `expect.lastSubjectSequence` found another last sequence on the subject (10071;
 * with `orUnknown`, also 10164: the server could not tell, as for a revision-checked KV write).
 */
export function isWrongLastSequence(error: unknown, orUnknown = false): boolean {
  const code = apiErrorCode(error);
  return code === ApiCodes.StreamWrongLastSequence || (orUnknown && code === ApiCodes.StreamWrongLastSequenceUnknown);
}

/** The operation and subject of a permissions violation, if `error` (or its causes) is one. */
export function permissionViolation(error: unknown): { operation: 'publish' | 'subscription'; subject: string } | undefined {
  if (!(error instanceof Error)) return undefined;
  const { PermissionViolationError } = core();
  for (const e of chain(error)) if (e instanceof PermissionViolationError) return { operation: e.operation, subject: e.subject };
  return undefined;
}

/** Nobody answered a request: no responders (a service or JetStream not there, or electing). */
export function isNoResponders(error: unknown): boolean {
  if (!(error instanceof Error)) return false;
  const { NoRespondersError, RequestError } = core();
  return chain(error).some((e) => e instanceof NoRespondersError || (e instanceof RequestError && e.isNoResponders()));
}

/**
 * The server has no JetStream for us: the client's JetStreamNotEnabled (which it also reports
 * when nobody answers a JetStream request), or no responders.
 */
export function isJetStreamUnavailable(error: unknown): boolean {
  if (!(error instanceof Error)) return false;
  const { JetStreamNotEnabled } = js().jserrors;
  return chain(error).some((e) => e instanceof JetStreamNotEnabled) || isNoResponders(error);
}

/** The server refused our credentials, they expired, or it stopped waiting for them (no verdict on them). */
export function authenticationFailure(error: unknown): 'rejected' | 'expired' | 'timed out' | undefined {
  if (!(error instanceof Error)) return undefined;
  const { AuthorizationError, UserAuthenticationExpiredError } = core();
  for (const e of chain(error)) {
    if (e instanceof UserAuthenticationExpiredError) return 'expired';
    // nats.js reports the server's "Authentication Timeout" (it waited too long for our
    // credentials: a loaded machine, a slow link) as an AuthorizationError too: no verdict on them.
    if (e instanceof AuthorizationError) return /authentication timeout/i.test(e.message) ? 'timed out' : 'rejected';
  }
  return undefined;
}

/** The connection attempt was refused (nothing listens there) or timed out. */
export function connectFailure(error: unknown): 'refused' | 'timed out' | undefined {
  if (!(error instanceof Error)) return undefined;
  const { ConnectionError, TimeoutError } = core();
  for (const e of chain(error)) {
    if ((e as NodeJS.ErrnoException).code === 'ECONNREFUSED') return 'refused';
    // With no server left to try, the client says so in a ConnectionError with no cause.
    if (e instanceof ConnectionError && e.cause === undefined && e.message === 'connection refused') return 'refused';
    if (e instanceof TimeoutError) return 'timed out';
  }
  return undefined;
}

/**
 * tally's own errors that decide a failure (bad usage, an unusable input, a refused task, a
 * failed job): their messages quote the user's inputs (a URL's port 35037 read as "503", a
 * folder named "timeouts"), which are no evidence of a server's state. A ServerError says a
 * server's trouble in words, and a RemoteInputError a URL's: those words still count.
 */
function isDecided(error: Error): boolean {
  if (error instanceof TaskRejectedError) return true;
  return error instanceof TallyError && !(error instanceof ServerError) && !(error instanceof RemoteInputError);
}

/**
 * Words of failures that tally meets only as text: errors that are not the client's (tally's
 * own that pass a failure on in words, plain `Error`s of the object store) and the server's
 * protocol errors (`-ERR 'Stale Connection'`), which the client hands on as a ProtocolError.
 */
const TRANSIENT_WORDS = /timeout|timed out|no responders|503|not enabled|disconnect|reconnect|connection lost|stale connection|not ready|leader/i;

/**
 * True for failures that a retry can cure: a request that timed out, nobody answering (a leader
 * election, reported by the client as "jetstream is not enabled"), a request cut off by a
 * disconnect, a pull interrupted by a leadership change. Never for a closed or draining
 * connection, a permissions violation, rejected credentials, or an API error (the server
 * answered, and would answer the same).
 */
export function isTransient(error: unknown): boolean {
  if (!(error instanceof Error) || isDecided(error)) return false;
  const c = core();
  const j = js();
  const errors = chain(error);
  if (errors.some((e) => e instanceof c.ClosedConnectionError || e instanceof c.DrainingConnectionError || e instanceof c.PermissionViolationError || e instanceof c.AuthorizationError || e instanceof c.UserAuthenticationExpiredError)) {
    return false;
  }
  for (const e of errors) {
    if (e instanceof c.TimeoutError || e instanceof c.NoRespondersError || e instanceof c.ConnectionError || e instanceof j.jserrors.JetStreamNotEnabled) return true;
    // Cut off by a disconnect (no cause), no responders; else its cause decides.
    if (e instanceof c.RequestError) {
      if (e.cause === undefined || e.isNoResponders()) return true;
      continue;
    }
    if (e instanceof j.JetStreamStatusError) {
      // 408 request timeout, 503 no responders; 409 covers many conditions, and only the
      // description tells a leadership change (transient) from a deleted consumer.
      return e.code === 408 || e.code === 503 || (e.code === 409 && /leader/i.test(e.message));
    }
    if (e instanceof j.JetStreamApiError) return false;
  }
  if (isClientError(error) && !(error instanceof c.ProtocolError)) return false;
  const text = describeError(error);
  return TRANSIENT_WORDS.test(text) && !/closed/i.test(text);
}
