/**
 * shared/decimal.ts against V8's own toString(10): the ladder's inverses against exact
 * division, and the pieces on values chosen to hit the edges (all nines, powers of ten, runs
 * of zeros that must be padded back, a leading piece far shorter than the top rung).
 */
import test from 'ava';
import fc from 'fast-check';
import { bitLength, decimalLadder, decimalPieces, DIRECT_DIGITS, ladderFromWire, ladderToWire, splitAt, type Rung } from '../shared/decimal.js';

const convert = (value: bigint) => decimalPieces(value).join('');

test('bitLength is exact', (t) => {
  for (const [value, bits] of [[0n, 0], [1n, 1], [2n, 2], [255n, 8], [256n, 9], [(1n << 1000n) - 1n, 1000], [1n << 1000n, 1001]] as const) t.is(bitLength(value), bits, String(value));
});

test('every rung of the ladder: its inverse is floor(4^k / power) and power = 10^digits', (t) => {
  for (const digits of [DIRECT_DIGITS + 1, 100_000, 333_333]) {
    const ladder = decimalLadder(digits);
    t.true(ladder.leaf * 2 ** ladder.rungs.length >= digits, `${digits}: the ladder covers the value`);
    for (const rung of ladder.rungs) {
      t.is(rung.power, 10n ** BigInt(rung.digits));
      t.is(rung.five, 5n ** BigInt(rung.digits));
      t.is(rung.bits, bitLength(rung.power));
      t.is(rung.inverse, (1n << BigInt(2 * rung.bits)) / rung.power, `${digits}: rung of ${rung.digits} digits`);
    }
  }
});

test('splitAt is exact with an inverse a unit off either way, or none', (t) => {
  const power = 10n ** 700n;
  const bits = bitLength(power);
  const exact = (1n << BigInt(2 * bits)) / power;
  const values = [0n, 1n, power - 1n, power, power + 1n, power * power - 1n, (power - 1n) * power, 12345678901234567890n * power + 42n];
  for (const inverse of [exact, exact - 1n, exact + 1n, 0n]) {
    const rung: Rung = { digits: 700, power, bits, inverse, five: 5n ** 700n };
    for (const value of values) t.deepEqual(splitAt(value, rung), [value / power, value % power], `inverse ${inverse - exact}, value ${value % 1000n}`);
  }
});

test('pieces equal toString(10) on edge values: nines, powers of ten, zero runs to pad', (t) => {
  for (const digits of [DIRECT_DIGITS - 1, DIRECT_DIGITS, DIRECT_DIGITS + 1, 65_536, 100_003]) {
    const ten = 10n ** BigInt(digits);
    const values = [ten - 1n, ten, ten + 1n, ten * 7n + 3n, (ten / 1000n) * (ten / 1000n) + 1n, ten * (ten / 10n) + 999n];
    for (const value of values) t.is(convert(value), value.toString(10), `${digits} digits, value ≡ ${value % 100000n} mod 10^5`);
  }
  t.is(convert(0n), '0');
  t.throws(() => decimalPieces(-1n), { instanceOf: RangeError });
});

test('pieces equal toString(10) on random values, and a ladder built for more digits serves', async (t) => {
  await fc.assert(
    fc.property(fc.integer({ min: 1, max: 120_000 }), fc.integer({ min: 0, max: 2 ** 31 }), (bits, seed) => {
      // A value of `bits` bits, with long runs of zero bits so that some pieces are mostly zeros.
      let value = 1n << BigInt(bits - 1);
      for (let i = 0, s = seed; i < 40; i++, s = (s * 1103515245 + 12345) % 2 ** 31) value |= BigInt(s) << BigInt(s % bits);
      t.is(convert(value), value.toString(10));
    }),
    { numRuns: 40 },
  );
  const value = 3n ** 100_000n; // 47,713 digits
  t.is(decimalPieces(value, decimalLadder(200_000)).join(''), value.toString(10));
  t.throws(() => decimalPieces(value, decimalLadder(DIRECT_DIGITS + 1)), { instanceOf: RangeError });
});

test('a ladder survives the trip through postMessage form', (t) => {
  const ladder = decimalLadder(50_000);
  const back = ladderFromWire(structuredClone(ladderToWire(ladder)));
  t.deepEqual(back, ladder);
});
