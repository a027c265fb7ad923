/**
 * The seam of a job kind: shared/kinds/index.ts names every kind, and from that one list the
 * worker finds its map, the CLI its command, the embedded default its prestart, and the CLI the
 * flag that a kind's field error is about. Nothing here needs a server: a bad option is refused
 * before any connection (the server given is one nothing listens on).
 */
import test from 'ava';
import { Command } from 'commander';
import { OptionError } from '../shared/errors.js';
import { KIND_NAMES, loadAllKinds, loadKind } from '../shared/kinds/index.js';
import { loadKindCli } from '../coordinator/kind-cli.js';
import { embeddedPlanFor } from '../coordinator/embedded/prestart.js';
import { buildProgram } from '../coordinator/cli.js';
import { runTally } from './helpers/tally.js';

const NOWHERE = 'nats://127.0.0.1:1';

test('every registered kind loads under its own name, and an unknown name is no kind', async (t) => {
  t.deepEqual(KIND_NAMES, ['count', 'sum', 'primes', 'factorial', 'ngrams']);
  for (const name of KIND_NAMES) t.is((await loadKind(name))?.name, name);
  t.deepEqual((await loadAllKinds()).map((kind) => kind.name), [...KIND_NAMES]);
  t.is(await loadKind('toString'), undefined);
  await t.throwsAsync(loadKindCli('toString'), { message: /unknown job kind 'toString'/ });
});

test('every kind has a command of its name in `tally`, and the embedded default prestarts workers for it', async (t) => {
  const program = await buildProgram();
  const commands = program.commands.map((command) => command.name());
  for (const name of KIND_NAMES) {
    t.true(commands.includes(name), `tally ${name}`);
    t.true((embeddedPlanFor(['node', 'tally', name, 'x'], {})?.workers ?? 0) > 0, `prestart for ${name}`);
  }
  t.is(embeddedPlanFor(['node', 'tally', 'jobs'], {})?.workers, 0);
});

test("every flag a kind's CLI maps a field to is an option or an argument its command really has", async (t) => {
  for (const name of KIND_NAMES) {
    const cli = await loadKindCli(name);
    const command: Command = cli.command();
    const longs = command.options.map((option) => option.long);
    const args = command.registeredArguments.map((argument) => argument.name().toUpperCase());
    t.true(Object.keys(cli.flags).length > 0, name);
    for (const [field, flag] of Object.entries(cli.flags)) {
      t.true(flag.startsWith('--') ? longs.includes(flag) : args.includes(flag), `${name}: ${field} -> ${flag}`);
    }
    t.true(cli.formats.length > 0 && cli.formats.every((format) => typeof format === 'string'));
  }
});

test("kinds speak in fields; the CLI says the flag the user typed, exit 2, one line", async (t) => {
  const sum = (await loadKind('sum'))!;
  const error = await t.throwsAsync(async () => sum.plan({ from: '1', to: '10', tasks: 0 }), { instanceOf: OptionError });
  t.is(error?.field, 'tasks');
  t.notRegex(error!.message, /--/);
  const cases: Array<[string[], RegExp]> = [
    [['primes', '1', '1e30'], /^tally: TO: 10{30} is above the limit for primes jobs/],
    [['factorial', '10', '--split', '5000'], /^tally: --split: 5000 is too large/],
    [['count', 'README.md', '--chunk-size', '1'], /^tally: --chunk-size: 1 is out of range/],
    [['count', 'README.md', '--max-word-bytes', '0'], /^tally: --max-word-bytes: 0 is out of range/],
    [['count', 'README.md', '--reducers', '0'], /^tally: --reducers: 0 is out of range/],
  ];
  for (const [args, expected] of cases) {
    const run = await runTally([...args, '--server', NOWHERE]);
    t.is(run.code, 2, args.join(' '));
    t.regex(run.stderr, expected);
    t.is(run.stderr.trim().split('\n').length, 1, run.stderr);
  }
});
