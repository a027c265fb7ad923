/** A JSON value: what job options, task specs, message headers and results are made of. */
export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
