/** shared/prime-powers.ts against trial division and a plain running product. */
import test from 'ava';
import fc from 'fast-check';
import { isSetAside, legendreExponent, primePowerProduct, primesBetween } from '../shared/prime-powers.js';
import { productOf, productOfNumbers } from '../shared/product-tree.js';

function isPrime(n: number): boolean {
  if (n < 2) return false;
  for (let d = 2; d * d <= n; d++) if (n % d === 0) return false;
  return true;
}

function factorial(n: number): bigint {
  let product = 1n;
  for (let i = 2n; i <= BigInt(n); i++) product *= i;
  return product;
}

test('primesBetween matches trial division, edges included', async (t) => {
  t.deepEqual(primesBetween(0, 30), [2, 3, 5, 7, 11, 13, 17, 19, 23, 29]);
  t.deepEqual(primesBetween(5, 5), [5]);
  t.deepEqual(primesBetween(24, 28), []);
  t.deepEqual(primesBetween(10, 2), []);
  t.deepEqual(primesBetween(1, 1), []);
  await fc.assert(
    fc.property(fc.integer({ min: 0, max: 20_000 }), fc.integer({ min: 0, max: 3_000 }), (lo, width) => {
      const expected: number[] = [];
      for (let i = lo; i <= lo + width; i++) if (isPrime(i)) expected.push(i);
      t.deepEqual(primesBetween(lo, lo + width), expected);
    }),
    { numRuns: 50 },
  );
});

test('legendreExponent: the exponent of p in n!', (t) => {
  t.is(legendreExponent(0, 2), 0);
  t.is(legendreExponent(10, 2), 8);
  t.is(legendreExponent(100, 5), 24);
  t.is(legendreExponent(1_000_000, 5), 249_998);
  t.is(legendreExponent(125, 5), 31); // 25 + 5 + 1
});

test('prime powers over any tiling of 1..n, times 2^e2·5^e5, are n!', async (t) => {
  await fc.assert(
    fc.asyncProperty(fc.integer({ min: 0, max: 600 }), fc.array(fc.integer({ min: 1, max: 600 }), { maxLength: 6 }), async (n, cuts) => {
      const ends = [...new Set(cuts.filter((c) => c < n))].sort((a, b) => a - b);
      const parts: bigint[] = [];
      let lo = 1;
      for (const hi of [...ends, n]) {
        parts.push(await primePowerProduct(n, lo, hi));
        lo = hi + 1;
      }
      const value = productOf(parts) * 2n ** BigInt(legendreExponent(n, 2)) * 5n ** BigInt(legendreExponent(n, 5));
      t.is(value, factorial(n), `${n}! cut at ${ends.join(',')}`);
    }),
    { numRuns: 60 },
  );
  t.true(isSetAside(2) && isSetAside(5) && !isSetAside(3));
});

test('productOfNumbers and productOf: balanced products, 1n when empty', (t) => {
  t.is(productOfNumbers([]), 1n);
  const values = Array.from({ length: 100 }, (_, i) => 2 ** 40 + i);
  t.is(productOfNumbers(values), values.reduce((p, v) => p * BigInt(v), 1n));
  t.is(productOf([]), 1n);
  t.is(productOf([7n]), 7n);
  t.is(productOf([2n, 3n, 5n, 7n, 11n]), 2310n);
});
