/**
 * Decimal digits of a huge BigInt by divide and conquer, with Barrett division.
 *
 * Why not `value.toString(10)`: V8 (Node 20) converts by divide and conquer too, but each of
 * its steps is a full division. Here the value is split by a ladder of powers 10^(leaf·2^i),
 * and every split at level i divides by the same power: its Barrett inverse is computed once
 * per level, and a split then costs two multiplications, which V8 does in subquadratic time.
 * The inverses depend only on the number of digits, not on the value, so they can be computed
 * ahead (in another thread, while the value is still being multiplied) and shipped as a
 * {@link DecimalLadder}; the two halves of the top split can be converted in parallel.
 *
 * Exact by construction: Barrett's estimate is corrected until the remainder is in range, and
 * every piece but the leading one is padded with zeros to its exact width.
 */

/** Digits per leaf at most: V8's own toString is cheapest per digit on short numbers. */
const MAX_LEAF_DIGITS = 400;

/** Below this many digits the ladder is not worth building: plain toString. */
export const DIRECT_DIGITS = 20_000;

/** One rung of the ladder: the power 10^digits and its Barrett inverse. */
export interface Rung {
  /** The exponent: a split at this rung leaves `digits` digits in the remainder. */
  digits: number;
  power: bigint;
  /** Bit length of `power` (k). */
  bits: number;
  /** floor(4^k / power) give or take a unit, or 0n for none (then splits divide directly). */
  inverse: bigint;
  /** 5^digits: power = five·2^digits, so power's low bits come from a product 30% shorter. */
  five: bigint;
}

/** Powers 10^(leaf·2^i) for i = 0..n-1, bottom first; `leaf` digits per leaf. */
export interface DecimalLadder {
  leaf: number;
  rungs: Rung[];
}

/** Exact bit length of a positive BigInt (hex is V8's cheap conversion). */
export function bitLength(value: bigint): number {
  if (value <= 0n) return 0;
  const hex = value.toString(16);
  return (hex.length - 1) * 4 + (32 - Math.clz32(parseInt(hex[0], 16)));
}

/** Upper bound on the decimal digits of a value of `bits` bits. */
export function digitsForBits(bits: number): number {
  return Math.ceil(bits * Math.log10(2)) + 1;
}

/** Leaf digits and number of rungs of the ladder for values of at most `digits` digits. */
export function ladderShape(digits: number): { leaf: number; levels: number } {
  let levels = 0;
  while (Math.ceil(digits / 2 ** levels) > MAX_LEAF_DIGITS) levels++;
  return { leaf: Math.max(1, Math.ceil(digits / 2 ** levels)), levels };
}

/** Guard bits of the reciprocals while the ladder is built, so each rung's inverse is within a unit. */
const GUARD_BITS = 64;

/**
 * ν ≈ 2^(2k+G)/power (k = bits, G = {@link GUARD_BITS}) from the previous rung's ν' for
 * power = power'², by squaring ν' and one Newton step (y + y·(1 − power·y)): about two
 * multiplications, where V8's division would take four or five.
 */
function nextReciprocal(previous: bigint, previousBits: number, power: bigint, bits: number): bigint {
  const scale = BigInt(2 * bits + GUARD_BITS);
  const estimate = (previous * previous) >> BigInt(4 * previousBits + GUARD_BITS - 2 * bits);
  const error = (1n << scale) - power * estimate;
  return estimate + ((estimate * error) >> scale);
}

/**
 * The ladder for values of at most `digits` digits: leaf·2^n ≥ digits with leaf ≤
 * {@link MAX_LEAF_DIGITS}, so the splits halve evenly down to leaves V8 converts cheaply.
 * Every rung gets its inverse, the top one included.
 */
export function decimalLadder(digits: number): DecimalLadder {
  const { leaf, levels } = ladderShape(digits);
  const rungs: Rung[] = [];
  let power = 10n ** BigInt(leaf);
  let five = 5n ** BigInt(leaf);
  let bits = bitLength(power);
  let reciprocal = (1n << BigInt(2 * bits + GUARD_BITS)) / power;
  for (let i = 0; i < levels; i++) {
    if (i > 0) {
      const previousBits = bits;
      power *= power;
      five *= five;
      bits = bitLength(power);
      reciprocal = nextReciprocal(reciprocal, previousBits, power, bits);
    }
    rungs.push({ digits: leaf * 2 ** i, power, bits, inverse: reciprocal >> BigInt(GUARD_BITS), five });
  }
  return { leaf, rungs };
}

/** A ladder as plain data for postMessage (structured clone does not carry BigInts). */
export interface WireLadder {
  leaf: number;
  rungs: { digits: number; bits: number; power: string; inverse: string; five: string }[];
}

