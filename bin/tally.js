#!/usr/bin/env node
// The `tally` command: coordinator/entry.ts, bundled into one file by `npm run build` (or
// `npm run setup`), which starts ~100 ms sooner than its ~75 modules would.
import module from 'node:module';
import { fileURLToPath } from 'node:url';

// Node 22+ keeps the bundles' compiled code between runs in tally's private cache directory
// (shared/code-cache.ts); Node 20 has no such cache for ES modules, and loads nothing for it.
try {
  if (module.enableCompileCache && !process.env.NODE_COMPILE_CACHE) {
    const { nodeCompileCacheDirectory } = await import('../dist/bundle/code-cache.js');
    const dir = nodeCompileCacheDirectory();
    if (dir) {
      module.enableCompileCache(dir);
      // The worker processes the command forks inherit it (Node reads the variable as it starts).
      process.env.NODE_COMPILE_CACHE = dir;
    }
  }
  await import('../dist/bundle/tally.js');
} catch (error) {
  // Only a build that never ran lands here: errors of the command itself are handled inside it.
  if (error?.code !== 'ERR_MODULE_NOT_FOUND' || !String(error.message).includes(`imported from ${fileURLToPath(import.meta.url)}`)) throw error;
  process.stderr.write("tally: not built yet: run 'npm run setup' (or 'npm run build') in tally's folder\n");
  process.exit(1);
}
