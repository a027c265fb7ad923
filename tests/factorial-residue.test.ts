/** shared/factorial-residue.ts against BigInt arithmetic. */
import test from 'ava';
import fc from 'fast-check';
import { decimalMod, factorialMod, RESIDUE_PRIME } from '../shared/factorial-residue.js';

const P = BigInt(RESIDUE_PRIME);

test('factorialMod is n! mod P', (t) => {
  let product = 1n;
  for (let n = 0; n <= 3000; n++) {
    if (n > 1) product *= BigInt(n);
    if (n % 97 === 0 || n < 10) t.is(BigInt(factorialMod(n)), product % P, `${n}!`);
  }
});

test('decimalMod is the value of the pieces and zeros mod P, pieces cut anywhere', async (t) => {
  await fc.assert(
    fc.property(fc.array(fc.stringMatching(/^[0-9]{0,30}$/), { maxLength: 8 }), fc.integer({ min: 0, max: 500 }), (pieces, zeros) => {
      const text = pieces.join('') + '0'.repeat(zeros);
      t.is(BigInt(decimalMod(pieces, zeros)), BigInt(text === '' ? '0' : text) % P);
    }),
    { numRuns: 200 },
  );
});
