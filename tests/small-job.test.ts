/**
 * The embedded head start's guess of a small job (coordinator/embedded/small-job.ts), whose
 * worker processes are held back for the coordinator's stand-in: which command lines it takes
 * for small, on real files of known sizes, and that its list of options that take a value is
 * the one the commands themselves define (an option missing there would read its value as an
 * input; a flag listed there would hide the input after it).
 */
import test from 'ava';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { SMALL_JOB_BYTES, VALUE_OPTIONS, isSmallJob } from '../coordinator/embedded/small-job.js';
import { buildProgram } from '../coordinator/cli.js';
import { KIND_NAMES } from '../shared/kinds/index.js';
import { tempDir } from './helpers/tally.js';

const dir = tempDir('tally-small-job-');
test.after.always(() => dir.remove());
const file = (name: string, bytes: number) => {
  const path = join(dir.path, name);
  writeFileSync(path, Buffer.alloc(bytes, 'a '));
  return path;
};

test('sums, primes and factorials: small by their numbers and task counts', (t) => {
  const small = (...args: string[]) => isSmallJob(args);
  t.true(small('sum', '1', '10'));
  t.true(small('sum', '-5', '1e30', '--workers', '2', '--format', 'json'), 'a sum costs the same at any magnitude');
  t.true(small('sum', '1', '10', '--tasks', '64'));
  t.false(small('sum', '1', '10', '--tasks', '65'), 'each task is a round trip');
  t.false(small('sum', '1', '10', '--tasks=1000'));
  t.false(small('sum', '1', '10', '20'), 'a third number: only the parser can tell');
  t.false(small('sum', '1', 'ten'));
  t.true(small('primes', '1', '1e6'));
  t.true(small('primes', '1_000_000_000', '1_019_999_999'), '2·10^7 integers');
  t.true(small('primes', '1', '2e7'), '2·10^7 integers');
  t.false(small('primes', '0', '2e7'), 'one more');
  t.false(small('primes', '1', '1e10'));
  t.true(small('factorial', '20', '1000', '20000'));
  t.false(small('factorial', '20001'));
  t.false(small('factorial', '20', '--split', '100'));
  t.false(small('resume', 'abc-123'));
  t.false(small('jobs'));
  t.false(small('sum', '1', '10', '-h'), 'a short option: only the parser can read it');
});

test('counts and n-grams: small when every input is a regular file and all of them hold at most SMALL_JOB_BYTES', (t) => {
  const a = file('a.txt', 1000);
  const b = file('b.txt', SMALL_JOB_BYTES - 1000);
  const c = file('c.txt', 1);
  const folder = join(dir.path, 'folder');
  mkdirSync(folder, { recursive: true });
  writeFileSync(join(folder, 'x.txt'), 'x');
  t.true(isSmallJob(['count', a]));
  t.true(isSmallJob(['count', a, b]), 'exactly SMALL_JOB_BYTES');
  t.false(isSmallJob(['count', a, b, c]), 'one byte more');
  t.true(isSmallJob(['count', '--top', '5', a, '--tokenizer=whitespace', '--case-sensitive', c]), 'option values are not inputs; a flag takes none');
  t.true(isSmallJob(['count', '--', a]));
  t.false(isSmallJob(['count', folder]), 'a folder: its size is not known without a walk');
  t.false(isSmallJob(['count', join(dir.path, '*.txt')]), 'a glob');
  t.false(isSmallJob(['count', 'https://example.org/a.txt']));
  t.false(isSmallJob(['count', '-']), 'stdin');
  t.false(isSmallJob(['count', join(dir.path, 'missing.txt')]));
  t.false(isSmallJob(['count']));
  t.false(isSmallJob(['count', '--top', a]), 'the file is --top\'s value: no input left');
  t.true(isSmallJob(['ngrams', '2', a]));
  t.false(isSmallJob(['ngrams', a]), 'N comes first');
});

test("the options that take a value are the job commands' own", async (t) => {
  const program = await buildProgram();
  const taking = new Set<string>();
  const flags = new Set<string>();
  for (const command of program.commands.filter((c) => KIND_NAMES.includes(c.name()))) {
    for (const option of command.options) {
      if (!option.long) continue;
      (option.required || option.optional ? taking : flags).add(option.long);
    }
  }
  t.deepEqual([...VALUE_OPTIONS].sort(), [...taking].sort());
  t.true(flags.size > 5, 'the flags were read too');
  for (const flag of flags) t.false(VALUE_OPTIONS.has(flag), flag);
});
