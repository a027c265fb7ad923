#!/usr/bin/env node
// The `tally` command. The TypeScript sources build into dist/ (`npm run build`).
import { main } from '../dist/coordinator/cli.js';

main(process.argv).then((code) => {
  process.exitCode = code;
});
