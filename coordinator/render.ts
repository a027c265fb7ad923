/** How each kind's result is printed, shared by the kind's command and `tally result`. */
import type { Json } from '../shared/kinds/kind.js';
import { UsageError } from '../shared/errors.js';
import type { Format } from './output.js';
import { renderCount } from './commands/count.js';
import { renderNumbers } from './commands/numbers.js';
import type { CountResult } from '../shared/kinds/count.js';
import type { JobStore } from './job-store.js';
import { withRows } from './count-table.js';

export interface ResultView {
  format: Format;
  top: number;
}

/**
 * A result as its kind prints it. A count result whose table lies in sorted parts on the server
 * is completed from them (through `store`) as far as the view needs.
 */
export async function renderResult(kind: string, result: Json, view: ResultView, store: JobStore): Promise<string> {
  switch (kind) {
    case 'count':
      return renderCount(await withRows(result as unknown as CountResult, view.top, store), view);
    case 'sum':
    case 'primes':
    case 'factorial':
      if (view.format === 'tsv' || view.format === 'csv') throw new UsageError(`--format ${view.format} is for count jobs; use table or json`);
      return renderNumbers(kind, result, view.format);
    default:
      throw new UsageError(`unknown job kind '${kind}'`);
  }
}
