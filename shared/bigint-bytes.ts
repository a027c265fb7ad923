/**
 * Non-negative BigInts as big-endian bytes and hex, for partials on the wire and BigInts
 * between threads (structured clone does not carry BigInts). Hex is V8's fast path both ways.
 */

/** Big-endian magnitude bytes of a non-negative BigInt (0n: no bytes). */
export function toBytes(value: bigint): Uint8Array {
  if (value === 0n) return new Uint8Array(0);
  const hex = value.toString(16);
  return Buffer.from(hex.length % 2 === 0 ? hex : `0${hex}`, 'hex');
}

/** The BigInt of big-endian magnitude bytes (no bytes: 0n). */
export function fromBytes(bytes: Uint8Array): bigint {
  return bytes.length === 0 ? 0n : BigInt(`0x${Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('hex')}`);
}

/** Hex text of a non-negative BigInt, for postMessage. */
export function toHex(value: bigint): string {
  return value.toString(16);
}

/** The BigInt of {@link toHex}'s text. */
export function fromHex(hex: string): bigint {
  return BigInt(`0x${hex}`);
}
