/**
 * The primes kind, run in-process, against published values of π(10^k), primesieve (an
 * independent sieve, installed by `npm run setup`) on random ranges of every magnitude and on
 * the sieve's edge cases, trial division and Miller–Rabin on windows near 10^12 and near the
 * hard limit, and a plain sieve on random small ranges. Jobs run the default crossing loop
 * (WebAssembly); the checks against primesieve and π(10^k) also count with each loop directly,
 * and `tally primes` runs with TALLY_SIEVE set to each.
 */
import { execFileSync } from 'node:child_process';
import test from 'ava';
import fc from 'fast-check';
import { OptionError, TaskRejectedError, UsageError } from '../shared/errors.js';
import { countPrimesInRange, defaultPrimesTasks, PRIMES_DEFAULT_TASK_SIZE, PRIMES_MAX_TASKS, PRIMES_MAX_TO, PRIMES_MIN_TASK_SIZE, PRIMES_MIN_TASKS, primesKind } from '../shared/kinds/primes.js';
import { sieveChoice, type SieveChoice } from '../shared/primes-wasm.js';
import { runKindLocally } from './helpers/run-kind-locally.js';
import { cleanEnv, runTally } from './helpers/tally.js';

/** The sieve's two crossing loops (shared/primes-wasm.ts): the checks below run on each. */
const SIEVES: SieveChoice[] = ['wasm', 'js'];

async function primes(from: bigint | number | string, to: bigint | number | string, tasks: number | null = null) {
  return runKindLocally(primesKind, { from: String(from), to: String(to), tasks });
}

/** π(10^k), k = 1..10 (OEIS A006880). */
const PI_POWERS_OF_TEN = [4, 25, 168, 1229, 9592, 78498, 664579, 5761455, 50847534, 455052511];

/** Integers per sieve segment (2^19 bytes of 30 integers), counted from the task's first byte. */
const SEGMENT_INTEGERS = 30 * 2 ** 19;

/** Runs primesieve (one thread: ava runs test files side by side) and returns its output. */
function primesieve(args: string[]): string {
  try {
    return execFileSync('primesieve', [...args, '--threads=1'], { encoding: 'utf8' });
  } catch (error) {
    throw new Error(`primesieve failed (is it installed? npm run setup installs it): ${String(error)}`);
  }
}

/** primesieve's count of the primes in lo..hi. */
function primesieveCount(lo: number | bigint, hi: number | bigint): number {
  const from = BigInt(lo) < 0n ? 0n : BigInt(lo);
  if (from > BigInt(hi)) return 0;
  return Number(primesieve([String(from), String(hi), '--count', '--quiet']).trim());
}

/** primesieve's list of the primes in lo..hi. */
function primesieveList(lo: number, hi: number): number[] {
  return primesieve([String(lo), String(hi), '--print']).split('\n').filter(Boolean).map(Number);
}

/** Trial division by 2 and odd d ≤ √n. */
function isPrimeByTrialDivision(n: number): boolean {
  if (n < 2) return false;
  if (n % 2 === 0) return n === 2;
  for (let d = 3; d * d <= n; d += 2) if (n % d === 0) return false;
  return true;
}

function modPow(base: bigint, exponent: bigint, modulus: bigint): bigint {
  let result = 1n;
  base %= modulus;
  for (; exponent > 0n; exponent >>= 1n) {
    if (exponent & 1n) result = (result * base) % modulus;
    base = (base * base) % modulus;
  }
  return result;
}

/** Miller–Rabin with the first 12 primes as bases: deterministic for n < 3.3×10^24. */
function isPrimeByMillerRabin(n: bigint): boolean {
  const bases = [2n, 3n, 5n, 7n, 11n, 13n, 17n, 19n, 23n, 29n, 31n, 37n];
  if (n < 2n) return false;
  for (const p of bases) if (n % p === 0n) return n === p;
  let d = n - 1n;
  let s = 0;
  while ((d & 1n) === 0n) {
    d >>= 1n;
    s++;
  }
  witness: for (const a of bases) {
    let x = modPow(a, d, n);
    if (x === 1n || x === n - 1n) continue;
    for (let i = 1; i < s; i++) {
      x = (x * x) % n;
      if (x === n - 1n) continue witness;
    }
    return false;
  }
  return true;
}

