/**
 * Integer argument parsing: accepted forms map to the exact value, everything else is a
 * one-line UsageError naming the argument.
 */
import test from 'ava';
import fc from 'fast-check';
import { UsageError } from '../shared/errors.js';
import { MAX_INTEGER_DIGITS, parseInteger, parsePositiveCount } from '../shared/integers.js';

const accepted: [string, bigint][] = [
  ['0', 0n],
  ['-0', 0n],
  ['42', 42n],
  ['-5', -5n],
  ['007', 7n],
  ['1_000', 1000n],
  ['1_000_000', 1_000_000n],
  ['1e9', 1_000_000_000n],
  ['1E9', 1_000_000_000n],
  ['1e+9', 1_000_000_000n],
  ['2.5e3', 2500n],
  ['-3E12', -3_000_000_000_000n],
  ['1e30', 10n ** 30n],
  ['-1e30', -(10n ** 30n)],
  ['1.0', 1n],
  ['1000e-3', 1n],
  ['1_000.5e1', 10005n],
  ['0e-7', 0n],
  ['123456789012345678901234567890', 123456789012345678901234567890n],
];

for (const [text, value] of accepted) {
  test(`accepts ${JSON.stringify(text)}`, (t) => {
    t.is(parseInteger(text, 'FROM'), value);
  });
}

const rejected = ['1.5', 'abc', '', '1e-3', '1__0', '_1', '1_', '1_e3', ' 5', '5 ', '0x10', '+5', '--5', '1e', 'e5', '.', '-', '1.5e0', '2.55e1', '1500e-3', '1e-99999999999', 'NaN', 'Infinity', '1,000', '١٢'];
for (const text of rejected) {
  test(`rejects ${JSON.stringify(text)}`, (t) => {
    const error = t.throws(() => parseInteger(text, 'FROM'), { instanceOf: UsageError });
    t.true(error.message.startsWith('FROM: '), error.message);
    t.is(error.exitCode, 2);
  });
}

test('the message quotes the text and stays on one line', (t) => {
  t.is(t.throws(() => parseInteger('1.5', 'FROM'))?.message, "FROM: '1.5' is not an integer");
  const message = t.throws(() => parseInteger('1\n2', 'TO'), { instanceOf: UsageError }).message;
  t.false(message.includes('\n'));
  t.true(message.startsWith('TO: '));
});

test('absurd exponents are refused before building a huge number', (t) => {
  t.throws(() => parseInteger('1e99999', 'N'), { instanceOf: UsageError, message: /too large/ });
  t.throws(() => parseInteger('1e9999999999999', 'N'), { instanceOf: UsageError, message: /too large/ });
  t.is(parseInteger(`1e${MAX_INTEGER_DIGITS - 1}`, 'N'), 10n ** BigInt(MAX_INTEGER_DIGITS - 1));
});

test('every decimal rendering of a bigint parses back (plain, with separators, with exponent)', (t) => {
  fc.assert(
    fc.property(fc.bigInt({ min: -(10n ** 40n), max: 10n ** 40n }), fc.integer({ min: 0, max: 20 }), fc.integer({ min: 1, max: 5 }), (value, exponent, group) => {
      const plain = value.toString();
      t.is(parseInteger(plain, 'X'), value);
      const digits = plain.replace('-', '');
      let grouped = '';
      for (let i = 0; i < digits.length; i++) grouped += (i > 0 && (digits.length - i) % group === 0 ? '_' : '') + digits[i];
      t.is(parseInteger((value < 0n ? '-' : '') + grouped, 'X'), value);
      t.is(parseInteger(`${plain}e${exponent}`, 'X'), value * 10n ** BigInt(exponent));
    }),
  );
});

test('parsePositiveCount accepts positive integers up to max', (t) => {
  t.is(parsePositiveCount('8', '--tasks'), 8);
  t.is(parsePositiveCount('1e3', '--tasks'), 1000);
  t.is(parsePositiveCount('1_024', '--split', 1024), 1024);
  t.is(typeof parsePositiveCount('3', '--tasks'), 'number');
});

test('parsePositiveCount rejects zero, negatives, fractions, junk and values over max', (t) => {
  for (const text of ['0', '-1', '1.5', 'x', '', '-0']) {
    const error = t.throws(() => parsePositiveCount(text, '--tasks'), { instanceOf: UsageError });
    t.true(error.message.startsWith('--tasks: '), error.message);
  }
  t.throws(() => parsePositiveCount('11', '--split', 10), { instanceOf: UsageError, message: /--split: .*at most 10/ });
  t.throws(() => parsePositiveCount('1e16', '--tasks'), { instanceOf: UsageError, message: /too large/ });
});
