/**
 * commander, loaded with require() instead of an ES import: it is CommonJS, and Node 20 imports
 * a CommonJS module into an ES module by reading and lexing its files first to find their
 * export names (its esm.mjs wrapper adds one more module), ~3 ms of CPU on every tally command
 * (measured with the code cache, shared/code-cache.ts, which applies either way). The command
 * modules import commander from here.
 */
import { createRequire } from 'node:module';
import type * as Commander from 'commander';

const commander = createRequire(import.meta.url)('commander') as typeof Commander;

export const { Command, CommanderError, Option } = commander;
export type Command = Commander.Command;
export type CommanderError = Commander.CommanderError;
export type Option = Commander.Option;
