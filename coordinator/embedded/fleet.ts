/**
 * How many worker processes an embedded job starts, and whether the coordinator's own process
 * maps beside them for the whole job (its stand-in, coordinator/embedded/stand-in.ts).
 *
 * `--workers N` starts N processes, and the stand-in covers only their start. Without it, a job
 * starts one process per core but one, and the stand-in keeps mapping on the core left over:
 * one Node process fewer to start and load (~150 ms of CPU on Node 20, on cores the job's maps
 * need), where the coordinator's process is loaded, connected and mostly idle anyway. On 2
 * cores, in interleaved runs: English count 1.26 -> 1.07 s, multilingual 1.86 -> 1.69 s,
 * `primes 1 1e10` even (docs/BENCHMARKS.md, issue 17's eighth pass). The reduce still
 * gets a task per core: the stand-in takes one while its partition stays small, and gives it
 * back to a worker process it then starts when it grows (see StandIn).
 */
import { availableParallelism } from 'node:os';

export interface EmbeddedFleet {
  /** Worker processes to start. */
  processes: number;
  /** The coordinator's stand-in maps for the whole job, not only while the processes start. */
  standInThroughout: boolean;
  /** Processes and coordinator that map at once: a count's reduce partitions and task target. */
  mappers: number;
}

/**
 * The embedded fleet for a `--workers` value (undefined when not given) on a machine of
 * `cores` cores.
 */
export function embeddedFleet(workers: number | undefined, cores: number = availableParallelism()): EmbeddedFleet {
  if (workers !== undefined || cores < 2) {
    const processes = workers ?? cores;
    return { processes, standInThroughout: false, mappers: processes };
  }
  return { processes: cores - 1, standInThroughout: true, mappers: cores };
}
