/** `tally primes FROM TO`: how many primes a range holds, a CPU-bound job. */
import { rangeKindCli } from './range-command.js';

export const cli = rangeKindCli('primes', 'how many primes lie in FROM..TO inclusive', (r) => `primes in ${r.from}..${r.to} = ${String(r.count)}`);
