/**
 * The server's refusals (permissions violations) said in tally's terms: which subject was
 * denied and which role it needs (config/nats/secure/, docs/SECURITY.md), and reported once
 * per subject where the client would otherwise drop them silently.
 */
import type { NatsConnection } from '@nats-io/transport-node';
import { displayServers, inboxPrefixFor, type ConnectionSettings } from './connection-settings.js';
import { permissionViolation } from './errors.js';
import { DEFAULT_INPUT_BUCKET, JOB_ENDED_SUBJECTS, JOBS_BUCKET, PARTIALS_BUCKET, RESULT_STREAM, RESULT_SUBJECTS, RESULTS_BUCKET, TASK_STREAM, TASK_SUBJECTS, kvStreamName, kvSubjects, objectStreamName, objectSubjects } from '../subjects.js';

/**
 * Reports the server's refusals on `nc` through `log`, once per subject: a denied subscription
 * fails silently otherwise (a denied request fails the call that made it, which reports it, so
 * those go to debug: they include the expected look at a stream a role may not see).
 */
export function reportPermissionErrors(nc: NatsConnection, log: { error(obj: object, msg: string): void; debug(obj: object, msg: string): void }, settings: ConnectionSettings): void {
  void (async () => {
    const reported = new Set<string>();
    for await (const status of nc.status()) {
      if (status.type !== 'error') continue;
      const violation = permissionViolation(status.error);
      const denied = permissionDenied(status.error);
      if (!violation || !denied || reported.has(denied)) continue;
      reported.add(denied);
      // Our own inbox: the request waiting on it fails and says so.
      const ownInbox = violation.subject.startsWith(`${inboxPrefixFor(settings)}.`);
      log[violation.operation === 'subscription' && !ownInbox ? 'error' : 'debug']({ server: displayServers(settings.servers) }, denied);
    }
  })().catch(() => undefined);
}

/** "permission denied publishing to X" for a permissions violation, else undefined. */
export function permissionDenied(error: unknown): string | undefined {
  const violation = permissionViolation(error);
  if (!violation) return undefined;
  const verb = violation.operation === 'publish' ? 'publishing to' : 'subscribing to';
  return `permission denied ${verb} ${violation.subject}${explainSubject(violation.subject)}`;
}

/** The fixed start of a wildcard subject: `tally.task.>` → `tally.task.`. */
const under = (wildcard: string): string => wildcard.slice(0, -1);
const escape = (text: string): string => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
/** A JetStream API subject: one of `operations` on one of `streams` (all of its name with `exact`). */
const api = (operations: string, streams: string[], exact = false): RegExp =>
  new RegExp(`^\\$JS\\.API\\.(${operations})\\.(${streams.map(escape).join('|')})${exact ? '$' : ''}`);
const READS = 'DIRECT\\.GET|STREAM\\.MSG\\.GET|STREAM\\.INFO|CONSUMER\\.CREATE';

/** Denied subjects, first match wins, and what each says of the role needed. */
const DENIED: Array<[RegExp | string, string]> = [
  [under(TASK_SUBJECTS), ' (submitting jobs needs the coordinator role)'],
  [under(kvSubjects(JOBS_BUCKET)), ' (writing job records needs the coordinator role)'],
  [under(objectSubjects(RESULTS_BUCKET)), ' (writing results needs the coordinator role)'],
  [under(JOB_ENDED_SUBJECTS), ' (announcing the end of a job needs the coordinator role)'],
  [/^\$JS\.API\.STREAM\.UPDATE\./, " (changing tally's streams, e.g. tally jobs --retention, needs the coordinator role)"],
  [/^\$JS\.API\.STREAM\.CREATE\./, " (creating tally's streams needs the coordinator role or an administrator; see docs/SECURITY.md)"],
  [api('CONSUMER\\.(?:DURABLE\\.)?CREATE', [TASK_STREAM]), " (creating tally's streams needs the coordinator role or an administrator; see docs/SECURITY.md)"],
  [/^\$JS\.API\.STREAM\.(DELETE|PURGE)\./, ' (deleting or purging streams needs the coordinator role)'],
  [api('CONSUMER\\.(?:CREATE|INFO|MSG\\.NEXT)', [RESULT_STREAM]), ' (reading job results needs the coordinator role)'],
  [api(READS, [kvStreamName(JOBS_BUCKET)]), ' (reading job records needs the coordinator or reader role)'],
  [api('STREAM\\.INFO', [TASK_STREAM, RESULT_STREAM, objectStreamName(PARTIALS_BUCKET)], true), ' (running jobs needs the coordinator role)'],
  [api(READS, [objectStreamName(RESULTS_BUCKET)]), ' (reading results needs the coordinator or reader role)'],
  [under(RESULT_SUBJECTS), ' (publishing results needs the worker role)'],
  ['_INBOX', " (the inbox prefix does not match this user's permissions: set --inbox-prefix or NATS_INBOX_PREFIX)"],
];

/**
 * An input bucket's stream API (`$JS.API.<operation>.OBJ_<bucket>…`) or its own subjects
 * (`$O.<bucket>.…`): what `tally put/ls/rm` and counts of obj:// inputs use.
 */
const INPUT_BUCKET = /^(?:\$JS\.API\.(?:STREAM\.[A-Z]+(?:\.[A-Z]+)?|DIRECT\.GET|CONSUMER\.(?:CREATE|INFO|DELETE|MSG\.NEXT))\.OBJ_|\$JS\.FC\.OBJ_|\$O\.)([-\w]+)/;
const OWN_BUCKETS: ReadonlySet<string> = new Set([RESULTS_BUCKET, PARTIALS_BUCKET, DEFAULT_INPUT_BUCKET]);

/**
 * The bucket of obj:// inputs other than `tally-inputs` a denied subject belongs to, if it does:
 * the shipped permissions allow `tally-inputs` only, and subjects have no wildcard inside a
 * token, so every other bucket needs its own entries (docs/SECURITY.md), which the message then
 * says. A denial on `tally-inputs` itself is the role's (a reader deleting), said as before.
 */
export function deniedInputBucket(subject: string): string | undefined {
  const bucket = INPUT_BUCKET.exec(subject)?.[1];
  return bucket === undefined || OWN_BUCKETS.has(bucket) ? undefined : bucket;
}

/** What a denied subject means in tally's terms, so the message says which role is needed. */
function explainSubject(subject: string): string {
  const bucket = deniedInputBucket(subject);
  // Before the generic rules: STREAM.CREATE of a bucket is its entries missing, not the role.
  if (bucket !== undefined) return ` (bucket '${bucket}' is not in this user's permissions: each bucket needs its own entries in each role; see docs/SECURITY.md, "Tasks that name objects")`;
  for (const [pattern, why] of DENIED) if (typeof pattern === 'string' ? subject.startsWith(pattern) : pattern.test(subject)) return why;
  return '';
}
