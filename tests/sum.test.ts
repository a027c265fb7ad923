/**
 * The sum kind, run in-process (split → map → reduce → finalize), against Gauss's formula
 * written here and a plain loop on small ranges.
 */
import test from 'ava';
import fc from 'fast-check';
import { OptionError, TaskRejectedError, UsageError } from '../shared/errors.js';
import { defaultSumTasks, SUM_DEFAULT_TASKS, SUM_MAX_TASKS, sumKind, type SumOptions } from '../shared/kinds/sum.js';
import { runKindLocally } from './helpers/run-kind-locally.js';

/** Gauss: 1 + … + n = n(n+1)/2, so a..b = T(b) − T(a−1). Valid for any sign. */
function gauss(a: bigint, b: bigint): bigint {
  const triangle = (n: bigint): bigint => (n * (n + 1n)) / 2n;
  return triangle(b) - triangle(a - 1n);
}

function loopSum(a: bigint, b: bigint): bigint {
  let sum = 0n;
  for (let i = a; i <= b; i++) sum += i;
  return sum;
}

async function sum(from: bigint | string, to: bigint | string, tasks: number | null = 8) {
  return runKindLocally(sumKind, { from: String(from), to: String(to), tasks });
}

/** The tasks' ranges must tile from..to exactly, in order. */
function assertTiles(t: import('ava').ExecutionContext, tasks: { spec: unknown }[], from: bigint, to: bigint): void {
  let expected = from;
  for (const task of tasks) {
    const spec = task.spec as { from: string; to: string };
    t.is(BigInt(spec.from), expected);
    t.true(BigInt(spec.to) >= BigInt(spec.from));
    expected = BigInt(spec.to) + 1n;
  }
  t.is(expected, to + 1n);
}

test('1..100 is 5050, with the documented result shape', async (t) => {
  const { result, tasks, plan } = await sum(1n, 100n, 8);
  t.deepEqual(result, { job: 'test-job', kind: 'sum', from: '1', to: '100', tasks: 8, sum: '5050' });
  t.is(tasks.length, 8);
  t.deepEqual(plan, { totalWeight: 100, totalTasks: 8, unit: '' });
  t.is(tasks.reduce((w, task) => w + task.weight, 0), 100);
  assertTiles(t, tasks, 1n, 100n);
  t.is(tasks[0].input, 'range 1..12');
});

test('small ranges match a plain loop, every task count', async (t) => {
  for (const [a, b] of [[1n, 1n], [0n, 0n], [-5n, 5n], [-100n, -1n], [-7n, 13n], [999n, 1234n]] as const) {
    for (const tasks of [1, 2, 3, 7, 50]) {
      const { result } = await sum(a, b, tasks);
      t.is(result.sum, loopSum(a, b).toString(), `${a}..${b} in ${tasks} tasks`);
    }
  }
});

test('huge and negative bounds (±10^30) are exact', async (t) => {
  const big = 10n ** 30n;
  t.is((await sum(-big, big, 13)).result.sum, '0');
  t.is((await sum(1n, big, 64)).result.sum, ((big * (big + 1n)) / 2n).toString());
  t.is((await sum(-big, -1n, 5)).result.sum, (-(big * (big + 1n)) / 2n).toString());
  t.is((await sum(big, big, 4)).result.sum, big.toString());
  const { result, tasks } = await sum(-big + 3n, big * 7n + 11n, 97);
  t.is(result.sum, gauss(-big + 3n, big * 7n + 11n).toString());
  assertTiles(t, tasks, -big + 3n, big * 7n + 11n);
});

test('bounds given in scientific or separated form are accepted and normalised', async (t) => {
  const { result } = await sum('-1e3', '1_000_000', 4);
  t.is(result.from, '-1000');
  t.is(result.to, '1000000');
  t.is(result.sum, gauss(-1000n, 1_000_000n).toString());
});

test('random ranges agree with Gauss, tasks tile the range', async (t) => {
  const limit = 10n ** 30n;
  await fc.assert(
    fc.asyncProperty(fc.bigInt({ min: -limit, max: limit }), fc.bigInt({ min: 0n, max: limit }), fc.integer({ min: 1, max: 40 }), async (a, length, tasks) => {
      const b = a + length;
      const run = await sum(a, b, tasks);
      t.is(run.result.sum, gauss(a, b).toString());
      t.is(run.tasks.length, Number(length + 1n < BigInt(tasks) ? length + 1n : BigInt(tasks)));
      assertTiles(t, run.tasks, a, b);
    }),
    { numRuns: 200 },
  );
});

test('random small ranges agree with a plain loop', async (t) => {
  await fc.assert(
    fc.asyncProperty(fc.integer({ min: -500, max: 500 }), fc.integer({ min: 0, max: 300 }), fc.integer({ min: 1, max: 20 }), async (a, length, tasks) => {
      const run = await sum(BigInt(a), BigInt(a + length), tasks);
      t.is(run.result.sum, loopSum(BigInt(a), BigInt(a + length)).toString());
    }),
    { numRuns: 100 },
  );
});

test('a task count larger than the range is clamped to its size', async (t) => {
  const { result, tasks, plan } = await sum(5n, 7n, 100);
  t.is(tasks.length, 3);
  t.is(result.tasks, 3);
  t.is(plan.totalTasks, 3);
  t.is(result.sum, '18');
});

test('null tasks uses the default; defaultSumTasks is 8 per worker', async (t) => {
  const { tasks } = await sum(1n, 1000n, null);
  t.is(tasks.length, SUM_DEFAULT_TASKS);
  t.is(defaultSumTasks(3), 24);
  t.is(defaultSumTasks(0), 8);
  t.is(defaultSumTasks(1e9), SUM_MAX_TASKS);
});

test('FROM > TO, bad bounds and bad task counts are usage errors', async (t) => {
  await t.throwsAsync(sum(10n, 9n), { instanceOf: UsageError, message: /FROM .* greater than TO/ });
  await t.throwsAsync(sum('1.5', '9'), { instanceOf: OptionError, message: /^from: / });
  await t.throwsAsync(sum('1', 'x'), { instanceOf: OptionError, message: /^to: / });
  await t.throwsAsync(sum(1n, 9n, 0), { instanceOf: OptionError, message: /^tasks: / });
  await t.throwsAsync(sum(1n, 9n, 1.5), { instanceOf: OptionError, message: /^tasks: / });
  await t.throwsAsync(sum(1n, 9n, SUM_MAX_TASKS + 1), { instanceOf: OptionError, message: /^tasks: / });
});

test('map rejects malformed specs with TaskRejectedError', (t) => {
  const context = { working() {} };
  const bad: unknown[] = [null, 'x', [], {}, { from: 1, to: 2 }, { from: '1', to: 'two' }, { from: '5', to: '4' }, { from: '1'.repeat(20_000), to: '1'.repeat(20_001) }];
  for (const spec of bad) t.throws(() => sumKind.map(spec, new Uint8Array(), context), { instanceOf: TaskRejectedError }, JSON.stringify(spec)?.slice(0, 40));
  t.is(new TextDecoder().decode(sumKind.map({ from: '-3', to: '10' }, new Uint8Array(), context) as Uint8Array), '49');
});

test('reduce refuses a malformed partial', (t) => {
  const options: SumOptions = { from: '1', to: '10', tasks: 2 };
  t.throws(() => sumKind.reduce(sumKind.init(options), new TextEncoder().encode('12a'), 0));
});
