/**
 * An end-to-end check of a factorial's digits: N! mod P, computed directly (N multiplications
 * of small numbers), against the residue of the decimal digits produced the long way (prime
 * powers on the workers, the transport, big products, the conversion). A wrong digit anywhere
 * changes the residue except with probability ~1/P; the check costs a pass over the digits
 * (~20 ms for the 5.3 M digits of 10^6!/10^z, and ~20 ms for 10^6! mod P), far less than
 * producing them.
 */

/** A prime above every N accepted (so N! mod P ≠ 0), below 2^26 so products stay exact doubles. */
export const RESIDUE_PRIME = 67_108_859;

/** n! mod p, for p prime, n < p < 2^26. */
export function factorialMod(n: number, p = RESIDUE_PRIME): number {
  let residue = 1 % p;
  for (let i = 2; i <= n; i++) residue = (residue * i) % p;
  return residue;
}

/** 10^e mod p by squaring (p < 2^26). */
function powerOfTenMod(e: number, p: number): number {
  let result = 1 % p;
  let base = 10 % p;
  for (let rest = e; rest > 0; rest = Math.floor(rest / 2)) {
    if (rest % 2 === 1) result = (result * base) % p;
    base = (base * base) % p;
  }
  return result;
}

/** Digits folded at a time, and 10^CHUNK: 10^7 · p < 2^53. */
const CHUNK = 7;
const CHUNK_POWER = 10_000_000;

/** The value of the decimal digits `pieces` (concatenated) followed by `zeros` zeros, mod p. */
export function decimalMod(pieces: string[], zeros: number, p = RESIDUE_PRIME): number {
  let residue = 0;
  let chunk = 0;
  let inChunk = 0;
  for (const piece of pieces) {
    // Bytes of a Buffer read ~3× faster than charCodeAt on a long string.
    const bytes = Buffer.from(piece, 'latin1');
    for (let i = 0; i < bytes.length; i++) {
      chunk = chunk * 10 + (bytes[i] - 48);
      if (++inChunk === CHUNK) {
        residue = (residue * CHUNK_POWER + chunk) % p;
        chunk = 0;
        inChunk = 0;
      }
    }
  }
  residue = (residue * 10 ** inChunk + chunk) % p;
  return (residue * powerOfTenMod(zeros, p)) % p;
}
