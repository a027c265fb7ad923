/**
 * The factorial kind, run in-process, against a plain running product (digits via String,
 * sha256 via node:crypto), Legendre's formula for trailing zeros, and published values.
 */
import test from 'ava';
import fc from 'fast-check';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { InputError, OptionError, TaskRejectedError, UsageError } from '../shared/errors.js';
import {
  defaultFactorialSplit,
  FACTORIAL_MAX_N,
  FACTORIAL_MAX_SPLIT,
  FACTORIAL_MAX_TOTAL_N,
  factorialKind,
  type FactorialEntry,
  type FactorialOptions,
} from '../shared/kinds/factorial.js';
import { runKindLocally } from './helpers/run-kind-locally.js';
import { toBytes } from '../shared/bigint-bytes.js';
import { describeInline, describeInThreads, describeWithGmp, digitsBound, startConverter } from '../shared/kinds/factorial-describe.js';
import { gmpDecimal } from '../shared/gmp-decimal.js';
import { legendreExponent } from '../shared/prime-powers.js';

async function factorial(numbers: (string | number)[], split: number | null = null, outputDir: string | null = null) {
  return runKindLocally(factorialKind, { numbers: numbers.map(String), split, outputDir });
}

/** N! by a running product: slow but obviously right. */
function plainFactorial(n: number): bigint {
  let product = 1n;
  for (let i = 2n; i <= BigInt(n); i++) product *= i;
  return product;
}

/** Legendre: the exponent of 5 in N! (2s are always more plentiful). */
function legendreZeros(n: number): number {
  let zeros = 0;
  for (let power = 5; power <= n; power *= 5) zeros += Math.floor(n / power);
  return zeros;
}

function expectedEntry(n: number): FactorialEntry {
  const decimal = plainFactorial(n).toString();
  return {
    n,
    digits: decimal.length,
    trailingZeros: legendreZeros(n),
    leading: decimal.slice(0, 20),
    sha256: createHash('sha256').update(decimal).digest('hex'),
  };
}

