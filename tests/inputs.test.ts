/** Expanding command-line paths into files: directories, globs, stdin, errors, duplicates. */
import test from 'ava';
import { execFileSync } from 'node:child_process';
import { chmod, link, mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { resolveInputs, selectInputs, selectionNotes } from '../coordinator/inputs.js';
import { segmentMatcher } from '../coordinator/glob.js';
import { InputError, UsageError } from '../shared/errors.js';
import { missingNobody, testNeeding } from './helpers/capability.js';

/** A fresh directory tree: { 'a.txt': 'text', 'sub/b.txt': '...' }; returns its path. */
async function tree(t: { teardown(fn: () => Promise<void>): void }, files: Record<string, string>): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'tally-inputs-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  for (const [name, text] of Object.entries(files)) {
    await mkdir(join(dir, name, '..'), { recursive: true });
    await writeFile(join(dir, name), text);
  }
  return dir;
}

const paths = (inputs: { path: string }[]) => inputs.map((i) => i.path);

test('files and directories: recursive, sorted, hidden files included, sizes, spelling kept', async (t) => {
  const dir = await tree(t, { 'b.txt': 'bb', 'a.txt': 'a', '.hidden': 'hhh', 'sub/z.md': 'zzzz', 'sub/deeper/y.txt': '', 'A.txt': 'AA' });
  const inputs = await resolveInputs([dir]);
  t.deepEqual(paths(inputs), ['.hidden', 'A.txt', 'a.txt', 'b.txt', 'sub/deeper/y.txt', 'sub/z.md'].map((p) => `${dir}/${p}`));
  t.deepEqual(inputs.map((i) => i.size), [3, 2, 1, 2, 0, 4]);

  // Relative stays relative; a trailing slash is kept as typed, not doubled.
  const rel = relative(process.cwd(), dir);
  t.deepEqual(paths(await resolveInputs([`${rel}/sub/`])), [`${rel}/sub/deeper/y.txt`, `${rel}/sub/z.md`]);
  t.deepEqual(paths(await resolveInputs([`${rel}/b.txt`, `${rel}/a.txt`])), [`${rel}/b.txt`, `${rel}/a.txt`]);
});

test('stdin: "-" once is fine, twice is a usage error; no paths is a usage error', async (t) => {
  const dir = await tree(t, { 'a.txt': 'a' });
  // A file's modification time is kept too, for `tally resume` to notice a changed file.
  const mtimeMs = Number(statSync(`${dir}/a.txt`, { bigint: true }).mtimeMs);
  t.deepEqual(await resolveInputs(['-', `${dir}/a.txt`]), [{ path: '-', size: null }, { path: `${dir}/a.txt`, size: 1, mtimeMs }]);
  await t.throwsAsync(resolveInputs(['-', '-']), { instanceOf: UsageError });
  await t.throwsAsync(resolveInputs([]), { instanceOf: UsageError });
});

test('duplicates are read once, under the first spelling', async (t) => {
  const dir = await tree(t, { 'a.txt': 'a', 'sub/b.txt': 'b' });
  await symlink(join(dir, 'a.txt'), join(dir, 'sub', 'link-to-a'));
  const inputs = await resolveInputs([`${dir}/a.txt`, dir, `${dir}/sub/b.txt`, `${dir}/./a.txt`]);
  t.deepEqual(paths(inputs), [`${dir}/a.txt`, `${dir}/sub/b.txt`]);
});

test('globs the shell did not expand: *, ?, [..], **, dotfiles, literal names win', async (t) => {
  const dir = await tree(t, {
    'a.txt': '1', 'b.txt': '2', 'c.md': '3', '.d.txt': '4', 'ab.txt': '5',
    'x/y/deep.txt': '6', 'x/top.txt': '7', 'x/.hid/h.txt': '8', 'lit[1].txt': '9',
  });
  const g = async (pattern: string) => paths(await resolveInputs([`${dir}/${pattern}`])).map((p) => p.slice(dir.length + 1));
  t.deepEqual(await g('*.txt'), ['a.txt', 'ab.txt', 'b.txt', 'lit[1].txt']);
  t.deepEqual(await g('?.txt'), ['a.txt', 'b.txt']);
  t.deepEqual(await g('[ab].txt'), ['a.txt', 'b.txt']);
  t.deepEqual(await g('[!a].*'), ['b.txt', 'c.md']);
  t.deepEqual(await g('.*.txt'), ['.d.txt']);
  t.deepEqual(await g('**/*.txt'), ['a.txt', 'ab.txt', 'b.txt', 'lit[1].txt', 'x/top.txt', 'x/y/deep.txt']);
  t.deepEqual(await g('x/**/deep.txt'), ['x/y/deep.txt']);
  t.deepEqual(await g('*'), ['a.txt', 'ab.txt', 'b.txt', 'c.md', 'lit[1].txt', 'x/.hid/h.txt', 'x/top.txt', 'x/y/deep.txt']);
  // An existing file whose name looks like a pattern is taken literally.
  t.deepEqual(await g('lit[1].txt'), ['lit[1].txt']);
  const error = await t.throwsAsync(resolveInputs([`${dir}/*.pdf`]), { instanceOf: InputError });
  t.is(error?.message, `${dir}/*.pdf: no files match`);
  t.is(error?.exitCode, 2);
});

