/**
 * README, the tokenization contract: "Totals are exact for every input, including a 300 MB file
 * with no whitespace, in bounded memory." Checked for real: a 300 MiB file that is one run of
 * letters, counted with each tokenizer (once with the bytes carried in the tasks, once with the
 * workers reading the file), is 1 word and 1 overlong word, as `LC_ALL=C wc -w` says; and the
 * peak resident memory (VmHWM) of the coordinator and of each worker process stays far below
 * the file's size.
 */
import test from 'ava';
import { execFileSync, spawn } from 'node:child_process';
import { closeSync, openSync, readFileSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { TALLY_BIN, REPO_ROOT, cleanEnv, collect, startTestServer, tempDir } from './helpers/tally.js';
import { childPids, peakRss, spawnWorker, waitFor } from './helpers/watch.js';

const MiB = 1024 * 1024;
const SIZE = 300 * MiB;
/**
 * Below the 300 MiB (plus Node's own ~50) a process holding the file or the word would need:
 * what each process needs is bounded by what it has in flight, not by the input. The
 * coordinator carrying the bytes keeps up to 64 MiB of task bodies unanswered, besides the
 * chunker's buffers; measured peaks 150-190 MiB on Node 20, 225 MiB on Node 24, whose V8 lets
 * its heap grow further before collecting.
 */
const BOUND = 256 * MiB;

/**
 * Loaded into the coordinator with --require: writes its own VmHWM to a file as it exits
 * (bin/tally.js ends with process.exit), so the peak is read at the very end, by the kernel's
 * count, not by anything tally reports.
 */
const PEAK_AT_EXIT = `
const { readFileSync, writeFileSync } = require('node:fs');
process.on('exit', () => {
  const kb = /^VmHWM:\\s+(\\d+) kB$/m.exec(readFileSync('/proc/self/status', 'utf8'))[1];
  writeFileSync(process.env.PEAK_FILE, kb);
});
`;

test('a 300 MiB file with no whitespace: 1 word, 1 overlong, with either tokenizer, coordinator and workers each under 256 MiB', async (t) => {
  const started = Date.now();
  const dir = tempDir('tally-big-word-');
  t.teardown(dir.remove);
  const path = join(dir.path, 'one-word.txt');
  // "aé日" is 6 bytes: 1 MiB cuts fall inside UTF-8 sequences, and every character is a letter
  // (\p{L}) and no byte is ASCII whitespace. Written in 6 MiB pieces, never whole in memory.
  const piece = Buffer.from('aé日'.repeat(MiB));
  const fd = openSync(path, 'w');
  for (let written = 0; written < SIZE; written += piece.length) writeSync(fd, piece);
  closeSync(fd);
  const wc = Number(execFileSync('wc', ['-w', path], { env: { ...process.env, LC_ALL: 'C' }, encoding: 'utf8' }).trim().split(/\s+/)[0]);
  t.is(wc, 1, 'LC_ALL=C wc -w: one word');
  const written = Date.now();

  const server = await startTestServer();
  t.teardown(() => server.stop());
  const fleet = spawnWorker(server.url, 2, {}, ['--read-files', '--log-level', 'info']);
  t.teardown(() => fleet.kill());
  await waitFor(() => fleet.stderr().split('"worker ready"').length > 2, 'both worker processes to be ready');
  const preload = join(dir.path, 'peak-at-exit.cjs');
  writeFileSync(preload, PEAK_AT_EXIT);

  const coordinatorPeaks: string[] = [];
  for (const [tokenizer, carried] of [['whitespace', true], ['unicode', false]] as const) {
    const peakFile = join(dir.path, `peak-${tokenizer}`);
    const args = ['count', path, '--tokenizer', tokenizer, '--format', 'json', '--no-progress', '--server', server.url, ...(carried ? [] : ['--workers-read-files'])];
    const child = spawn(process.execPath, [TALLY_BIN, ...args], {
      cwd: REPO_ROOT,
      env: cleanEnv({ PEAK_FILE: peakFile, NODE_OPTIONS: `--require ${preload}` }),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const run = await collect(child);
    t.is(run.code, 0, run.stderr);
    t.like(JSON.parse(run.stdout), { bytes: SIZE, totalWords: 1, overlongWords: 1, uniqueWords: 0, counts: [] }, tokenizer);
    const peak = Number(readFileSync(peakFile, 'utf8')) * 1024;
    t.true(peak < BOUND, `coordinator (${tokenizer}, ${carried ? 'bytes in the tasks' : 'workers read the file'}) peaked at ${peak / MiB} MiB`);
    coordinatorPeaks.push(`${tokenizer} ${carried ? 'bytes in tasks' : 'workers read'} ${(peak / MiB).toFixed(0)} MiB in ${(run.ms / 1000).toFixed(1)} s`);
  }

  // The worker processes are still alive: their VmHWM covers both jobs.
  const workers = childPids(fleet.child.pid!);
  t.is(workers.length, 2);
  const workerPeaks = workers.map((pid) => peakRss(pid)!);
  for (const peak of workerPeaks) t.true(peak < BOUND, `a worker process peaked at ${peak / MiB} MiB`);
  const supervisor = peakRss(fleet.child.pid!)!;
  t.true(supervisor < BOUND, `the supervisor peaked at ${supervisor / MiB} MiB`);
  const natsServer = peakRss(server.server.pid);
  fleet.child.kill('SIGTERM');
  t.is((await fleet.done).code, 0);
  const mib = (bytes: number | null) => (bytes === null ? '?' : `${(bytes / MiB).toFixed(0)} MiB`);
  t.log(`coordinator: ${coordinatorPeaks.join('; ')}`);
  t.log(`worker processes ${workerPeaks.map(mib).join(' / ')}, supervisor ${mib(supervisor)}, nats-server ${mib(natsServer)}`);
  t.log(`file written and wc'd in ${((written - started) / 1000).toFixed(1)} s; whole test ${((Date.now() - started) / 1000).toFixed(1)} s`);
});
