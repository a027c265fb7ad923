/**
 * Size limits that the command line, the coordinator and the workers must agree on, each
 * defined once. A module of constants only: the CLI imports it at start-up.
 */

/**
 * Most bytes of input one task may carry or name: the largest `--chunk-size`, the longest range
 * a worker reads for one entry, and the largest task body a worker accepts, whatever the
 * server allows (16 MiB).
 */
export const MAX_TASK_BYTES = 16 * 1024 * 1024;

/** Largest accepted `--max-word-bytes` (maxWordBytes of a count job): 1 MiB. */
export const MAX_WORD_BYTES_LIMIT = 1024 * 1024;

/**
 * Most words in an n-gram (shared/kinds/ngrams.ts). Here rather than there so that the command
 * line, which every tally command builds, does not load the n-gram map to read it (~10 ms).
 */
export const MAX_NGRAM = 8;
