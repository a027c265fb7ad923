/**
 * shared/nats/errors.ts: failures are told apart by the NATS client's error classes and
 * JetStream API codes, built here as the client builds them.
 */
import test from 'ava';
import { errors } from '@nats-io/transport-node';
import { JetStreamApiCodes, JetStreamApiError } from '@nats-io/jetstream';
import { JetStreamStatusError, jserrors } from '@nats-io/jetstream/internal';
import {
  ApiCodes,
  authenticationFailure,
  connectFailure,
  isAlreadyInUse,
  isJetStreamUnavailable,
  isNoResponders,
  isNotFound,
  isSubjectOverlap,
  isTransient,
  isWrongLastSequence,
  permissionViolation,
} from '../shared/nats/errors.js';
import { CorruptInputError, InputError, JobFailedError, RemoteInputError, ServerError, TaskRejectedError, UsageError } from '../shared/errors.js';
import { describeConnectError } from '../shared/nats/connect-diagnosis.js';
import { deniedInputBucket, permissionDenied } from '../shared/nats/permissions.js';

const api = (code: number, status = 400, description = 'refused') => new JetStreamApiError({ err_code: code, code: status, description });
const noResponders = () => new errors.RequestError('no responders', { cause: new errors.NoRespondersError('$JS.API.INFO') });
const denied = () => new errors.PermissionViolationError('Permissions Violation for Publish to "tally.task.x.1"', 'publish', 'tally.task.x.1');

test('transient: timeouts, no responders, a disconnect, a leadership change; never a closed connection, a refusal or an answer', (t) => {
  for (const error of [
    new errors.TimeoutError(),
    noResponders(),
    new errors.RequestError('connection disconnected'),
    new jserrors.JetStreamNotEnabled('jetstream is not enabled', { cause: noResponders() }),
    new JetStreamStatusError('Leadership Change', 409),
    new JetStreamStatusError('Request Timeout', 408),
    new errors.RequestError('timeout', { cause: new errors.TimeoutError() }),
  ]) {
    t.true(isTransient(error), `${error.name}: ${error.message}`);
  }
  for (const error of [
    new errors.ClosedConnectionError(),
    new errors.DrainingConnectionError(),
    denied(),
    new errors.RequestError('denied', { cause: denied() }),
    new errors.AuthorizationError('Authorization Violation'),
    new JetStreamStatusError('Consumer Deleted', 409),
    api(ApiCodes.StreamWrongLastSequence, 400, 'wrong last sequence: 7'),
    api(ApiCodes.StreamNotFound, 404, 'stream not found'),
    errors.InvalidArgumentError.format('payload', 'max_payload size exceeded'),
    new UsageError('bad'),
    new Error('boom'),
  ]) {
    t.false(isTransient(error), `${error.name}: ${error.message}`);
  }
  // tally's own errors say a failure in words only: those words still count.
  t.true(isTransient(new ServerError('nats://h:4222', 'connection lost for 3 s')));
  t.false(isTransient('timeout'));
  // A failed job's message carries user data: a URL on port 35037 is no HTTP 503.
  t.false(isTransient(new JobFailedError('j1', 'http://127.0.0.1:35037/a.txt changed while it was being counted', 'http://127.0.0.1:35037/a.txt')));
  // Nor do the words of the user's paths in tally's other decided errors.
  t.false(isTransient(new InputError('/var/log/timeouts/503.log', 'no such file or directory')));
  t.false(isTransient(new UsageError("--include: 'leader*' matches nothing")));
  t.false(isTransient(new TaskRejectedError('count task: /data/disconnect-report.txt is not readable')));
  t.false(isTransient(new CorruptInputError('/data/reconnect.gz: not in gzip format at byte 10')));
  // A URL's failure is said in words too, and those still count.
  t.true(isTransient(new RemoteInputError('http://h/a.txt', 'no data for 30 s after 0 bytes: timed out')));
});

