/**
 * shared/settings.ts: every TALLY_* variable the code reads is in its table and in the README's,
 * each has its default, and a bad value stops a command with one line naming the variable, exit 2.
 */
import test from 'ava';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join, relative } from 'node:path';
import { SETTINGS, SETTING_NAMES, checkSettings, setting, settings } from '../shared/settings.js';
import { UsageError } from '../shared/errors.js';
import { RESULT_STREAM, SHUFFLE_STREAM, TASK_STREAM } from '../shared/subjects.js';
import { REPO_ROOT, cleanEnv, runTally, tempDir } from './helpers/tally.js';

/** Source files of the program (not its tests): what the grep below looks through. */
function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return sourceFiles(path);
    return /\.(ts|js|mjs)$/.test(entry.name) && !entry.name.endsWith('.d.ts') ? [path] : [];
  });
}

/** Stream names in shared/subjects.ts that look like variables but are none. */
const STREAM_NAMES = new Set<string>([TASK_STREAM, RESULT_STREAM, SHUFFLE_STREAM]);

test('every TALLY_* name in the source is in the settings table', (t) => {
  const found = new Map<string, string>();
  for (const top of ['bin', 'coordinator', 'shared', 'worker', 'scripts']) {
    for (const file of sourceFiles(join(REPO_ROOT, top))) {
      for (const [name] of readFileSync(file, 'utf8').matchAll(/\bTALLY_[A-Z0-9_]*[A-Z0-9]\b/g)) {
        if (!STREAM_NAMES.has(name) && !found.has(name)) found.set(name, relative(REPO_ROOT, file));
      }
    }
  }
  t.true(found.size >= 5, 'the grep found the variables');
  for (const [name, file] of found) t.true(name in SETTINGS, `${name} (read in ${file}) is not in shared/settings.ts`);
  // And no process.env.TALLY_* read outside the settings module.
  for (const top of ['coordinator', 'shared', 'worker']) {
    for (const file of sourceFiles(join(REPO_ROOT, top))) {
      if (file.endsWith(join('shared', 'settings.ts'))) continue;
      const reads = [...readFileSync(file, 'utf8').matchAll(/[^\n]*\benv(?:\.|\[')TALLY_[A-Z_]+[^\n]*/g)].map((m) => m[0].trim());
      // Writing a worker process's environment (and forgetting its secrets) is not reading.
      const unexpected = reads.filter((line) => !/^(delete |env\.TALLY_WORKER_(SETTINGS|SECRETS) = |if \(Object\.keys\(secrets\))/.test(line));
      t.deepEqual(unexpected, [], `${relative(REPO_ROOT, file)} reads TALLY_* itself`);
    }
  }
});

test("every setting has a row in the README's table, with its default", (t) => {
  const readme = readFileSync(join(REPO_ROOT, 'README.md'), 'utf8');
  for (const name of SETTING_NAMES) {
    const row = readme.split('\n').find((line) => line.startsWith(`| \`${name}\``));
    t.truthy(row, `README.md has no table row for ${name}`);
    t.true(row?.includes(`| ${SETTINGS[name].default} |`), `README.md's row for ${name} gives the default ${SETTINGS[name].default}`);
  }
});

test('defaults, values, and empty as unset', (t) => {
  t.is(setting('TALLY_ACK_WAIT_MS', {}), 30_000);
  t.is(setting('TALLY_ACK_WAIT_MS', { TALLY_ACK_WAIT_MS: '' }), 30_000);
  t.is(setting('TALLY_ACK_WAIT_MS', { TALLY_ACK_WAIT_MS: '2000' }), 2000);
  t.is(setting('TALLY_SERVER_LOST_MS', {}), 60_000);
  t.is(setting('TALLY_INLINE_PARTIAL_LIMIT', {}), undefined);
  t.is(setting('TALLY_INLINE_PARTIAL_LIMIT', { TALLY_INLINE_PARTIAL_LIMIT: '0' }), 0);
  t.is(setting('TALLY_REPLICAS', {}), undefined);
  t.is(setting('TALLY_REPLICAS', { TALLY_REPLICAS: '3' }), 3);
  t.false(setting('TALLY_REDUCE_ON_COORDINATOR', {}));
  t.true(setting('TALLY_REDUCE_ON_COORDINATOR', { TALLY_REDUCE_ON_COORDINATOR: '1' }));
  t.is(setting('TALLY_DATA_DIR', { TALLY_DATA_DIR: '/srv/tally' }), '/srv/tally');
  t.is(setting('TALLY_DATA_DIR', { XDG_DATA_HOME: '/x' }), join('/x', 'tally'));
  t.is(setting('TALLY_CODE_CACHE', { XDG_CACHE_HOME: '/c' }), join('/c', 'tally'));
  for (const off of ['off', 'OFF', '0', 'false', 'no']) t.is(setting('TALLY_CODE_CACHE', { TALLY_CODE_CACHE: off }), null);
  t.deepEqual(setting('TALLY_TEST_HOOKS', { TALLY_TEST_HOOKS: '{"busyMs":5}' }), { busyMs: 5 });
  t.is(setting('TALLY_WORKER_SETTINGS', {}), undefined);
  t.deepEqual(setting('TALLY_WORKER_SECRETS', {}), {});
  t.is(settings({}).TALLY_ACK_WAIT_MS, 30_000);
  t.is(checkSettings({}), null);
});

test('a bad value is a one-line UsageError naming the variable; a secret is never shown', (t) => {
  const cases: Array<[string, string, RegExp]> = [
    ['TALLY_ACK_WAIT_MS', 'soon', /^TALLY_ACK_WAIT_MS: must be a whole number of milliseconds, at least 1000, got 'soon'$/],
    ['TALLY_ACK_WAIT_MS', '999', /^TALLY_ACK_WAIT_MS: .*at least 1000, got '999'$/],
    ['TALLY_SERVER_LOST_MS', '1.5e3x', /^TALLY_SERVER_LOST_MS: /],
    ['TALLY_INLINE_PARTIAL_LIMIT', '524288', /^TALLY_INLINE_PARTIAL_LIMIT: must be a whole number of bytes from 0 to 524287, got '524288'$/],
    ['TALLY_REPLICAS', '9', /^TALLY_REPLICAS: must be an integer from 1 to 5, got '9'$/],
    ['TALLY_REDUCE_ON_COORDINATOR', 'yes', /^TALLY_REDUCE_ON_COORDINATOR: must be 0 or 1, got 'yes'$/],
    ['TALLY_TEST_HOOKS', '{', /^TALLY_TEST_HOOKS: must be a JSON object \(not valid JSON\), got '\{'$/],
    ['TALLY_WORKER_SETTINGS', '[]', /^TALLY_WORKER_SETTINGS: must be a JSON object, got '\[\]'$/],
  ];
  for (const [name, value, expected] of cases) {
    const error = t.throws(() => setting(name as keyof typeof SETTINGS, { [name]: value }), { instanceOf: UsageError });
    t.regex(error!.message, expected);
    t.is(error!.exitCode, 2);
  }
  const secret = t.throws(() => setting('TALLY_WORKER_SECRETS', { TALLY_WORKER_SECRETS: 'hunter2' }), { instanceOf: UsageError });
  t.is(secret!.message, 'TALLY_WORKER_SECRETS: must be a JSON object (not valid JSON)');
  // Those tally writes for its worker processes are checked there, not by the CLI.
  t.is(checkSettings({ TALLY_WORKER_SETTINGS: 'x' }), null);
  t.regex(checkSettings({ TALLY_REPLICAS: '0' })?.message ?? '', /^TALLY_REPLICAS: /);
});

test('tally with a bad TALLY_* variable: one line on stderr, exit 2, nothing started', async (t) => {
  const dir = tempDir();
  try {
    const result = await runTally(['sum', '1', '10'], { env: cleanEnv({ TALLY_DATA_DIR: dir.path, TALLY_SERVER_LOST_MS: '5s' }) });
    t.is(result.code, 2);
    t.is(result.stdout, '');
    t.is(result.stderr, "tally: TALLY_SERVER_LOST_MS: must be a whole number of milliseconds, at least 1000, got '5s'\n");
    // No embedded server: its data directory was never made.
    t.false(existsSync(join(dir.path, 'jetstream')));
  } finally {
    dir.remove();
  }
});
