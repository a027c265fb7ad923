/**
 * The `tally` command's process from its first line to its exit: bin/tally.js runs this module,
 * bundled with everything it imports into dist/bundle/tally.cjs (scripts/bundle.mjs), through
 * the code cache it installed first (shared/code-cache.ts).
 */
import { checkSettings } from '../shared/settings.js';

async function run(): Promise<void> {
  // A bad TALLY_* variable (shared/settings.ts) is bad usage, said before anything starts.
  const badSetting = checkSettings();
  if (badSetting) {
    process.stderr.write(`tally: ${badSetting.message}\n`);
    process.exit(badSetting.exitCode);
  }
  const { discardPrestarted, prestartEmbedded } = await import('./embedded/prestart.js');

  // In the embedded default, the server and a job's worker processes start before anything
  // else: they come up while this process loads the command line's modules.
  prestartEmbedded(process.argv);
  const { main } = await import('./cli.js');

  const code = await main(process.argv);
  // What was started for a command that then failed before using it (bad usage, bad input).
  await discardPrestarted();
  // Everything the command owned is closed by now. What may remain is a socket the NATS client
  // was still dialling when it gave up (a server behind a dead route: the kernel retries that
  // connect for ~2 minutes), which would keep the process alive long after its answer. So the
  // process exits as soon as its output is out: a write to a pipe may still be queued (an empty
  // write's callback runs after every earlier write), logs are written synchronously.
  const flushed = (stream: NodeJS.WriteStream) => new Promise<void>((resolve) => (stream.destroyed ? resolve() : stream.write('', () => resolve())));
  await Promise.all([flushed(process.stdout), flushed(process.stderr)]);
  process.exit(code);
}

// (A CommonJS bundle has no top-level await.) What escapes main() is a bug: Node reports it and exits 1.
void run();