/** Plain sieve of Eratosthenes over 0..hi, counting lo..hi. */
function sieveCount(lo: number, hi: number): number {
  if (hi < 2) return 0;
  const composite = new Uint8Array(hi + 1);
  let count = 0;
  for (let i = 2; i <= hi; i++) {
    if (composite[i]) continue;
    if (i >= lo) count++;
    for (let j = i * i; j <= hi; j += i) composite[j] = 1;
  }
  return count;
}

for (const [index, expected] of PI_POWERS_OF_TEN.entries()) {
  const power = index + 1;
  test(`π(10^${power}) = ${expected}`, async (t) => {
    const { result } = await primes(1, `1e${power}`);
    t.is(result.count, expected);
    t.is(result.to, (10n ** BigInt(power)).toString());
  });
}

test('π(10^8) is the same whatever the task count', async (t) => {
  for (const tasks of [1, 3, 17, 1000]) {
    t.is((await primes(1, 1e8, tasks)).result.count, 5761455, `${tasks} tasks`);
  }
});

test('the result has the documented shape', async (t) => {
  const { result, plan, tasks } = await primes(-10, 100, 4);
  t.deepEqual(result, { job: 'test-job', kind: 'primes', from: '-10', to: '100', tasks: 4, count: 25 });
  t.deepEqual(plan, { totalWeight: 99, totalTasks: 4, unit: '' });
  t.is(tasks[0].input, 'range 2..25');
  t.is(tasks.reduce((w, task) => w + task.weight, 0), 99);
});

test('a window around 10^12 matches trial division', async (t) => {
  const lo = 1e12 - 1000;
  const hi = 1e12 + 2000;
  let expected = 0;
  for (let n = lo; n <= hi; n++) if (isPrimeByTrialDivision(n)) expected++;
  t.is((await primes(lo, hi, 3)).result.count, expected);
});

test('windows near the hard limit match Miller–Rabin', async (t) => {
  const limit = Number(PRIMES_MAX_TO);
  // The very top, and a window 3×10^6 below it (segment edges: see the primesieve tests below).
  for (const [lo, hi] of [[limit - 20_000, limit], [limit - 3e6 - 5000, limit - 3e6 + 5000]]) {
    let expected = 0;
    for (let n = BigInt(lo); n <= BigInt(hi); n++) if (isPrimeByMillerRabin(n)) expected++;
    t.is((await primes(lo, hi, 2)).result.count, expected, `${lo}..${hi}`);
  }
  t.is((await primes(PRIMES_MAX_TO, PRIMES_MAX_TO)).result.count, 0); // 10^15 is even
});

test('random small ranges match a plain sieve', async (t) => {
  await fc.assert(
    fc.asyncProperty(fc.integer({ min: -100, max: 2_000_000 }), fc.integer({ min: 0, max: 600_000 }), fc.integer({ min: 1, max: 9 }), async (lo, length, tasks) => {
      const hi = lo + length;
      t.is((await primes(lo, hi, tasks)).result.count, sieveCount(lo, hi), `${lo}..${hi}`);
    }),
    { numRuns: 60 },
  );
});

test('tiny and non-positive ranges', async (t) => {
  const cases: [string, string, number][] = [
    ['0', '0', 0],
    ['1', '1', 0],
    ['2', '2', 1],
    ['-5', '2', 1],
    ['-1e30', '1', 0],
    ['-1e30', '-1e29', 0],
    ['3', '17', 6],
    ['4', '4', 0],
    ['17', '19', 2],
    ['18', '18', 0],
  ];
  for (const [from, to, expected] of cases) {
    const { result, tasks } = await primes(from, to, 8);
    t.is(result.count, expected, `${from}..${to}`);
    t.true(tasks.length >= 1 && tasks.length <= 8);
  }
  // Nothing below 2 is split: one task, not 10^30 of them.
  t.is((await primes('-1e30', '1', 50)).tasks.length, 1);
});

