/**
 * Folders the way users expect, through the real CLI (embedded): binary files in a walk skipped
 * and reported, named ones counted; --include / --exclude; version-control folders left out;
 * broken symlinks and special files a warning each while the count goes on. The truth is the
 * reference counter over exactly the files that should have been counted.
 */
import test from 'ava';
import { execFileSync } from 'node:child_process';
import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { runTally, tempDir } from './helpers/tally.js';
import { referenceUnicodeCount } from './helpers/reference-counter.js';
import { utf8 } from './helpers/texts.js';

const dir = tempDir('tally-walk-');
test.after.always(() => dir.remove());
const root = join(dir.path, 'corpus');

const TEXTS = {
  'a.txt': 'alpha beta alpha',
  'docs/b.md': 'gamma delta',
  'docs/deep/c.md': 'epsilon gamma',
  'notes/d.txt': 'zeta eta theta',
};
// A binary file whose bytes hold words, a compressed one (gzip bytes hold NULs, yet it is text),
// and words inside .git that must not be counted.
const BINARY = Buffer.concat([utf8('PNG'), Buffer.from([0, 1, 2]), utf8(' binaryword ')]);
const GZIPPED = 'iota kappa iota';

test.before(() => {
  for (const [name, text] of Object.entries(TEXTS)) {
    mkdirSync(join(root, name, '..'), { recursive: true });
    writeFileSync(join(root, name), text);
  }
  mkdirSync(join(root, 'img'));
  writeFileSync(join(root, 'img', 'logo.png'), BINARY);
  writeFileSync(join(root, 'archive.gz'), gzipSync(GZIPPED));
  mkdirSync(join(root, '.git', 'objects'), { recursive: true });
  writeFileSync(join(root, '.git', 'HEAD'), 'gitword gitword');
  symlinkSync('nowhere', join(root, 'dangling'));
  execFileSync('mkfifo', [join(root, 'pipe')]);
});

interface Counted {
  code: number | null;
  stderr: string;
  totalWords: number;
  counts: Array<[string, number]>;
}

async function count(args: string[]): Promise<Counted> {
  const run = await runTally(['count', ...args, '--format', 'json', '--top', '0', '--workers', '1']);
  const json = run.code === 0 ? (JSON.parse(run.stdout) as { totalWords: number; counts: Array<[string, number]> }) : { totalWords: -1, counts: [] };
  return { code: run.code, stderr: run.stderr, ...json };
}

function truth(texts: Array<string | Uint8Array>) {
  const reference = referenceUnicodeCount(texts.map((text) => (typeof text === 'string' ? utf8(text) : text)));
  return { totalWords: reference.totalWords, counts: reference.counts };
}

const plain = Object.values(TEXTS);

test('a walk counts the text files and compressed ones, skips binary files and .git, and says what it left out', async (t) => {
  const got = await count([root]);
  t.is(got.code, 0, got.stderr);
  t.deepEqual({ totalWords: got.totalWords, counts: got.counts }, truth([...plain, GZIPPED]));
  t.deepEqual(got.stderr.trim().split('\n'), [
    `tally: warning: ${root}/dangling: broken symbolic link; not counted`,
    `tally: warning: ${root}/pipe: not a regular file; not counted`,
    'tally: skipped 1 binary file (a NUL byte in the first 8 KiB; --binary count counts them)',
  ]);
});

test('--binary count counts binary files in walks; a binary file named outright is always counted', async (t) => {
  const all = await count([root, '--binary', 'count']);
  t.deepEqual({ totalWords: all.totalWords, counts: all.counts }, truth([...plain, GZIPPED, BINARY]));
  t.notRegex(all.stderr, /binary/);
  const named = await count([join(root, 'img', 'logo.png')]);
  t.is(named.code, 0, named.stderr);
  t.deepEqual({ totalWords: named.totalWords, counts: named.counts }, truth([BINARY]));
  t.is(named.stderr, '');
});

test('--include and --exclude: names, paths below the folder, ** and repeated patterns; exclude wins', async (t) => {
  const md = await count([root, '--include', '*.md']);
  t.deepEqual(md.counts, truth([TEXTS['docs/b.md'], TEXTS['docs/deep/c.md']]).counts);
  const below = await count([root, '--include', 'docs/**', '--include', 'a.txt']);
  t.deepEqual(below.counts, truth([TEXTS['a.txt'], TEXTS['docs/b.md'], TEXTS['docs/deep/c.md']]).counts);
  const pruned = await count([root, '--exclude', 'docs', '--exclude', '*.gz', '--exclude', 'img']);
  t.deepEqual(pruned.counts, truth([TEXTS['a.txt'], TEXTS['notes/d.txt']]).counts);
  t.notRegex(pruned.stderr, /binary/, 'an excluded folder is not read at all');
  const both = await count([root, '--include', '*.md', '--exclude', 'deep']);
  t.deepEqual(both.counts, truth([TEXTS['docs/b.md']]).counts);
  // A file named outright is not filtered.
  const named = await count([join(root, 'a.txt'), '--include', '*.md']);
  t.deepEqual(named.counts, truth([TEXTS['a.txt']]).counts);
});

test('filters that leave nothing, a special file named outright, and bad values: exit 2, one line', async (t) => {
  const nothing = await runTally(['count', root, '--include', '*.pdf']);
  t.is(nothing.code, 2);
  t.is(nothing.stderr, `tally: ${root}: no files to count in it: none matches --include and --exclude\n`);
  const pipe = await runTally(['count', join(root, 'pipe')]);
  t.is(pipe.code, 2);
  t.is(pipe.stderr, `tally: ${root}/pipe: not a regular file\n`);
  const empty = await runTally(['count', root, '--include', '']);
  t.is(empty.code, 2);
  t.is(empty.stderr, 'tally: --include: the pattern is empty\n');
  const mode = await runTally(['count', root, '--binary', 'maybe']);
  t.is(mode.code, 2);
  t.regex(mode.stderr, /--binary.*maybe.*skip, count/);
});
