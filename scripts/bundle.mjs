#!/usr/bin/env node
// `npm run build` (and `npm run setup`) after tsc: bundles the compiled modules (dist/) of the
// two programs tally starts, the command (bin/tally.js) and a worker process (forked by the
// supervisor), into one file each under dist/bundle/ (and the few bin/tally.js reads first on
// Node 22+ to find Node's compile cache). Node 20's ES loader spends ~1 ms per module
// (resolve, read, link) and the command loads ~75 of tally's own: as one file, an embedded
// `tally sum 1 10 --workers 2` ends ~100 ms sooner (docs/BENCHMARKS.md, issue 17's fifth pass).
//
// The bundle changes where the code lives, not what it does:
// - every module's `import.meta.url` stays the URL of its compiled file in dist/, so the paths
//   resolved against it (the server's config, the WebAssembly scanner, the GMP addon, the
//   dashboard's assets, require() of packages, a module started as its own thread) are the same;
// - packages (node_modules) are not bundled: they load as before, with the code cache
//   (shared/code-cache.ts) for the CommonJS ones;
// - a module imported with import() still runs only when it is imported (esbuild defers it), so
//   what a command does not use is parsed but never run: the job kinds, the dashboard.
// A package imported with a static ES `import` would be loaded by every command, at start: the
// build refuses it (load such packages where they are used, with require(), as commander.ts does).
import { build } from 'esbuild';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { isBuiltin } from 'node:module';
import { relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const dist = `${root}dist/`;
const outdir = `${dist}bundle/`;

/**
 * The programs: output name (in dist/bundle/) and its compiled entry module; and what bin/tally.js
 * reads first on Node 22+ to find where Node's compile cache is (shared/code-cache.ts).
 */
const PROGRAMS = { tally: `${dist}coordinator/entry.js`, worker: `${dist}worker/process-main.js`, 'code-cache': `${dist}shared/code-cache.js` };

/** Rewrites `import.meta.url` in each of tally's modules to its own compiled file's URL. */
const ownUrls = {
  name: 'own-import-meta-url',
  setup(builder) {
    builder.onLoad({ filter: /\/dist\/.*\.js$/ }, async ({ path }) => {
      const text = await readFile(path, 'utf8');
      const ownUrl = `new URL(${JSON.stringify(relative(outdir, path))}, import.meta.url).href`;
      return { contents: text.replaceAll('import.meta.url', ownUrl), loader: 'js' };
    });
  },
};

const result = await build({
  entryPoints: PROGRAMS,
  outdir,
  bundle: true,
  format: 'esm',
  platform: 'node',
  target: 'node20.19',
  packages: 'external',
  plugins: [ownUrls],
  metafile: true,
  write: false,
  logLevel: 'warning',
  legalComments: 'none',
});

// Refused before anything is written: a refused build leaves no bundle (bin/tally.js then says to build).
await rm(outdir, { recursive: true, force: true });
const eager = [];
for (const [file, output] of Object.entries(result.metafile.outputs)) {
  for (const imported of output.imports) {
    if (imported.external && imported.kind === 'import-statement' && !isBuiltin(imported.path)) eager.push(`${relative(root, file)} imports '${imported.path}'`);
  }
}
if (eager.length > 0) {
  process.stderr.write(`bundle: packages imported statically would load with every command; load them with require() where used:\n  ${eager.join('\n  ')}\n`);
  process.exit(1);
}
await mkdir(outdir, { recursive: true });
await Promise.all(result.outputFiles.map((file) => writeFile(file.path, file.contents)));
