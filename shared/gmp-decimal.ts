/**
 * GMP for the factorial's decimal digits: the native addon native/gmp-decimal.c (built by
 * `npm run setup` where GMP's headers are: Debian's libgmp-dev), loaded once. It multiplies a
 * factorial's partials and writes N!/10^z in decimal several times faster than V8's BigInts
 * (docs/BENCHMARKS.md); without it, or with TALLY_DECIMAL=js, the factorial kind converts in two
 * threads of its own (shared/kinds/factorial-describe.ts). Both give the same digits, checked
 * against N! mod a prime either way.
 */
import { createRequire } from 'node:module';
import { UsageError } from './errors.js';
import { setting } from './settings.js';

const ADDON_PATH = new URL('../../native/build/Release/tally_gmp.node', import.meta.url);

/** What the addon exports. */
export interface GmpDecimal {
  /** The product of the partials (big-endian magnitudes) times 2^shift, in decimal; off the event loop. */
  decimal(partials: Uint8Array[], shift: number): Promise<string>;
  /** GMP's version, e.g. "6.2.1". */
  gmpVersion: string;
}

let addon: GmpDecimal | null | undefined;

function load(): GmpDecimal | null {
  if (addon !== undefined) return addon;
  try {
    addon = createRequire(import.meta.url)(ADDON_PATH.pathname) as GmpDecimal;
  } catch {
    addon = null;
  }
  return addon;
}

/**
 * GMP when TALLY_DECIMAL allows it and the addon is built; null for V8's BigInts. `gmp` when the
 * addon is missing is a UsageError saying how to build it.
 */
export function gmpDecimal(): GmpDecimal | null {
  const wanted = setting('TALLY_DECIMAL');
  if (wanted === 'js') return null;
  const loaded = load();
  if (!loaded && wanted === 'gmp') throw new UsageError(`TALLY_DECIMAL=gmp: the GMP addon is not built (${ADDON_PATH.pathname}); install libgmp-dev and run npm run setup`);
  return loaded;
}
