#!/usr/bin/env node
// The `tally` command. The TypeScript sources build into dist/ (`npm run build`).
import { main } from '../dist/coordinator/cli.js';

main(process.argv).then((code) => {
  process.exitCode = code;
  // Normally nothing is left and the process ends here. But a connection attempt that timed out
  // (a server that accepts TCP and never speaks NATS) leaves the NATS client's socket open, and
  // the process would never exit: once stdout and stderr are flushed, leave anyway.
  let flushing = 2;
  const flushed = () => {
    if (--flushing === 0) setTimeout(() => process.exit(code), 500).unref();
  };
  process.stdout.write('', flushed);
  process.stderr.write('', flushed);
});
