#!/usr/bin/env node
// `npm run build` (and `npm run setup`) after tsc: bundles the compiled modules (dist/) of the
// two programs tally starts, the command (bin/tally.js) and a worker process (forked by the
// supervisor), into one CommonJS file each under dist/bundle/, which a process compiles through
// tally's code cache (shared/code-cache.ts, itself dist/bundle/code-cache.cjs, loaded first):
// the compiled code of every function a command ran last time comes back from the cache instead
// of being parsed and compiled again (Node 20's ES modules have no such cache, Node 22+'s own
// compile cache keeps only what a module compiles as it loads). Node 20's ES loader also spent
// ~1 ms per module (resolve, read, link) on ~75 of tally's own: as one file, an embedded
// `tally sum 1 10 --workers 2` ends ~100 ms sooner (docs/BENCHMARKS.md, issue 17's fifth pass),
// and under the code cache ~40 ms sooner again (the ninth pass).
//
// The bundle changes where the code lives, not what it does:
// - every module's `import.meta.url` stays the URL of its compiled file in dist/, so the paths
//   resolved against it (the server's config, the WebAssembly modules, the GMP addon, the
//   dashboard's assets, require() of packages, a module started as its own thread) are the same;
// - packages (node_modules) are not bundled: they load as before, through the code cache;
//   string-width is the exception, an ES-only package, which a CommonJS file could load only
//   with import() (see below);
// - a module imported with import() still runs only when it is imported (esbuild defers it), so
//   what a command does not use is compiled lazily and never run: the job kinds, the dashboard.
// A package imported with a static ES `import` would be loaded by every command, at start: the
// build refuses it (load such packages where they are used, with require(), as commander.ts does).
// And an import() left for Node to do at run time would fail in code compiled by the code cache
// (node:vm runs it without Node's module loader): the build refuses that too.
import { build } from 'esbuild';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { isBuiltin } from 'node:module';
import { relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const dist = `${root}dist/`;
const outdir = `${dist}bundle/`;

/**
 * The programs: output name (in dist/bundle/, .cjs) and its compiled entry module. The code cache
 * is one of its own, which the launchers (bin/tally.js, worker-main.cjs) load before the others.
 */
const PROGRAMS = { tally: `${dist}coordinator/entry.js`, worker: `${dist}worker/process-main.js`, 'code-cache': `${dist}shared/code-cache.js` };

/**
 * What a forked worker process runs (worker/supervisor.ts, WORKER_PROGRAM): the code cache, then
 * the worker's bundle through it, as bin/tally.js does for the command.
 */
const WORKER_MAIN = `'use strict';
// Written by scripts/bundle.mjs: a worker process, forked by the supervisor (worker/supervisor.ts).
require('./code-cache.cjs').installCodeCache('worker');
require('./worker.cjs');
`;

/** The packages bundled in (with what they import): string-width, ES-only. */
const BUNDLED_PACKAGES = /^string-width(\/|$)/;

/** Rewrites `import.meta.url` in each of tally's modules to its own compiled file's URL. */
const ownUrls = {
  name: 'own-import-meta-url',
  setup(builder) {
    builder.onLoad({ filter: /\/dist\/.*\.js$/ }, async ({ path }) => {
      const text = await readFile(path, 'utf8');
      const ownUrl = `new URL(${JSON.stringify(relative(outdir, path))}, __bundleUrl).href`;
      return { contents: text.replaceAll('import.meta.url', ownUrl), loader: 'js' };
    });
  },
};

/** Packages stay outside the bundles but for BUNDLED_PACKAGES and the packages those import. */
const outside = {
  name: 'outside',
  setup(builder) {
    builder.onResolve({ filter: /^[^./]/ }, ({ path, importer }) =>
      isBuiltin(path) || BUNDLED_PACKAGES.test(path) || importer.includes('/node_modules/') ? undefined : { path, external: true },
    );
  },
};

const result = await build({
  entryPoints: PROGRAMS,
  outdir,
  outExtension: { '.js': '.cjs' },
  bundle: true,
  format: 'cjs',
  platform: 'node',
  target: 'node20.19',
  // The URL the modules' own URLs are resolved against: this bundle's (see ownUrls).
  // Strict, as the ES modules it is made of were.
  banner: { js: "'use strict';\nconst __bundleUrl = require('node:url').pathToFileURL(__filename).href;" },
  plugins: [outside, ownUrls],
  metafile: true,
  write: false,
  logLevel: 'warning',
  legalComments: 'none',
});

// Refused before anything is written: a refused build leaves no bundle (bin/tally.js then says to build).
await rm(outdir, { recursive: true, force: true });
const refused = [];
for (const [file, output] of Object.entries(result.metafile.outputs)) {
  for (const { path, kind, external } of output.imports) {
    if (!external) continue;
    if (kind === 'dynamic-import') refused.push(`${relative(root, file)} imports '${path}' with import(): load it with require(), or bundle it (BUNDLED_PACKAGES)`);
    else if (kind === 'import-statement' && !isBuiltin(path)) refused.push(`${relative(root, file)} imports '${path}' statically: it would load with every command; load it with require() where used`);
  }
}
if (refused.length > 0) {
  process.stderr.write(`bundle: refused:\n  ${refused.join('\n  ')}\n`);
  process.exit(1);
}
await mkdir(outdir, { recursive: true });
await Promise.all(result.outputFiles.map((file) => writeFile(file.path, file.contents)));
await writeFile(`${outdir}worker-main.cjs`, WORKER_MAIN);