function tempDir(t: import('ava').ExecutionContext): string {
  const dir = mkdtempSync(join(tmpdir(), 'tally-factorial-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

test('known values: 0!, 1!, 20!, 100!, 1000!, 10000!', async (t) => {
  const { result } = await factorial([0, 1, 20, 100, 1000, 10000]);
  t.is(result.kind, 'factorial');
  t.is(result.job, 'test-job');
  const [zero, one, twenty, hundred, thousand, tenThousand] = result.results;
  t.like(zero, { n: 0, digits: 1, trailingZeros: 0, leading: '1' });
  t.like(one, { n: 1, digits: 1, trailingZeros: 0, leading: '1' });
  t.like(twenty, { n: 20, digits: 19, trailingZeros: 4, leading: '2432902008176640000' });
  t.is(twenty.sha256, createHash('sha256').update('2432902008176640000').digest('hex'));
  t.like(hundred, { digits: 158, trailingZeros: 24, leading: '93326215443944152681' });
  t.like(thousand, { digits: 2568, trailingZeros: 249, leading: '40238726007709377354' });
  t.like(tenThousand, { digits: 35660, trailingZeros: 2499, leading: '28462596809170545189' });
});

test('N ≤ 3000 matches a plain product, Legendre and node:crypto', async (t) => {
  const numbers = [2, 3, 5, 10, 24, 25, 99, 125, 500, 1234, 2999, 3000];
  const { result } = await factorial(numbers, 7);
  t.deepEqual(result.results, numbers.map(expectedEntry));
});

test('every split K from 1 to beyond N gives the same answer, with min(K, N) tasks', async (t) => {
  const expected = expectedEntry(100);
  for (const split of [1, 2, 3, 7, 33, 99, 100, 101, 1000, FACTORIAL_MAX_SPLIT]) {
    const { result, tasks } = await factorial([100], split);
    t.deepEqual(result.results, [expected], `split ${split}`);
    t.is(tasks.length, Math.min(split, 100));
  }
  // 0! and 1! are one task whatever K.
  t.is((await factorial([0, 1], 50)).tasks.length, 2);
});

test('random N and K agree with the plain product', async (t) => {
  await fc.assert(
    fc.asyncProperty(fc.integer({ min: 0, max: 700 }), fc.integer({ min: 1, max: 60 }), async (n, split) => {
      t.deepEqual((await factorial([n], split)).result.results, [expectedEntry(n)]);
    }),
    { numRuns: 60 },
  );
});

test('tasks tile 1..N geometrically (ends near N^(i/K)) and carry their weight', async (t) => {
  const { tasks, plan } = await factorial([10, 7], 3);
  // 10^(1/3) ≈ 2.2, 10^(2/3) ≈ 4.6; 7^(1/3) ≈ 1.9, 7^(2/3) ≈ 3.7.
  t.deepEqual(
    tasks.map((task) => task.spec),
    [{ n: 10, lo: 1, hi: 2 }, { n: 10, lo: 3, hi: 4 }, { n: 10, lo: 5, hi: 10 }, { n: 7, lo: 1, hi: 1 }, { n: 7, lo: 2, hi: 3 }, { n: 7, lo: 4, hi: 7 }],
  );
  t.is(tasks[0].input, '10! primes 1..2');
  t.deepEqual(plan, { totalWeight: 17, totalTasks: 6, unit: '' });
});

test('results follow the given order, duplicates included, computed once', async (t) => {
  const { result, tasks } = await factorial(['5', '3', '5', '1e1'], 1);
  t.deepEqual(result.results.map((r) => r.n), [5, 3, 5, 10]);
  t.deepEqual(result.results[0], result.results[2]);
  t.like(result.results[3], { leading: '3628800' });
  t.is(tasks.length, 3);
});

test('a worker-thread finalize (N above the inline threshold) matches the plain product', async (t) => {
  const n = 60_000;
  const { result } = await factorial([n], 3);
  t.deepEqual(result.results, [expectedEntry(n)]);
});

test('10^6! end to end: 5,565,709 digits, Legendre zeros, published leading digits, sha256 as gmpy2', async (t) => {
  const expected = pythonFactorial(1_000_000, true);
  t.is(expected.digits, 5_565_709); // the published digit count
  const { result, tasks } = await factorial(['1e6']);
  // The documented default: one sub-range per 500,000 numbers, so 2 for 10^6.
  t.is(tasks.length, 2);
  t.like(result.results[0], { n: 1_000_000, digits: 5_565_709, trailingZeros: legendreZeros(1_000_000), leading: '82639316883312400623', sha256: expected.sha256 });
  // Another split: other partials, the same value.
  t.like((await factorial(['1e6'], 5)).result.results[0], { digits: 5_565_709, sha256: expected.sha256 });
});

test('the default split is one sub-range per 500,000 numbers, rounded up, at least one (as documented in shared/kinds/factorial.ts)', async (t) => {
  // Written out, not computed with the formula under test: 1 up to 500,000, 2 for 10^6, 10 for 5×10^6.
  const expected: Array<[number, number]> = [[0, 1], [1, 1], [499_999, 1], [500_000, 1], [500_001, 2], [1_000_000, 2], [1_000_001, 3], [5_000_000, 10]];
  for (const [n, k] of expected) t.is(defaultFactorialSplit(n), k, `N = ${n}`);
  // And split() follows it: an N of 1,200,000 with no --split gives 3 tasks tiling 1..N.
  const specs: unknown[] = [];
  for await (const task of factorialKind.split({ numbers: ['1200000'], split: null, outputDir: null }, { maxBodyBytes: 1 << 20 })) specs.push(task.spec);
  t.is(specs.length, 3);
  t.like(specs[0], { n: 1_200_000, lo: 1 });
  t.like(specs[2], { n: 1_200_000, hi: 1_200_000 });
});

test('outputDir: N.txt holds exactly the decimal value and a newline; the directory is created', async (t) => {
  const dir = join(tempDir(t), 'nested', 'out');
  const { result } = await factorial([0, 25, 1000, 60_000], 4, dir);
  for (const n of [0, 25, 1000, 60_000]) {
    t.is(readFileSync(join(dir, `${n}.txt`), 'latin1'), `${plainFactorial(n)}\n`, `${n}.txt`);
  }
  t.deepEqual(readdirSync(dir).sort(), ['0.txt', '1000.txt', '25.txt', '60000.txt']); // no temporary files left
  t.is(result.results[1].sha256, createHash('sha256').update(plainFactorial(25).toString()).digest('hex'));
});

test('outputDir replaces an existing file', async (t) => {
  const dir = tempDir(t);
  writeFileSync(join(dir, '5.txt'), 'stale');
  await factorial([5], null, dir);
  t.is(readFileSync(join(dir, '5.txt'), 'latin1'), '120\n');
});

test('an outputDir that cannot be a directory fails in plan, before any work', async (t) => {
  const file = join(tempDir(t), 'a-file');
  writeFileSync(file, '');
  await t.throwsAsync(factorial([5], null, file), { instanceOf: InputError });
  await t.throwsAsync(factorial([5], null, join(file, 'below')), { instanceOf: InputError });
  t.false(existsSync(join(file, '5.txt')));
});

test('limits and bad numbers are usage errors', async (t) => {
  await t.throwsAsync(factorial([FACTORIAL_MAX_N + 1]), { instanceOf: OptionError, message: /^numbers: .*limit/ });
  await t.throwsAsync(factorial(['-1']), { instanceOf: OptionError, message: /^numbers: / });
  await t.throwsAsync(factorial(['1.5']), { instanceOf: OptionError, message: /^numbers: '1\.5' is not an integer/ });
  await t.throwsAsync(factorial([]), { instanceOf: UsageError });
  await t.throwsAsync(factorial([10], 0), { instanceOf: OptionError, message: /^split: / });
  await t.throwsAsync(factorial([10], FACTORIAL_MAX_SPLIT + 1), { instanceOf: UsageError, message: /^split: / });
  // Distinct N count towards the total once; plan only, so a regression cannot start ~50 s of work.
  const overTotal = [FACTORIAL_MAX_N, FACTORIAL_MAX_TOTAL_N - FACTORIAL_MAX_N - 1, 2].map(String);
  await t.throwsAsync(async () => factorialKind.plan({ numbers: overTotal, split: null, outputDir: null }), {
    instanceOf: UsageError,
    message: new RegExp(`${FACTORIAL_MAX_TOTAL_N}`),
  });
  // The limit itself is accepted (plan only: computing it takes ~25 s).
  await t.notThrowsAsync(async () => factorialKind.plan({ numbers: [String(FACTORIAL_MAX_N)], split: null, outputDir: null }));
});

test('map rejects malformed or over-limit specs with TaskRejectedError', async (t) => {
  const context = { working() {} };
  const bad: unknown[] = [null, {}, { n: '5', lo: 1, hi: 5 }, { n: 5, lo: 0, hi: 5 }, { n: 5, lo: 1, hi: 6 }, { n: 5, lo: 4, hi: 2 }, { n: 1.5, lo: 1, hi: 1 }, { n: FACTORIAL_MAX_N + 1, lo: 1, hi: 2 }];
  for (const spec of bad) {
    await t.throwsAsync(async () => factorialKind.map(spec, new Uint8Array(), context), { instanceOf: TaskRejectedError }, JSON.stringify(spec));
  }
});

test('reduce refuses unexpected or malformed partials; finalize refuses missing ones', async (t) => {
  const options: FactorialOptions = { numbers: ['10'], split: 2, outputDir: null };
  const context = { working() {} };
  const partial = await factorialKind.map({ n: 10, lo: 1, hi: 3 }, new Uint8Array(), context);
  const acc = factorialKind.init(options);
  t.throws(() => factorialKind.reduce(acc, new TextEncoder().encode('garbage'), 0));
  const misaligned = await factorialKind.map({ n: 10, lo: 1, hi: 4 }, new Uint8Array(), context);
  t.throws(() => factorialKind.reduce(factorialKind.init(options), misaligned, 0));
  factorialKind.reduce(acc, partial, 0);
  t.throws(() => factorialKind.reduce(acc, partial, 1)); // the same sub-range twice
  await t.throwsAsync(async () => factorialKind.finalize(acc, { job: 'j', tasks: 2 }, options), { message: /missing/ });
});

/** Digit count and sha256 of N! by an independent program: Python (/usr/bin/python3, Debian's, has gmpy2). */
function pythonFactorial(n: number, useGmpy2: boolean): { digits: number; sha256: string } {
  const compute = useGmpy2 ? `import gmpy2; d = gmpy2.fac(${n}).digits()` : `import math, sys; sys.set_int_max_str_digits(0); d = str(math.factorial(${n}))`;
  const code = `${compute}\nimport hashlib; print(len(d), hashlib.sha256(d.encode()).hexdigest())`;
  const run = spawnSync('/usr/bin/python3', ['-c', code], { encoding: 'utf8' });
  if (run.status !== 0) throw new Error(`python3 failed: ${run.stderr}`);
  const [digits, sha256] = run.stdout.trim().split(' ');
  return { digits: Number(digits), sha256 };
}

test('moderate N, around the inline/thread threshold and task edges, match Python math.factorial', async (t) => {
  // 50,000 is the last N described inline, 50,001 the first in threads; 30,011 and 65,537 are
  // primes (the last task ends on one), 15,625 = 5^6 (a jump in trailing zeros).
  const numbers = [15_625, 30_011, 50_000, 50_001, 65_537];
  const { result } = await factorial(numbers, 3);
  for (const [i, n] of numbers.entries()) {
    const expected = pythonFactorial(n, false);
    t.like(result.results[i], { n, digits: expected.digits, sha256: expected.sha256, trailingZeros: legendreZeros(n) }, `${n}!`);
  }
});

test('the describer works alone, same digits, when its converter is gone or built for too few digits', async (t) => {
  const n = 60_000;
  const expected = expectedEntry(n);
  const partial = () => toBytes(plainFactorial(n) / (2n ** BigInt(legendreExponent(n, 2)) * 5n ** BigInt(legendreExponent(n, 5))));
  const gone = startConverter(digitsBound(n));
  await gone.worker.terminate();
  t.deepEqual((await describeInThreads(n, [partial()], false, gone)).entry, expected, 'converter terminated');
  t.deepEqual((await describeInThreads(n, [partial()], false, startConverter(1_000))).entry, expected, 'ladder too short');
  t.deepEqual((await describeInThreads(n, [partial()], false)).entry, expected, 'converter started on the spot');
  // The bound is an upper bound, and close: N!/10^z has at most 2 digits fewer.
  for (const m of [2, 10, 1000, 60_000, 1_000_000]) {
    const actual = m === 1_000_000 ? 5_565_709 - 249_998 : plainFactorial(m).toString().length - legendreZeros(m);
    t.true(digitsBound(m) >= actual && digitsBound(m) <= actual + 3, `${m}: bound ${digitsBound(m)}, actual ${actual}`);
  }
});

test('GMP (the native addon) and V8 BigInts in two threads write the same digits; a wrong product fails the check there too', async (t) => {
  const gmp = gmpDecimal();
  // npm run setup builds the addon where libgmp-dev is; CI (which installs it) must have it.
  if (!gmp) {
    t.falsy(process.env.CI, 'the GMP addon is not built (native/build/Release/tally_gmp.node)');
    t.pass('GMP addon not built here: the BigInt path alone is tested');
    return;
  }
  t.regex(gmp.gmpVersion, /^\d+\.\d+/);
  const n = 60_000;
  const odd = plainFactorial(n) / (2n ** BigInt(legendreExponent(n, 2)) * 5n ** BigInt(legendreExponent(n, 5)));
  // Three partials whose product is the odd part, as the tasks would send them.
  const a = 3n ** 5000n;
  const b = 7n ** 3000n;
  // Each with an ArrayBuffer of its own, as reduce leaves them (the threads path moves them).
  const parts = () => [toBytes(a), toBytes(b), toBytes(odd / (a * b))].map((bytes) => new Uint8Array(bytes));
  t.is(odd % (a * b), 0n);
  const viaGmp = await describeWithGmp(n, parts(), true, gmp);
  const viaThreads = await describeInThreads(n, parts(), true);
  t.deepEqual(viaGmp.entry, expectedEntry(n));
  t.deepEqual(viaGmp.entry, viaThreads.entry);
  t.deepEqual(Buffer.from(viaGmp.decimal!), Buffer.from(viaThreads.decimal!));
  await t.throwsAsync(describeWithGmp(n, [toBytes(odd + 2n)], false, gmp), { message: /60000!: the digits computed fail the check/ });
  // No partials (an empty product) is 1.
  t.is(await gmp.decimal([], 3), '8');
});

test('a wrong value never becomes a result: the digits are checked against N! mod a prime', (t) => {
  const n = 30;
  const right = plainFactorial(n) / (2n ** BigInt(legendreExponent(n, 2)) * 5n ** BigInt(legendreExponent(n, 5)));
  t.deepEqual(describeInline(n, [toBytes(right)], false).entry, expectedEntry(n));
  t.throws(() => describeInline(n, [toBytes(right + 2n)], false), { message: /30!: the digits computed fail the check/ });
});
