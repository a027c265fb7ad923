#!/usr/bin/env node
// The `tally` command: coordinator/entry.ts, bundled into one CommonJS file by `npm run build`
// (or `npm run setup`, scripts/bundle.mjs), and compiled through tally's code cache
// (shared/code-cache.ts, loaded first), which keeps the compiled code of the last run.
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
let codeCache;
try {
  codeCache = require('../dist/bundle/code-cache.cjs');
} catch (error) {
  // Only a build that never ran lands here: errors of the command itself are handled inside it.
  if (error?.code !== 'MODULE_NOT_FOUND' || !String(error.message).includes('dist/bundle/code-cache.cjs')) throw error;
  process.stderr.write("tally: not built yet: run 'npm run setup' (or 'npm run build') in tally's folder\n");
  process.exit(1);
}
// One cache per command: each keeps the code its own runs compiled (a `tally --help` run first
// would otherwise leave a cache without what `tally count` compiles).
const command = /^[a-z][a-z-]{0,15}$/.test(process.argv[2] ?? '') ? process.argv[2] : 'other';
codeCache.installCodeCache(`cli-${command}`);
require('../dist/bundle/tally.cjs');
