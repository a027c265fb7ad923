/**
 * What a user sees on stderr while a job waits for workers: on a terminal the progress bar says
 * so and log lines are written on lines of their own, never into the bar; without a terminal one
 * plain note says so.
 */
import test from 'ava';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { REPO_ROOT, cleanEnv, collect, spawnTally, startTestServer, startWorkers, type TestServer, type WorkerFleet } from './helpers/tally.js';

let server: TestServer;
const fleets: WorkerFleet[] = [];

test.before(async () => {
  server = await startTestServer();
});

test.after.always(async () => {
  for (const fleet of fleets) await fleet.stop();
  await server?.stop();
});

/**
 * The lines a terminal shows for `transcript`: a carriage return moves to the start of the
 * line, ESC[K erases from the cursor to its end, other characters overwrite what is there.
 */
function screenLines(transcript: string): string[] {
  const lines: string[] = [];
  let line = '';
  let col = 0;
  for (let i = 0; i < transcript.length; i++) {
    const ch = transcript[i]!;
    if (ch === '\n') {
      lines.push(line);
      line = '';
      col = 0;
    } else if (ch === '\r') col = 0;
    else if (transcript.startsWith('\x1b[K', i)) {
      line = line.slice(0, col);
      i += 2;
    } else {
      line = line.slice(0, col) + ch + line.slice(col + 1);
      col++;
    }
  }
  lines.push(line);
  return lines;
}

test.serial('on a terminal, log lines never land inside the progress bar, which says that it waits for workers', async (t) => {
  const bin = join(REPO_ROOT, 'bin', 'tally.js');
  const command = `node ${bin} primes 1 1e8 --tasks 20 --server ${server.url} --format json`;
  // `script` gives the command a pseudo-terminal, as an interactive shell would.
  const child = spawn('script', ['-qec', command, '/dev/null'], { env: cleanEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
  let transcript = '';
  let started = false;
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
    transcript += chunk;
    // Workers join only once the job has logged that none is pulling its tasks.
    if (!started && transcript.includes("no worker is pulling tasks")) {
      started = true;
      fleets.push(startWorkers(server.url, 2));
    }
  });
  const run = await collect(child, Date.now(), 120_000);
  t.is(run.code, 0, transcript);
  t.true(started, 'the job waited for workers');
  t.regex(transcript, /\] +0% +0\/20 tasks +waiting for workers/, 'the bar said it was waiting for workers');
  const lines = screenLines(transcript);
  const logLines = lines.filter((line) => line.includes('"level":'));
  t.true(logLines.length >= 1);
  for (const line of logLines) t.regex(line, /^\{"level":40,.*"msg":"no worker is pulling tasks; waiting for workers"\}$/, JSON.stringify(line));
  t.is(JSON.parse(lines.find((line) => line.startsWith('{"job"'))!).count, 5_761_455);
  // On a terminal the bar says it: no note line besides.
  t.false(lines.some((line) => line.startsWith('tally: waiting for workers')));
});

test.serial('without a terminal, one plain note says the job waits for workers', async (t) => {
  for (const fleet of fleets.splice(0)) await fleet.stop();
  const child = spawnTally(['primes', '1', '1e8', '--tasks', '20', '--server', server.url, '--format', 'json', '--log-level', 'error']);
  let stderr = '';
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => {
    stderr += chunk;
    if (stderr.includes('waiting for workers') && fleets.length === 0) fleets.push(startWorkers(server.url, 2));
  });
  const run = await collect(child, Date.now(), 120_000);
  t.is(run.code, 0, stderr);
  t.is(JSON.parse(run.stdout).count, 5_761_455);
  t.is(stderr, `tally: waiting for workers: none is pulling tasks from ${server.url} (start some with \`tally worker --server ${server.url}\`)\n`);
});
