/**
 * Parsing of the integer arguments tally accepts on its command line (range bounds, N for
 * factorials, task counts). Users type big numbers, so besides plain decimals we accept digit
 * separators (`1_000_000`) and scientific notation (`1e9`, `2.5e3`), but only when the text
 * denotes an integer exactly: a bound of `1.5` or `1e-3` is a mistake, never something to round.
 */
import { OptionError } from './errors.js';

/**
 * Largest number of decimal digits a parsed integer may have. Guards against `1e999999999`,
 * which is short to type but would make a gigantic BigInt. 10^10000 is far beyond any range
 * a job could iterate, yet still cheap to hold.
 */
export const MAX_INTEGER_DIGITS = 10_000;

/**
 * sign, integer digits (single '_' only between digits), optional fraction, optional exponent.
 * At least one digit must appear in the mantissa: "." alone or "e5" are not numbers.
 */
const NUMBER = /^(-)?(\d+(?:_\d+)*)?(?:\.(\d+(?:_\d+)*)?)?(?:[eE]([+-]?\d+))?$/;

/** Quotes user text for a one-line message: control characters escaped, long text shortened. */
function quote(text: string): string {
  const shown = text.length > 40 ? `${text.slice(0, 37)}...` : text;
  // JSON.stringify escapes newlines and other control characters; swap its quotes for single.
  return `'${JSON.stringify(shown).slice(1, -1).replace(/\\"/g, '"')}'`;
}

/**
 * Parses an integer argument of any magnitude.
 *
 * Accepts an optional leading '-', decimal digits with single '_' separators between digits,
 * and decimal/scientific forms (`1e9`, `2.5e3`, `-3E12`, `1.0`) when they denote an integer
 * exactly. Rejects everything else (empty text, surrounding spaces, `1.5`, `1e-3`, `1__0`,
 * `0x10`, `+5`) with a one-line {@link OptionError} naming the argument, e.g.
 * `FROM: '1.5' is not an integer`.
 *
 * @param text the argument as typed
 * @param argName what to call it in error messages ("FROM", "--tasks")
 */
export function parseInteger(text: string, argName: string): bigint {
  const match = NUMBER.exec(text);
  if (!match || (match[2] === undefined && match[3] === undefined)) {
    throw new OptionError(argName, `${quote(text)} is not an integer`);
  }
  const negative = match[1] === '-';
  const whole = (match[2] ?? '').replace(/_/g, '');
  const fraction = (match[3] ?? '').replace(/_/g, '');
  // The exponent is bounded by the regex only in form; cap it before building anything.
  const exponentText = match[4] ?? '0';
  const exponent = exponentText.replace(/^[+-]/, '').length > 9 ? Infinity : Number(exponentText);

  // value = 0.<digits> shifted: digits * 10^(exponent - fraction.length)
  let digits = (whole + fraction).replace(/^0+/, '');
  if (digits === '') return 0n; // any zero, whatever its exponent or sign
  if (!Number.isFinite(exponent)) {
    // A ten-digit exponent: positive is absurdly large; negative cannot be cancelled by the
    // trailing zeros of any argument a shell can pass.
    throw exponentText.startsWith('-')
      ? new OptionError(argName, `${quote(text)} is not an integer`)
      : new OptionError(argName, `${quote(text)} is too large (at most ${MAX_INTEGER_DIGITS} digits)`);
  }
  let shift = exponent - fraction.length;
  if (shift < 0) {
    // Only trailing zeros may be shifted out; anything else leaves a fractional part.
    const trailingZeros = digits.length - digits.replace(/0+$/, '').length;
    if (trailingZeros < -shift) throw new OptionError(argName, `${quote(text)} is not an integer`);
    digits = digits.slice(0, digits.length + shift);
    shift = 0;
  }
  if (digits.length + shift > MAX_INTEGER_DIGITS) {
    throw new OptionError(argName, `${quote(text)} is too large (at most ${MAX_INTEGER_DIGITS} digits)`);
  }
  const magnitude = BigInt(digits + '0'.repeat(shift));
  return negative ? -magnitude : magnitude;
}

/**
 * Parses a count option such as `--tasks` or `--split`: a positive integer (same syntax as
 * {@link parseInteger}), at most `max`. Zero, negatives, fractions and values over `max` are a
 * {@link OptionError} naming the option.
 *
 * @param max inclusive upper bound; defaults to Number.MAX_SAFE_INTEGER so the result is exact
 */
export function parsePositiveCount(text: string, argName: string, max: number = Number.MAX_SAFE_INTEGER): number {
  const value = parseInteger(text, argName);
  if (value < 1n) throw new OptionError(argName, `must be a positive integer, got ${quote(text)}`);
  if (value > BigInt(max)) throw new OptionError(argName, `${quote(text)} is too large (at most ${max})`);
  return Number(value);
}

/** Digits of a bound shown whole in messages; longer ones are shortened (see {@link describeInteger}). */
const SHOWN_DIGITS = 40;

/**
 * An integer as messages and task descriptions show it: whole up to 40 digits, else its first
 * and last digits and how many there are ("1000000000…0000000000 (4001 digits)"), so that a
 * range of 10,000-digit bounds still fits where one line of text is expected.
 */
export function describeInteger(value: bigint): string {
  const text = value.toString();
  const digits = text.startsWith('-') ? text.length - 1 : text.length;
  if (digits <= SHOWN_DIGITS) return text;
  const head = text.slice(0, text.length - digits + 10);
  return `${head}…${text.slice(-10)} (${digits} digits)`;
}

/** "range LO..HI" for task descriptions, with long bounds shortened by {@link describeInteger}. */
export function describeRange(lo: bigint, hi: bigint): string {
  return `range ${describeInteger(lo)}..${describeInteger(hi)}`;
}
