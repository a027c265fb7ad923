/** A job's arguments in one line, for `tally jobs` and for records that keep only a summary. */
import type { Json } from '../shared/kinds/kind.js';

/** "a.txt b.txt … (150000 files)", "1 1000000000", "10 20": a job's arguments in one line. */
export function describeArgs(args: Json): string {
  if (!args || typeof args !== 'object' || Array.isArray(args)) return '';
  if (Array.isArray(args.inputs)) {
    const paths = (args.inputs as Array<{ path: string }>).map((input) => input.path);
    return paths.length <= 3 ? paths.join(' ') : `${paths.slice(0, 3).join(' ')} … (${paths.length} files)`;
  }
  if (Array.isArray(args.numbers)) return (args.numbers as string[]).join(' ');
  if (typeof args.from === 'string' && typeof args.to === 'string') return `${args.from} ${args.to}`;
  return '';
}
