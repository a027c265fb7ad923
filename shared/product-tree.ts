/**
 * Balanced products. V8 multiplies big BigInts in subquadratic time (Karatsuba, Toom-Cook,
 * FFT), which only pays off when both operands are of similar size: a running product
 * multiplies a huge value by a tiny one again and again, at quadratic cost in all.
 */

/** Factors of a leaf multiplied as doubles first while the product stays exact. */
const LEAF_FACTORS = 16;

/** Product of small non-negative integers values[from..to) (safe integers), 1n when empty. */
export function productOfNumbers(values: ArrayLike<number>, from = 0, to = values.length): bigint {
  if (to - from <= LEAF_FACTORS) {
    let result = 1n;
    let small = 1;
    for (let i = from; i < to; i++) {
      const v = values[i];
      if (small * v > Number.MAX_SAFE_INTEGER) {
        result *= BigInt(small);
        small = v;
      } else {
        small *= v;
      }
    }
    return result * BigInt(small);
  }
  const mid = (from + to) >>> 1;
  return productOfNumbers(values, from, mid) * productOfNumbers(values, mid, to);
}

/** Balanced product of BigInts values[from..to), 1n when empty. */
export function productOf(values: bigint[], from = 0, to = values.length): bigint {
  if (to - from === 0) return 1n;
  if (to - from === 1) return values[from];
  const mid = (from + to) >>> 1;
  return productOf(values, from, mid) * productOf(values, mid, to);
}
