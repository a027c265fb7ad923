/** Every job kind tally knows, by name: the one place a new kind is registered. */
import type { AnyJobKind } from './kind.js';
import { countKind } from './count.js';
import { sumKind } from './sum.js';
import { primesKind } from './primes.js';
import { factorialKind } from './factorial.js';

export const jobKinds: Readonly<Record<string, AnyJobKind>> = Object.freeze({
  count: countKind,
  sum: sumKind,
  primes: primesKind,
  factorial: factorialKind,
});

/** The kind called `name`, or undefined (a task naming an unknown kind is rejected). */
export function findKind(name: string): AnyJobKind | undefined {
  return Object.hasOwn(jobKinds, name) ? jobKinds[name] : undefined;
}