test('the default task count keeps tasks near PRIMES_DEFAULT_TASK_SIZE integers', async (t) => {
  // 10^11 / 2^30 → 94 tasks, rounded up to a multiple of 4.
  t.is(defaultPrimesTasks(1n, 10n ** 11n), 4 * Math.ceil(Math.ceil((1e11 - 1) / PRIMES_DEFAULT_TASK_SIZE) / 4));
  t.is(defaultPrimesTasks(1n, 10n ** 10n), 12);
  // A smaller range still spreads over PRIMES_MIN_TASKS tasks, unless they would be tiny.
  t.is(defaultPrimesTasks(1n, 10n ** 9n), PRIMES_MIN_TASKS);
  t.is(defaultPrimesTasks(1n, BigInt(3 * PRIMES_MIN_TASK_SIZE)), 3);
  t.is(defaultPrimesTasks(-(10n ** 30n), 100n), 1);
  t.is(defaultPrimesTasks(1n, PRIMES_MAX_TO), PRIMES_MAX_TASKS);
  t.is((await primes(1, 1000)).tasks.length, 1);
});

test('TO above the limit, FROM > TO and bad bounds are usage errors', async (t) => {
  await t.throwsAsync(primes(1, PRIMES_MAX_TO + 1n), { instanceOf: OptionError, message: /^to: .*limit.*10\^15/ });
  await t.throwsAsync(primes(10, 9), { instanceOf: UsageError, message: /greater than TO/ });
  await t.throwsAsync(primes('1.5', 9), { instanceOf: OptionError, message: /^from: / });
  await t.throwsAsync(primes(1, 9, 0), { instanceOf: OptionError, message: /^tasks: / });
});

test('map rejects malformed or over-limit specs with TaskRejectedError', async (t) => {
  const context = { working() {} };
  const bad: unknown[] = [null, 7, { from: 1, to: 9 }, { from: '9', to: '1' }, { from: '1', to: (PRIMES_MAX_TO + 1n).toString() }, { from: 'a', to: '1' }];
  for (const spec of bad) {
    await t.throwsAsync(async () => primesKind.map(spec, new Uint8Array(), context), { instanceOf: TaskRejectedError }, JSON.stringify(spec));
  }
});

for (const sieve of SIEVES) {
  test(`[${sieve}] every range within 0..160 matches primesieve`, async (t) => {
    const primesList = primesieveList(0, 160);
    t.is(primesList.length, 37);
    let mismatches = 0;
    for (let lo = 0; lo <= 160; lo++) {
      for (let hi = lo; hi <= 160; hi++) {
        const expected = primesList.filter((p) => p >= lo && p <= hi).length;
        const got = await countPrimesInRange(lo, hi, undefined, sieve);
        if (got !== expected && mismatches++ < 5) t.fail(`${lo}..${hi}: ${got}, primesieve ${expected}`);
      }
    }
    t.is(mismatches, 0);
  });

  test(`[${sieve}] π(10^k) up to 10^9, counted directly`, async (t) => {
    for (const [index, expected] of PI_POWERS_OF_TEN.slice(0, 9).entries()) {
      t.is(await countPrimesInRange(1, 10 ** (index + 1), undefined, sieve), expected, `10^${index + 1}`);
    }
  });
}

/** Small ranges from 0, ranges up to 10^12 that cross segment edges, and windows near 10^15. */
const anyMagnitude = fc.oneof(
  fc.tuple(fc.integer({ min: -50, max: 3_000_000 }), fc.integer({ min: 0, max: 3_000_000 })),
  fc.tuple(fc.integer({ min: 0, max: 1e12 }), fc.integer({ min: 0, max: 4e7 })),
  fc.tuple(fc.integer({ min: Number(PRIMES_MAX_TO) - 1e10, max: Number(PRIMES_MAX_TO) - 1e7 }), fc.integer({ min: 0, max: 1e7 })),
);

test('random ranges of every magnitude match primesieve', async (t) => {
  await fc.assert(
    fc.asyncProperty(anyMagnitude, fc.integer({ min: 1, max: 4 }), async ([lo, length], tasks) => {
      const hi = lo + length;
      t.is((await primes(lo, hi, tasks)).result.count, primesieveCount(lo, hi), `${lo}..${hi}, ${tasks} tasks`);
    }),
    { numRuns: 45 },
  );
});

test('[js] random ranges of every magnitude match primesieve', async (t) => {
  await fc.assert(
    fc.asyncProperty(anyMagnitude, async ([lo, length]) => {
      const hi = lo + length;
      t.is(await countPrimesInRange(lo, hi, undefined, 'js'), primesieveCount(lo, hi), `${lo}..${hi}`);
    }),
    { numRuns: 30 },
  );
});

