/** How each kind's result is printed, shared by the kind's command and `tally result`. */
import type { Json } from '../shared/kinds/kind.js';
import { UsageError } from '../shared/errors.js';
import type { Format } from './output.js';
import { renderNumbers } from './commands/numbers.js';
import type { CountResult } from '../shared/kinds/count.js';
import type { JobStore } from './job-store.js';
import { emit } from './output.js';

export interface ResultView {
  format: Format;
  top: number;
}

/**
 * Prints a result as its kind prints it, to stdout or `output`. A count result whose table lies
 * in sorted parts on the server is read from them (through `store`) as far as the view needs.
 * @param job named by a failed write to `output`
 */
export async function printResult(kind: string, result: Json, view: ResultView, store: JobStore, output?: string, job?: string): Promise<void> {
  if (kind === 'count') {
    // Loaded by the commands that print a count (the merge of sorted parts is not small).
    const { printCount } = await import('./count-table.js');
    return printCount(result as unknown as CountResult, view, store, output, job);
  }
  emit(renderResult(kind, result, view), output, job);
}

/** A result of a number kind as it prints it. */
export function renderResult(kind: string, result: Json, view: ResultView): string {
  switch (kind) {
    case 'sum':
    case 'primes':
    case 'factorial':
      if (view.format === 'tsv' || view.format === 'csv') throw new UsageError(`--format ${view.format} is for count jobs; use table or json`);
      return renderNumbers(kind, result, view.format);
    default:
      throw new UsageError(`unknown job kind '${kind}'`);
  }
}
