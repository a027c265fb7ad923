/**
 * What a newcomer sees: the README's quick start works from a fresh clone, and the progress bar
 * appears on a terminal but never in pipes or with --no-progress.
 */
import test from 'ava';
import { execFileSync, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { REPO_ROOT, cleanEnv, runTally, tempDir } from './helpers/tally.js';
import { missingScript, testNeeding } from './helpers/capability.js';

test('the README quick start is exactly `npm run demo` and `npm test`', (t) => {
  const readme = readFileSync(join(REPO_ROOT, 'README.md'), 'utf8');
  const quickStart = readme.slice(readme.indexOf('## Quick start'), readme.indexOf('\n## ', readme.indexOf('## Quick start') + 5));
  const commands = [...quickStart.matchAll(/^(npm [^#\n]*?)\s*(#.*)?$/gm)].map((m) => m[1]!.trim());
  t.deepEqual(commands, ['npm run demo', 'npm test']);
});

test('a fresh clone runs `npm run demo` (setup + build + an embedded count of samples/)', async (t) => {
  const clone = tempDir('tally-clone-');
  t.teardown(clone.remove);
  // The committed tree, as a newcomer would get it.
  execFileSync('git', ['clone', '-q', REPO_ROOT, join(clone.path, 'tally')]);
  const data = tempDir('tally-clone-data-');
  t.teardown(data.remove);
  const demo = spawnSync('npm', ['run', 'demo'], {
    cwd: join(clone.path, 'tally'),
    env: cleanEnv({ XDG_DATA_HOME: data.path }),
    encoding: 'utf8',
    timeout: 5 * 60_000,
  });
  t.is(demo.status, 0, demo.stderr);
  t.regex(demo.stdout, /^\s*1\s+the\s+\d+$/m);
  t.regex(demo.stdout, /\d+ words, \d+ unique, 0 overlong · 11 files/);
});

testNeeding(missingScript(), 'the progress bar is drawn on a TTY, and not in a pipe or with --no-progress', async (t) => {
  const data = tempDir('tally-tty-');
  t.teardown(data.remove);
  const env = cleanEnv({ XDG_DATA_HOME: data.path });
  const command = `node ${join(REPO_ROOT, 'bin', 'tally.js')} primes 1 2e9 --tasks 40 --workers 2`;
  // `script` gives the command a pseudo-terminal, as an interactive shell would.
  const tty = spawnSync('script', ['-qec', command, '/dev/null'], { env, encoding: 'utf8', timeout: 120_000 });
  t.is(tty.status, 0, tty.stderr);
  t.regex(tty.stdout, /\[[#.]+\]\s+\d+%\s+\d+\/40 tasks/);
  t.regex(tty.stdout, /primes in 1\.\.2000000000 = 98222287/);
  const quiet = spawnSync('script', ['-qec', `${command} --no-progress`, '/dev/null'], { env, encoding: 'utf8', timeout: 120_000 });
  t.is(quiet.status, 0, quiet.stderr);
  t.regex(quiet.stdout, /primes in 1\.\.2000000000 = 98222287/, 'the result is printed');
  t.notRegex(quiet.stdout, /tasks +[\d.]+/);
  const piped = await runTally(['primes', '1', '2e8', '--tasks', '20', '--workers', '2'], { env });
  t.is(piped.code, 0, piped.stderr);
  t.regex(piped.stdout, /primes in 1\.\.200000000 = 11078937/, 'the result is printed');
  t.is(piped.stderr, '', 'nothing on stderr when it is not a terminal');
});
