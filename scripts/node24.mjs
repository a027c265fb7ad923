#!/usr/bin/env node
// `npm run test:node24`: the whole suite again on Node 24, the LTS users run, whatever Node this
// machine has. Node 24 comes from the npm registry (the `node` package, which fetches the
// official binary), kept in .cache/node24 and installed only once. Arguments go to ava.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const MAJOR = 24;
const root = fileURLToPath(new URL('..', import.meta.url));
const prefix = join(root, '.cache', `node${MAJOR}`);
const node = join(prefix, 'node_modules', 'node', 'bin', 'node');
const say = (text) => process.stderr.write(`test:node${MAJOR}: ${text}\n`);

function version() {
  if (!existsSync(node)) return null;
  const probe = spawnSync(node, ['--version'], { encoding: 'utf8' });
  return probe.status === 0 ? probe.stdout.trim() : null;
}

if (!version()?.startsWith(`v${MAJOR}.`)) {
  say(`installing Node ${MAJOR} from the npm registry into ${prefix}`);
  const install = spawnSync('npm', ['install', '--prefix', prefix, '--no-audit', '--no-fund', '--no-save', `node@${MAJOR}`], { stdio: 'inherit' });
  if (install.status !== 0 || !version()?.startsWith(`v${MAJOR}.`)) {
    say(`could not install Node ${MAJOR} (npm exit ${install.status})`);
    process.exit(1);
  }
}
say(`running the suite on Node ${version()}`);
// Child processes started as `node` (rare: most tests use process.execPath) get Node 24 too.
const env = { ...process.env, PATH: `${dirname(node)}:${process.env.PATH ?? ''}` };
const ava = join(root, 'node_modules', 'ava', 'entrypoints', 'cli.mjs');
const run = spawnSync(node, [ava, ...process.argv.slice(2)], { cwd: root, stdio: 'inherit', env });
process.exit(run.status ?? 1);
