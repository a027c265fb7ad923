/**
 * N! by its prime factorisation (Legendre): N! = ∏ p^e(p) over the primes p ≤ N, with
 * e(p) = ⌊N/p⌋ + ⌊N/p²⌋ + …. A factorial job's tasks each take the primes of one sub-range.
 *
 * Why: multiplying 1..N even as a balanced tree makes ~N BigInts and ~log N levels of big
 * products. By primes, the product of primes p^e is built as ∏_b (∏ of the p whose e has bit
 * b set)^(2^b), Horner-wise from the highest bit: one squaring and one multiplication per bit,
 * the squarings doing most of the work (V8 multiplies big numbers in n log n). Measured on
 * 10^6!: ~3× less work than the product tree of 1..N.
 *
 * 2 and 5 are left out: 2^e(2) is a shift, and taking e(5) of each (the trailing zeros, as
 * e(2) ≥ e(5)) out of N! leaves a value with ~4% fewer bits to convert to decimal.
 */
import { productOfNumbers } from './product-tree.js';

/** Exponent of the prime p in n! (Legendre's formula). */
export function legendreExponent(n: number, p: number): number {
  let exponent = 0;
  for (let rest = Math.floor(n / p); rest > 0; rest = Math.floor(rest / p)) exponent += rest;
  return exponent;
}

/** The primes in lo..hi, ascending (a segmented sieve: memory ~ hi − lo + √hi bytes). */
export function primesBetween(lo: number, hi: number): number[] {
  const from = Math.max(2, lo);
  if (hi < from) return [];
  const root = Math.floor(Math.sqrt(hi));
  const small = new Uint8Array(root + 1); // 1 = composite
  const composite = new Uint8Array(hi - from + 1);
  for (let p = 2; p <= root; p++) {
    if (small[p]) continue;
    for (let m = p * p; m <= root; m += p) small[m] = 1;
    for (let m = Math.max(p * p, Math.ceil(from / p) * p); m <= hi; m += p) composite[m - from] = 1;
  }
  const primes: number[] = [];
  for (let i = 0; i < composite.length; i++) if (!composite[i]) primes.push(from + i);
  return primes;
}

/** True for the primes {@link primePowerProduct} leaves out (their powers are handled apart). */
export function isSetAside(p: number): boolean {
  return p === 2 || p === 5;
}

/**
 * ∏ p^e(p) over the primes lo ≤ p ≤ hi except 2 and 5, e(p) the exponent of p in n!
 * (1n when there are none). `pause` is awaited between the big steps, so a long task can
 * yield and heartbeat.
 */
export async function primePowerProduct(n: number, lo: number, hi: number, pause: () => Promise<void> | undefined = () => undefined): Promise<bigint> {
  const primes = primesBetween(lo, Math.min(hi, n)).filter((p) => !isSetAside(p));
  if (primes.length === 0) return 1n;
  const exponents = primes.map((p) => legendreExponent(n, p));
  const topBit = 31 - Math.clz32(exponents[0]); // the smallest prime has the largest exponent
  let result = 1n;
  for (let bit = topBit; bit >= 0; bit--) {
    const chosen = primes.filter((_, i) => (exponents[i] >>> bit) & 1);
    const factor = productOfNumbers(chosen);
    result = bit === topBit ? factor : result * result * factor;
    const wait = pause();
    if (wait) await wait;
  }
  return result;
}
