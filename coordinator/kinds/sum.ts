/** `tally sum FROM TO`: the seed lesson's range-sum exercise, exact at any magnitude. */
import { rangeKindCli } from './range-command.js';

export const cli = rangeKindCli('sum', 'exact sum of the integers FROM..TO inclusive, any magnitude', (r) => `sum of ${r.from}..${r.to} = ${String(r.sum)}`);