/** {@link DecimalLadder} → {@link WireLadder} (hex). */
export function ladderToWire(ladder: DecimalLadder): WireLadder {
  return { leaf: ladder.leaf, rungs: ladder.rungs.map((r) => ({ digits: r.digits, bits: r.bits, power: r.power.toString(16), inverse: r.inverse.toString(16), five: r.five.toString(16) })) };
}

/** {@link WireLadder} → {@link DecimalLadder}. */
export function ladderFromWire(wire: WireLadder): DecimalLadder {
  return { leaf: wire.leaf, rungs: wire.rungs.map((r) => ({ digits: r.digits, bits: r.bits, power: BigInt(`0x${r.power}`), inverse: BigInt(`0x${r.inverse}`), five: BigInt(`0x${r.five}`) })) };
}

/**
 * Bits kept of the remainder estimate: with an inverse at most a unit off, Barrett's q̂ is
 * within q − 3 … q + 1, so value − q̂·power lies in (−2^k, 2^(k+2)); 2^(k+6) leaves a margin.
 */
const REMAINDER_MARGIN_BITS = 6;

/**
 * value − q·power, knowing it lies in (−2^(K−1), 2^(K−1)), K = k + {@link REMAINDER_MARGIN_BITS}:
 * computed mod 2^K only, where power = 5^d·2^d makes q·power ≡ ((q·5^d) mod 2^(K−d))·2^d, a
 * product of (K−d)-bit numbers instead of k-bit ones (K − d ≈ 0.7k).
 */
function remainderEstimate(value: bigint, q: bigint, rung: Rung): bigint {
  const width = rung.bits + REMAINDER_MARGIN_BITS;
  const fiveBits = width - rung.digits;
  const product = BigInt.asUintN(fiveBits, BigInt.asUintN(fiveBits, q) * rung.five) << BigInt(rung.digits);
  const r = BigInt.asUintN(width, value - product);
  return r >= 1n << BigInt(width - 1) ? r - (1n << BigInt(width)) : r;
}

/**
 * value = q·power + r with 0 ≤ r < power, for 0 ≤ value < power² (Barrett, HAC 14.42: the
 * estimate is at most 2 short). Without an inverse, V8's division.
 */
export function splitAt(value: bigint, rung: Rung): [bigint, bigint] {
  if (rung.inverse === 0n) {
    const q = value / rung.power;
    return [q, value - q * rung.power];
  }
  const k = BigInt(rung.bits);
  let q = ((value >> (k - 1n)) * rung.inverse) >> (k + 1n);
  let r = remainderEstimate(value, q, rung);
  // The inverse may be a unit off (built by Newton steps): correct both ways.
  while (r < 0n) {
    r += rung.power;
    q--;
  }
  while (r >= rung.power) {
    r -= rung.power;
    q++;
  }
  return [q, r];
}

/**
 * Appends the decimal digits of `value` (< 10^(2·rungs[level].digits), or < 10^leaf below
 * rung 0) to `out`, padded with zeros to exactly `width` digits (0: unpadded, the leading
 * piece).
 */
export function appendDigits(value: bigint, ladder: DecimalLadder, level: number, width: number, out: string[]): void {
  if (level < 0) {
    const text = value.toString(10);
    out.push(width > 0 ? text.padStart(width, '0') : text);
    return;
  }
  const rung = ladder.rungs[level];
  // The leading piece may be far shorter than the rung: skip the rungs above it.
  if (width === 0 && value < rung.power) return appendDigits(value, ladder, level - 1, 0, out);
  const [q, r] = splitAt(value, rung);
  appendDigits(q, ladder, level - 1, width === 0 ? 0 : width - rung.digits, out);
  appendDigits(r, ladder, level - 1, rung.digits, out);
}

/**
 * The decimal digits of a non-negative `value`, in pieces (concatenated, they are exactly
 * `value.toString(10)`). Pass a `ladder` built for at least the value's digits to reuse it.
 */
export function decimalPieces(value: bigint, ladder?: DecimalLadder): string[] {
  if (value < 0n) throw new RangeError('decimalPieces: negative value');
  const digits = digitsForBits(bitLength(value));
  if (digits <= DIRECT_DIGITS) return [value.toString(10)];
  const used = ladder ?? decimalLadder(digits);
  const top = used.rungs.length - 1;
  if (used.leaf * 2 ** (top + 1) < digits) throw new RangeError(`decimalPieces: ladder for ${used.leaf * 2 ** (top + 1)} digits, value has up to ${digits}`);
  const out: string[] = [];
  appendDigits(value, used, top, 0, out);
  return out;
}
