#!/usr/bin/env node
// The `tally` command. The TypeScript sources build into dist/ (`npm run build`).
import { installCodeCache } from '../dist/shared/code-cache.js';

// Compiled code of the CommonJS modules (the NATS client, commander) from the last run.
installCodeCache('cli');
const { discardPrestarted, prestartEmbedded } = await import('../dist/coordinator/embedded.js');

// In the embedded default, the server and a job's worker processes start before anything
// else: they come up while this process loads the command line's modules.
prestartEmbedded(process.argv);
const { main } = await import('../dist/coordinator/cli.js');

const code = await main(process.argv);
// What was started for a command that then failed before using it (bad usage, bad input).
await discardPrestarted();
process.exitCode = code;
