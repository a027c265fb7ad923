/**
 * What a test needs of the machine beyond Node and nats-server (root and `ip netns`, a way to
 * run as an unprivileged user, a pseudo-terminal), probed once at module load, and how a test
 * that needs a missing one is registered: skipped loudly, with the reason in its title, or under
 * CI=true failed, because CI is where every test must run.
 */
import test, { type ExecutionContext } from 'ava';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { netnsUnavailable } from './netns.js';

const TALLY_BIN = join(fileURLToPath(new URL('../../../', import.meta.url)), 'bin', 'tally.js');

/** True on CI (`.ci/run` sets CI=true): a missing capability fails there instead of skipping. */
export const IN_CI = process.env.CI === 'true';

function firstLine(error: unknown): string {
  const e = error as { stderr?: Buffer | string; message?: string };
  return (String(e.stderr ?? '').trim() || String(e.message ?? error)).split('\n')[0]!;
}

/** Why root cannot create network namespaces here, or null when it can. */
export function missingNetns(): string | null {
  return netnsUnavailable();
}

/**
 * Why the tests cannot run a process as user nobody (the only way to test "permission denied"
 * when the tests run as root, whom chmod 000 does not stop), or null when they can: setpriv must
 * exist and nobody must be able to start the CLI from this checkout (a clone under a 0700 home
 * cannot). Switching user needs root.
 */
export function missingNobody(): string | null {
  if (process.getuid?.() !== 0) return 'switching to user nobody needs root';
  try {
    execFileSync('setpriv', ['--reuid=nobody', '--regid=nogroup', '--clear-groups', process.execPath, TALLY_BIN, '--version'], { stdio: ['ignore', 'pipe', 'pipe'], timeout: 30_000 });
    return null;
  } catch (error) {
    return `running as root, and user nobody cannot run the CLI here (chmod 000 does not stop root): ${firstLine(error)}`;
  }
}

/** Why util-linux `script` (a real pseudo-terminal for a child) is not available, or null. */
export function missingScript(): string | null {
  try {
    execFileSync('script', ['--version'], { stdio: 'ignore' });
    return null;
  } catch (error) {
    return `no util-linux \`script\` here to give tally a terminal: ${firstLine(error)}`;
  }
}

type Implementation = (t: ExecutionContext) => void | Promise<void>;

/**
 * Registers `title` as a test (serial when asked) when `missing` is null. Otherwise the test is
 * registered skipped, its title saying why ("… — skipped: no util-linux `script`"), or under
 * CI=true as a test that fails with that reason.
 */
export function testNeeding(missing: string | null, title: string, implementation: Implementation, options: { serial?: boolean } = {}): void {
  const register = options.serial ? test.serial : test;
  if (missing === null) register(title, implementation);
  else if (IN_CI) register(title, (t) => t.fail(`CI=true and a capability this test needs is missing: ${missing}`));
  else register.skip(`${title} — skipped: ${missing}`, () => undefined);
}
