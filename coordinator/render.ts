/** How each kind's result is printed, shared by the kind's command and `tally result`. */
import type { Json } from '../shared/kinds/kind.js';
import { UsageError } from '../shared/errors.js';
import type { Format } from './output.js';
import { renderCount } from './commands/count.js';
import { renderNumbers } from './commands/numbers.js';
import type { CountResult } from '../shared/kinds/count.js';

export interface ResultView {
  format: Format;
  top: number;
}

export function renderResult(kind: string, result: Json, view: ResultView): string {
  switch (kind) {
    case 'count':
      return renderCount(result as unknown as CountResult, view);
    case 'sum':
    case 'primes':
    case 'factorial':
      if (view.format === 'tsv' || view.format === 'csv') throw new UsageError(`--format ${view.format} is for count jobs; use table or json`);
      return renderNumbers(kind, result, view.format);
    default:
      throw new UsageError(`unknown job kind '${kind}'`);
  }
}