test('windows of 10^8 near 10^12 and 5×10^7 near 10^15 match primesieve', async (t) => {
  for (const [lo, hi] of [
    [1e12 - 5e7, 1e12 + 5e7],
    [Number(PRIMES_MAX_TO) - 5e7, Number(PRIMES_MAX_TO)],
  ]) {
    t.is((await primes(lo, hi, 3)).result.count, primesieveCount(lo, hi), `${lo}..${hi}`);
  }
});

for (const sieve of SIEVES) {
  test(`[${sieve}] ranges ending or starting at squares of sieving primes match primesieve`, async (t) => {
    // The first sieved primes, a few in the middle, and the largest below √10^15.
    const roots = [29, 31, 37, 97, 65_521, 999_983, ...primesieveList(31_622_700, 31_622_776)];
    for (const p of roots) {
      const square = p * p;
      for (const [lo, hi] of [
        [square - 3000, square],
        [square - 3000, square - 1],
        [square, square + 3000],
        [square, square],
        [square - 1, square + 1],
      ]) {
        t.is(await countPrimesInRange(lo, hi, undefined, sieve), primesieveCount(lo, hi), `${lo}..${hi} (${p}²)`);
      }
    }
  });

  test(`[${sieve}] ranges ending around segment edges match primesieve`, async (t) => {
    // Segments start at the task's first byte (30 integers each): from 0 and from an odd spot.
    for (const lo of [0, 1e12 + 17]) {
      const origin = 30 * Math.floor(lo / 30);
      for (const segments of [1, 2]) {
        for (const delta of [-31, -30, -29, -1, 0, 1, 29, 30, 31]) {
          const hi = origin + segments * SEGMENT_INTEGERS + delta;
          t.is(await countPrimesInRange(lo, hi, undefined, sieve), primesieveCount(lo, hi), `${lo}..${hi}`);
        }
      }
    }
  });
}

// Serial: ava runs serial tests alone, so no other test's CPU work starves the loop.
test.serial('a long map yields the event loop between segments', async (t) => {
  // Counts event-loop turns with a chain of immediates: every yield of the map (one
  // setImmediate, after the poll phase where NATS sockets are read) lets one link run. A timer
  // would not do: after a single yield the map can finish in the same loop iteration, before
  // the timers phase (CI saw 0 ticks of a 5 ms interval in a 102 ms map with one yield).
  let turns = 0;
  let counting = true;
  const turn = (): void => {
    turns++;
    if (counting) setImmediate(turn);
  };
  setImmediate(turn);
  const started = performance.now();
  const partial = await primesKind.map({ from: '1', to: '400000000' }, new Uint8Array(), { working() {} });
  const elapsed = performance.now() - started;
  counting = false;
  t.is(new TextDecoder().decode(partial), '21336326'); // π(4×10^8), published tables
  // The map yields after the first segment that ends 50 ms or more after the last yield: at
  // least one turn per 150 ms even when a loaded machine stretches segments to 100 ms.
  t.true(turns >= Math.max(1, Math.floor(elapsed / 150)), `${turns} turns in ${elapsed.toFixed(0)} ms`);
});

test('the WebAssembly loop is built and chosen by default', (t) => {
  t.is(sieveChoice(), 'wasm');
});

test('tally primes: the same count with TALLY_SIEVE=wasm and =js; a bad value is one line, exit 2', async (t) => {
  const args = ['primes', '999999000', '1e9', '--format', 'json'];
  const [wasm, js] = await Promise.all([runTally(args, { env: cleanEnv({ TALLY_SIEVE: 'wasm' }) }), runTally(args, { env: cleanEnv({ TALLY_SIEVE: 'js' }) })]);
  for (const run of [wasm, js]) t.is(run.code, 0, run.stderr);
  t.is(JSON.parse(wasm.stdout).count, primesieveCount(999_999_000, 1e9));
  t.is(JSON.parse(js.stdout).count, JSON.parse(wasm.stdout).count);
  const bad = await runTally(args, { env: cleanEnv({ TALLY_SIEVE: 'simd' }) });
  t.is(bad.code, 2);
  t.regex(bad.stderr, /TALLY_SIEVE: must be auto, wasm or js/);
  t.is(bad.stderr.trim().split('\n').length, 1, bad.stderr);
});