test('segmentMatcher: classes, ranges, negation, escapes, unclosed bracket', (t) => {
  t.true(segmentMatcher('[a-c]?')('bz'));
  t.false(segmentMatcher('[a-c]?')('dz'));
  t.true(segmentMatcher('[^a-c]')('d'));
  t.true(segmentMatcher('[]x]')(']'));
  t.true(segmentMatcher('a[b')('a[b'));
  t.true(segmentMatcher('\\*')('*'));
  t.false(segmentMatcher('\\*')('x'));
  t.true(segmentMatcher('a.b-c+(d)')('a.b-c+(d)'));
  t.true(segmentMatcher('?')('日'));
  t.false(segmentMatcher('*')('.x'));
});

test('errors name the path: missing, not a regular file, empty directory', async (t) => {
  const dir = await tree(t, { 'a.txt': 'a' });
  await mkdir(join(dir, 'empty', 'nested'), { recursive: true });
  execFileSync('mkfifo', [join(dir, 'fifo')]);

  let error = await t.throwsAsync(resolveInputs([`${dir}/a.txt`, `${dir}/missing.txt`]), { instanceOf: InputError });
  t.is(error?.message, `${dir}/missing.txt: no such file or directory`);
  error = await t.throwsAsync(resolveInputs([`${dir}/fifo`]), { instanceOf: InputError });
  t.is(error?.message, `${dir}/fifo: not a regular file`);
  error = await t.throwsAsync(resolveInputs(['/dev/null']), { instanceOf: InputError });
  t.is(error?.message, '/dev/null: not a regular file');
  error = await t.throwsAsync(resolveInputs([`${dir}/empty`]), { instanceOf: InputError });
  t.is(error?.message, `${dir}/empty: directory contains no files`);
  error = await t.throwsAsync(resolveInputs([`${dir}/a.txt/x`]), { instanceOf: InputError });
  t.is(error?.message, `${dir}/a.txt/x: not a directory`);
  // Inside a directory a FIFO is not a text file the user pointed at: skipped.
  t.deepEqual(paths(await resolveInputs([dir])), [`${dir}/a.txt`]);
});