test('JetStream API codes: not found, already in use, subjects overlap, wrong last sequence', (t) => {
  // The codes the client names are the client's own (errors.ts cannot import them: it loads nothing).
  for (const [name, code] of Object.entries(JetStreamApiCodes)) if (name in ApiCodes) t.is(ApiCodes[name as keyof typeof ApiCodes] as number, code, name);
  t.true(isNotFound(new jserrors.StreamNotFoundError({ err_code: ApiCodes.StreamNotFound, code: 404, description: 'stream not found' })));
  t.true(isNotFound(new jserrors.ConsumerNotFoundError({ err_code: ApiCodes.ConsumerNotFound, code: 404, description: 'consumer not found' })));
  t.false(isNotFound(api(10037, 404, 'no message found')));
  t.false(isNotFound(new Error('stream not found')));
  for (const code of [ApiCodes.StreamNameExist, ApiCodes.ConsumerNameExist, ApiCodes.ConsumerExistingActive, ApiCodes.ConsumerAlreadyExists]) t.true(isAlreadyInUse(api(code)));
  t.false(isAlreadyInUse(api(ApiCodes.StreamNotFound, 404)));
  t.true(isSubjectOverlap(api(10065, 400, 'subjects overlap with an existing stream')));
  t.false(isSubjectOverlap(api(ApiCodes.StreamNameExist)));
  t.false(isAlreadyInUse(api(ApiCodes.StreamSubjectOverlap)));
  t.true(isWrongLastSequence(api(ApiCodes.StreamWrongLastSequence)));
  t.false(isWrongLastSequence(api(ApiCodes.StreamWrongLastSequenceUnknown)));
  t.true(isWrongLastSequence(api(ApiCodes.StreamWrongLastSequenceUnknown), true));
  t.true(isWrongLastSequence(new Error('wrapped', { cause: api(ApiCodes.StreamWrongLastSequence) })));
});

test('permissions, no responders, JetStream unavailable, credentials, refused and timed-out connects', (t) => {
  t.deepEqual(permissionViolation(new errors.RequestError('denied', { cause: denied() })), { operation: 'publish', subject: 'tally.task.x.1' });
  t.is(permissionViolation(new Error('Permissions Violation for Publish to "a"')), undefined);
  t.true(isNoResponders(noResponders()));
  t.true(isNoResponders(new errors.NoRespondersError('$SRV.STATS.tally-worker')));
  t.false(isNoResponders(new errors.TimeoutError()));
  t.true(isJetStreamUnavailable(new jserrors.JetStreamNotEnabled('jetstream is not enabled')));
  t.true(isJetStreamUnavailable(noResponders()));
  t.false(isJetStreamUnavailable(new errors.TimeoutError()));
  t.is(authenticationFailure(new errors.AuthorizationError('Authorization Violation')), 'rejected');
  t.is(authenticationFailure(new errors.UserAuthenticationExpiredError('User Authentication Expired')), 'expired');
  // The server gave up waiting for the CONNECT line: no verdict on the credentials.
  t.is(authenticationFailure(new errors.AuthorizationError('Authentication Timeout')), 'timed out');
  const withUser = { servers: ['nats://127.0.0.1:4222'], auth: { user: 'coordinator', password: 'secret' } };
  t.regex(describeConnectError(new errors.AuthorizationError('Authorization Violation'), withUser), /^authentication failed: wrong or unknown credentials for user 'coordinator'$/);
  t.regex(describeConnectError(new errors.AuthorizationError('Authentication Timeout'), withUser), /^authentication timed out: .*try again$/);
  t.is(authenticationFailure(new errors.ConnectionError('connection refused')), undefined);
  const refused = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:1'), { code: 'ECONNREFUSED' });
  t.is(connectFailure(new errors.ConnectionError('connection refused', { cause: refused })), 'refused');
  t.is(connectFailure(new errors.ConnectionError('connection refused')), 'refused');
  t.is(connectFailure(new errors.TimeoutError()), 'timed out');
  t.is(connectFailure(new errors.ConnectionError('read ECONNRESET')), undefined);
});

test('a denied subject of an input bucket other than tally-inputs names the bucket; tally-inputs and tally\'s own buckets are the role\'s', (t) => {
  for (const subject of ['$JS.API.STREAM.INFO.OBJ_other', '$JS.API.STREAM.MSG.GET.OBJ_other', '$JS.API.DIRECT.GET.OBJ_other', '$JS.API.CONSUMER.CREATE.OBJ_other.x.$O.other.C.y', '$O.other.C.abc', '$JS.API.STREAM.CREATE.OBJ_other', '$JS.API.STREAM.MSG.DELETE.OBJ_other']) {
    t.is(deniedInputBucket(subject), 'other', subject);
  }
  for (const subject of ['$JS.API.STREAM.INFO.OBJ_tally-inputs', '$JS.API.STREAM.MSG.GET.OBJ_tally-results', '$O.tally-partials.C.x', '$JS.API.STREAM.INFO.TALLY_TASKS', 'tally.task.x.1']) {
    t.is(deniedInputBucket(subject), undefined, subject);
  }
  const error = new errors.PermissionViolationError('Permissions Violation for Publish to "$JS.API.STREAM.INFO.OBJ_shelf"', 'publish', '$JS.API.STREAM.INFO.OBJ_shelf');
  t.is(permissionDenied(error), `permission denied publishing to $JS.API.STREAM.INFO.OBJ_shelf (bucket 'shelf' is not in this user's permissions: each bucket needs its own entries in each role; see docs/SECURITY.md, "Tasks that name objects")`);
});
