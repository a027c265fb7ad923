/**
 * Every job kind tally knows, by name: the one place a new kind is registered. A kind is
 * shared/kinds/NAME.ts (its job: split, map, reduce; what workers run) and
 * coordinator/kinds/NAME.ts (its command line and how its results print); each module loads
 * only when a job or a command needs it, so this list costs nothing to import.
 */
import type { AnyJobKind } from './kind.js';

const KINDS = {
  count: () => import('./count.js').then((m) => m.countKind),
  sum: () => import('./sum.js').then((m) => m.sumKind),
  primes: () => import('./primes.js').then((m) => m.primesKind),
  factorial: () => import('./factorial.js').then((m) => m.factorialKind),
  ngrams: () => import('./ngrams.js').then((m) => m.ngramsKind),
} satisfies Record<string, () => Promise<AnyJobKind>>;

/** The names of every kind, in the order `tally --help` lists their commands. */
export const KIND_NAMES: readonly string[] = Object.freeze(Object.keys(KINDS));

const loaded = new Map<string, Promise<AnyJobKind>>();

/** The kind called `name`, loaded once per process; undefined for a name no kind has. */
export function loadKind(name: string): Promise<AnyJobKind | undefined> {
  if (!Object.hasOwn(KINDS, name)) return Promise.resolve(undefined);
  let kind = loaded.get(name);
  if (!kind) {
    kind = KINDS[name as keyof typeof KINDS]();
    loaded.set(name, kind);
  }
  return kind;
}

/** Every kind, loaded. */
export function loadAllKinds(): Promise<AnyJobKind[]> {
  return Promise.all(KIND_NAMES.map(async (name) => (await loadKind(name))!));
}