/** Runs selectInputs(args) as user nobody (via setpriv): its paths and warnings, or its error; null if that is not possible here. */
function selectAsNobody(args: string[]): string | null {
  const module = new URL('../coordinator/inputs.js', import.meta.url).href;
  const script = `import(${JSON.stringify(module)}).then((m) => m.selectInputs(${JSON.stringify(args)}, { dataDirectory: undefined })).then((r) => console.log(JSON.stringify({ paths: r.files.map((f) => f.path), warnings: r.warnings })), (e) => console.log(e.message))`;
  try {
    return execFileSync('setpriv', ['--reuid=nobody', '--regid=nogroup', '--clear-groups', process.execPath, '-e', script], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim();
  } catch {
    return null;
  }
}

// chmod 000 does not deny root: as root the check runs as user nobody, which must be possible.
testNeeding(process.getuid?.() === 0 ? missingNobody() : null, 'an unreadable file named outright is an error; found in a folder, a warning naming it, and the rest is counted', async (t) => {
  const dir = await tree(t, { 'a.txt': 'a', 'secret.txt': 's', 'locked/b.txt': 'b' });
  await chmod(dir, 0o755);
  await chmod(join(dir, 'secret.txt'), 0o000);
  await chmod(join(dir, 'locked'), 0o000);
  t.teardown(() => chmod(join(dir, 'locked'), 0o755));
  const walked = JSON.stringify({ paths: [`${dir}/a.txt`], warnings: [`${dir}/locked: permission denied`, `${dir}/secret.txt: permission denied`] });
  if (process.getuid?.() !== 0) {
    const error = await t.throwsAsync(resolveInputs([`${dir}/secret.txt`]), { instanceOf: InputError });
    t.is(error?.message, `${dir}/secret.txt: permission denied`);
    const selection = await selectInputs([dir], { dataDirectory: undefined });
    t.is(JSON.stringify({ paths: paths(selection.files), warnings: selection.warnings }), walked);
    return;
  }
  const probe = selectAsNobody([`${dir}/a.txt`]);
  t.true(probe !== null && probe.startsWith('{'), `user nobody can select a readable file: ${probe}`);
  t.is(selectAsNobody([`${dir}/secret.txt`]), `${dir}/secret.txt: permission denied`);
  t.is(selectAsNobody([dir]), walked);
  t.is(selectAsNobody([`${dir}/locked`]), `${dir}/locked: permission denied`);
});

test('symlink loops do not hang; dangling and self links inside directories are skipped', async (t) => {
  const dir = await tree(t, { 'a.txt': 'a', 'sub/b.txt': 'b' });
  await symlink('..', join(dir, 'sub', 'up'));
  await symlink('.', join(dir, 'sub', 'self'));
  await symlink('nowhere', join(dir, 'dangling'));
  await symlink('loop', join(dir, 'loop'));
  t.deepEqual(paths(await resolveInputs([dir])), [`${dir}/a.txt`, `${dir}/sub/b.txt`]);
  t.deepEqual(paths(await resolveInputs([`${dir}/sub`])), [`${dir}/sub/b.txt`, `${dir}/sub/up/a.txt`]);
  const error = await t.throwsAsync(resolveInputs([`${dir}/loop`]), { instanceOf: InputError });
  t.is(error?.message, `${dir}/loop: too many levels of symbolic links`);
});

test('paths that name a file already taken are merged, and counted: a file twice, a directory and a file in it, links, overlapping globs', async (t) => {
  const dir = await tree(t, { 'a.txt': 'a', 'sub/b.txt': 'b', 'sub/c.md': 'c' });
  await link(join(dir, 'a.txt'), join(dir, 'sub', 'hard-a.txt'));
  await symlink(join(dir, 'sub', 'b.txt'), join(dir, 'soft-b'));
  const selection = await selectInputs([`${dir}/a.txt`, `${dir}/a.txt`, `${dir}/sub`, `${dir}/sub/b.txt`], { dataDirectory: undefined });
  t.deepEqual(paths(selection.files), [`${dir}/a.txt`, `${dir}/sub/b.txt`, `${dir}/sub/c.md`]);
  // The second a.txt, sub/hard-a.txt (a hard link to it) and sub/b.txt named again.
  t.is(selection.mergedPaths, 3);
  t.deepEqual(selectionNotes(selection), ['tally: 3 paths name files already counted (same file); each file is counted once']);

  const globs = await selectInputs([`${dir}/sub/*`, `${dir}/sub/*.md`, `${dir}/soft-b`], { dataDirectory: undefined });
  t.deepEqual(paths(globs.files), [`${dir}/sub/b.txt`, `${dir}/sub/c.md`, `${dir}/sub/hard-a.txt`]);
  t.is(globs.mergedPaths, 2);
  t.deepEqual(selectionNotes({ files: [], mergedPaths: 1, binarySkips: 0, warnings: [] }), ['tally: 1 path names a file already counted (same file); each file is counted once']);

  const distinct = await selectInputs([`${dir}/a.txt`, `${dir}/sub/c.md`], { dataDirectory: undefined });
  t.is(distinct.mergedPaths, 0);
  t.deepEqual(selectionNotes(distinct), []);
});

test("tally's own data directory: left out of walks and globs (also through a symlink), refused when named", async (t) => {
  const dir = await tree(t, { 'a.txt': 'a', 'share/tally/jetstream/blk.dat': 'x', 'share/tally/server.json': '{}', 'share/other.txt': 'o' });
  const store = join(dir, 'share', 'tally');
  await symlink(store, join(dir, 'store-link'));
  await symlink(join(store, 'server.json'), join(dir, 'server-link.json'));
  const select = (args: string[]) => selectInputs(args, { dataDirectory: store });

  const walked = await select([dir]);
  t.deepEqual(paths(walked.files), [`${dir}/a.txt`, `${dir}/share/other.txt`]);
  t.is(walked.skippedDataDirectory, store);
  t.deepEqual(selectionNotes(walked), [`tally: skipping tally's own data directory ${store}`]);

  const globbed = await select([`${dir}/*`, `${dir}/share/*`, `${dir}/**/*.txt`]);
  t.deepEqual(paths(globbed.files), [`${dir}/a.txt`, `${dir}/share/other.txt`]);
  t.is(globbed.skippedDataDirectory, store);
  // `**` reaches into it like any directory: what it finds there is left out too.
  t.is((await t.throwsAsync(select([`${dir}/**/*.dat`]), { instanceOf: InputError }))?.message, `${dir}/**/*.dat: no files match`);

  // Nothing to say when the walk does not reach it.
  t.is((await select([`${dir}/a.txt`])).skippedDataDirectory, undefined);

  for (const named of [`${store}/jetstream/blk.dat`, store, `${dir}/store-link`, `${dir}/server-link.json`, `${dir}/store-link/jetstream`]) {
    const error = await t.throwsAsync(select([named]), { instanceOf: InputError });
    t.is(error?.message, `${named}: inside tally's own data directory ${store}, which changes while it is counted`);
    t.is(error?.exitCode, 2);
  }
  await mkdir(join(dir, 'only'));
  await symlink(store, join(dir, 'only', 'tally'));
  t.is((await t.throwsAsync(select([join(dir, 'only')])))?.message, `${join(dir, 'only')}: directory contains no files besides tally's own data directory`);
});

test("the note naming the data directory stays one line whatever its name", async (t) => {
  const dir = await tree(t, { 'a.txt': 'a', 'odd\nname\u001b[31m/x': 'x' });
  const store = join(dir, 'odd\nname\u001b[31m');
  const selection = await selectInputs([dir], { dataDirectory: store });
  t.deepEqual(selectionNotes(selection), [`tally: skipping tally's own data directory ${dir}/odd\\nname\\u001b[31m`]);
});
