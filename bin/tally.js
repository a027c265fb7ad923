#!/usr/bin/env node
// The `tally` command: coordinator/entry.ts, bundled into one file by `npm run build` (or
// `npm run setup`), which starts ~100 ms sooner than its ~75 modules would.
try {
  await import('../dist/bundle/tally.js');
} catch (error) {
  // Only a build that never ran lands here: errors of the command itself are handled inside it.
  if (error?.code !== 'ERR_MODULE_NOT_FOUND' || !String(error.message).includes('/dist/bundle/tally.js')) throw error;
  process.stderr.write("tally: not built yet: run 'npm run setup' (or 'npm run build') in tally's folder\n");
  process.exit(1);
}
