#!/usr/bin/env node
// `npm run mutants`: puts deliberate bugs into a scratch copy of the tree, one at a time, builds
// it, runs the test files that should catch each bug, and reports the ones no test caught. A test
// suite that lets one of these through claims more than it proves.
//
//   npm run mutants                 every mutant (~10-15 min on 2 cores)
//   npm run mutants -- --only tokenizer,fold-once
//   npm run mutants -- --list
//   npm run mutants -- --check      only that every mutant still applies to the sources
//
// Exit 0 when every mutant was caught, 1 when one survived, 2 on a broken mutant (its text was
// not found: the code moved, and the list here must follow it). Plain JavaScript: it runs before
// anything is built.
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));

/**
 * Each mutant: a bug as text replacements in one source file, and the test files that must fail
 * with it. The replacements must each match exactly once.
 */
const MUTANTS = [
  {
    id: 'object-store-off',
    what: 'the worker never moves a big partial through the Object Store (its size check always false)',
    file: 'worker/task-loop.ts',
    // (Not `if (false)`: the compiler rejects the unreachable block, and the tests would never run.)
    edits: [['if (body.length > this.options.inlineLimit) {\n      // A unique name', 'if (body.length > Number.MAX_SAFE_INTEGER) {\n      // A unique name']],
    tests: ['numbers.e2e', 'batching.e2e'],
  },
  {
    id: 'map-swallows-rejection',
    what: "every kind's map swallows TaskRejectedError and returns an empty result",
    file: 'worker/task-loop.ts',
    edits: [['if (partitions === undefined) partials[index] = await kind.map(task.header.spec, task.body, context);', 'if (partitions === undefined) partials[index] = await Promise.resolve().then(() => kind.map(task.header.spec, task.body, context)).catch((e) => { if (e instanceof TaskRejectedError) return new Uint8Array(0); throw e; });']],
    tests: ['envelope-fuzz', 'worker-robustness', 'faults'],
  },
  {
    id: 'tokenizer-apostrophe',
    what: "the unicode tokenizer no longer joins runs across a single apostrophe (don't → don, t)",
    file: 'shared/text/words.ts',
    edits: [['        if (cls2 === WORD) {\n          if (len === 1) {', '        if (cls2 === WORD && false) {\n          if (len === 1) {']],
    tests: ['words', 'chunker', 'ranges'],
  },
  {
    id: 'wasm-apostrophe',
    what: "the WebAssembly scanner no longer joins runs across a single apostrophe (don't → don, t)",
    file: 'wasm/word-scanner.ts',
    edits: [['      if (c2 >> 3 == WORD) {', '      if (c2 >> 3 == WORD && false) {']],
    tests: ['words', 'wasm-scanner'],
  },
  {
    id: 'wasm-fold',
    what: 'the WebAssembly scanner leaves the ASCII letters of words unfolded (The and the stay apart in its table)',
    file: 'wasm/word-scanner.ts',
    edits: [['foldMask = caseSensitive ? 0 : 0x2020202020202020;', 'foldMask = 0;']],
    tests: ['words', 'wasm-scanner'],
  },
  {
    id: 'wasm-block-apostrophe',
    what: "the WebAssembly scanner's 64-byte blocks join an apostrophe with a word byte on its left only (dogs' counted as one word)",
    file: 'wasm/word-scanner.ts',
    edits: [['const tokens = w | (aposBits & (w << 1) & (w >> 1));', 'const tokens = w | (aposBits & (w << 1));']],
    tests: ['wasm-scanner'],
  },
  {
    id: 'wasm-share-partition',
    what: 'the WebAssembly scanner puts words in shares by their FNV-1a hash unspread (not the partition partitionOf gives)',
    file: 'wasm/word-scanner.ts',
    edits: [['      h = (h ^ (h >>> 16)) * 0x45d9f3b;\n      h ^= h >>> 16;\n      p = <i32>(<u32>h % <u32>partitions);', '      p = <i32>(<u32>h % <u32>partitions);']],
    tests: ['partitions', 'wasm-scanner'],
  },
  {
    id: 'wasm-unstored-kept',
    what: 'the WebAssembly scanner leaves a word it hands JavaScript to fold in its table too, so the word is written both as stored and as folded',
    file: 'wasm/word-scanner.ts',
    edits: [['    unstoredCount++;\n    store<i32>(slot, 0, 12);\n', '    unstoredCount++;\n']],
    tests: ['wasm-scanner'],
  },
  {
    id: 'wasm-case-ignored',
    what: 'the WebAssembly scanner writes words with a capital beyond ASCII as stored (Über, not über): it never asks whether toLowerCase changes a code point',
    file: 'wasm/word-scanner.ts',
    edits: [['        if (known == 2) {', '        if (known == 3) {']],
    tests: ['wasm-scanner'],
  },
  {
    id: 'wasm-part-longer-first',
    what: "a reducer's table sorted in WebAssembly puts a word after the words it is a prefix of (ab before a, a\\0 before a)",
    file: 'wasm/word-scanner.ts',
    edits: [['  return la - lb;\n}', '  return lb - la;\n}']],
    tests: ['partition-table'],
  },
  {
    id: 'wasm-share-leading-zero',
    what: 'a share line whose count has a leading zero is accepted when folded in WebAssembly',
    file: 'wasm/word-scanner.ts',
    edits: [['pos - tab > 16 || load<u8>(body + <usize>(tab + 1)) == 0x30) return BAD_COUNT;', 'pos - tab > 16) return BAD_COUNT;']],
    tests: ['partition-table'],
  },
  {
    id: 'partition-table-no-limit',
    what: "a reducer's table stays in WebAssembly whatever its counts add up to, where its int32 counts overflow",
    file: 'shared/text/partition-table.ts',
    edits: [['if (this.folded + checked.total >= WASM_TABLE_BYTE_LIMIT || ', 'if (']],
    tests: ['partition-table'],
  },
  {
    id: 'wasm-finish-doubles',
    what: "a table the WebAssembly scanner hands over has as many slots as doubling gives, not WordTable's growth: a reducer past its limit ends with twice the slots",
    file: 'wasm/word-scanner.ts',
    edits: [['while (words * 4 > (cap - 1) * 3) cap *= cap - 1 >= 1 << 17 ? 4 : 2;', 'while (words * 4 > (cap - 1) * 3) cap *= 2;']],
    tests: ['partition-table'],
  },
  {
    id: 'purge-list-unfiltered',
    what: "on an old server, the consumer that lists a job's messages for deletion lists every job's",
    file: 'shared/nats/purge.ts',
    edits: [['{ name, filter_subject: filter, headers_only: true,', '{ name, headers_only: true,']],
    tests: ['shared-server'],
  },
  {
    id: 'create-race-unheeded',
    what: 'a stream or bucket creation that lost a race on nats-server 2.9 ("subjects overlap" with the stream it asked for) fails instead of looking again',
    file: 'shared/nats/topology.ts',
    edits: [['    if (!isSubjectOverlap(error)) throw error;\n    return create();', '    if (!isSubjectOverlap(error) || true) throw error;\n    return create();']],
    tests: ['set-up-retry'],
  },
  {
    id: 'part-chunks-unhandled',
    what: "a stored part's chunk publishes are awaited oldest first with nothing to catch a later one's refusal (an unhandled rejection ends the process)",
    file: 'shared/nats/partials.ts',
    edits: [['      sent.catch(() => undefined);\n', '']],
    tests: ['reducers'],
  },
  {
    id: 'stand-in-never-throughout',
    what: 'without --workers the embedded job starts one worker process per core but one, and the stand-in still stops once one is ready (a core idle)',
    file: 'coordinator/embedded/fleet.ts',
    edits: [['return { processes: cores - 1, standInThroughout: true, mappers: cores };', 'return { processes: cores - 1, standInThroughout: false, mappers: cores };']],
    tests: ['stand-in'],
  },
  {
    id: 'stand-in-reduce-unlimited',
    what: "the stand-in mapping a whole job reduces a partition of any size in the coordinator's memory",
    file: 'coordinator/embedded/stand-in.ts',
    edits: [['reduceKeysLimit: testHooks.standInReduceKeys() ?? STAND_IN_REDUCE_KEYS, ', '']],
    tests: ['stand-in'],
  },
  {
    id: 'given-back-no-process',
    what: 'a stand-in that gives way (its reduce task outgrew it, or the coordinator carries the input) has no worker process started in its place',
    file: 'coordinator/embedded/stand-in.ts',
    edits: [['    place.addProcess();\n', '']],
    tests: ['stand-in'],
  },
  {
    id: 'carried-input-no-give-way',
    what: 'a job whose coordinator reads and sends its input keeps the stand-in mapping beside the worker processes',
    file: 'coordinator/task-publisher.ts',
    edits: [['CARRIED_BYTES_TO_GIVE_WAY) this.o.standIn?.giveWay();', 'CARRIED_BYTES_TO_GIVE_WAY) void 0;']],
    tests: ['stand-in'],
  },
  {
    id: 'stand-in-batch-off',
    what: "a small job's tiny tasks go one to a message while the stand-in takes them alone (each costs it a pull, a result and an ack)",
    file: 'coordinator/task-publisher.ts',
    edits: [['this.o.standIn?.alone() ? STAND_IN_BATCH : 1', '1']],
    tests: ['stand-in'],
  },
  {
    id: 'wasm-short-hash',
    what: "the WebAssembly table's path for short ASCII words hashes them unlike the general path, so a table that grows (rehashing from its arena) no longer finds them",
    file: 'wasm/word-scanner.ts',
    edits: [['hashEnd(hashGroup(hashStart(len), word))', 'hashEnd(hashStart(len) ^ word)']],
    tests: ['wasm-scanner', 'words'],
  },
  {
    id: 'wasm-block-high-unchecked',
    what: "the WebAssembly scanner's 64-byte blocks take every run of bytes >= 0x80 beside word bytes for word characters (so 'a’b' or a no-break space inside a run join words)",
    file: 'wasm/word-scanner.ts',
    edits: [['    else if (allWordCharacters(p + <usize>s, p + <usize>e)) countToken(', '    else if (s >= 0) countToken(']],
    tests: ['wasm-scanner'],
  },
  {
    id: 'wasm-whitespace-unprintable',
    what: "the WebAssembly scanner's whitespace tokenizer counts a token of control bytes only, which `wc -w` does not count",
    file: 'wasm/word-scanner.ts',
    edits: [['    if ((printableBits & inToken) != 0) countToken(', '    countToken(']],
    tests: ['wasm-scanner'],
  },
  {
    id: 'wasm-fold-or',
    what: "the WebAssembly scanner folds a word's bytes by setting the case bit of every byte, as only letters and digits allow ('@' becomes '`', UTF-8 bytes change)",
    file: 'wasm/word-scanner.ts',
    edits: [['  return x | ((upper >> 2) & foldMask);', '  return x | foldMask;']],
    tests: ['wasm-scanner'],
  },
  {
    id: 'default-chunk-fixed',
    what: "a count's default chunk size stays 1 MiB however big the input",
    file: 'coordinator/kinds/count.ts',
    edits: [['  return Math.min(MAX_DEFAULT_CHUNK_SIZE, share);\n}', '  return DEFAULT_CHUNK_SIZE;\n}']],
    tests: ['count-read-files.e2e'],
  },
  {
    id: 'default-chunk-fleet-blind',
    what: "a count's default chunk size aims at 32 tasks whatever the embedded workers",
    file: 'coordinator/kinds/count.ts',
    edits: [['  return workers === undefined ? DEFAULT_SERVER_TASKS : Math.max(DEFAULT_MIN_TASKS, DEFAULT_TASKS_PER_WORKER * workers);', '  return DEFAULT_SERVER_TASKS;']],
    tests: ['count-read-files.e2e'],
  },
  {
    id: 'stand-in-never-stops',
    what: "the embedded coordinator's stand-in worker goes on taking tasks after a worker process is ready",
    file: 'coordinator/embedded/stand-in.ts',
    edits: [['    if (!throughout) void workers.ready(1).then(() => standIn.stop({ jobOver: false }));\n', '']],
    tests: ['stand-in'],
  },
  {
    id: 'stand-in-off',
    what: 'the embedded coordinator waits for its worker processes without taking a task itself',
    file: 'coordinator/embedded/stand-in.ts',
    edits: [['    if ((workers.anyReady && !throughout) || !testHooks.allowStandIn()) return null;', '    if (workers.processes > 0 || !testHooks.allowStandIn()) return null;']],
    tests: ['stand-in'],
  },
  {
    id: 'default-chunk-unsampled',
    what: "a count's default chunk size grows with the input even when its words do not repeat",
    file: 'coordinator/kinds/count.ts',
    edits: [['  if (distinct === null || distinct > MAX_DISTINCT_SHARE) return DEFAULT_CHUNK_SIZE;', '  if (distinct === null) return DEFAULT_CHUNK_SIZE;']],
    tests: ['count-read-files.e2e'],
  },
  {
    id: 'safe-cut',
    what: 'a cut between two letters counts as safe (chunks split words)',
    file: 'shared/text/cuts.ts',
    edits: [['  if (x.cls === WORD && y.cls === WORD) return false;', '  if (x.cls === WORD && y.cls === WORD) return true;']],
    tests: ['chunker', 'ranges'],
  },
  {
    id: 'range-edge',
    what: 'a range that continues an overlong word counts it again (wordCounted lost)',
    file: 'shared/text/ranges.ts',
    edits: [['wordCounted: from.inside };', 'wordCounted: false };']],
    tests: ['ranges'],
  },
  {
    id: 'fold-once',
    what: 'the coordinator folds a task id every time a result for it arrives',
    file: 'coordinator/result-folder.ts',
    edits: [
      ['    if (!fresh) return;\n', '\n'],
      ['      if (this.folded.has(id)) continue;\n', '\n'],
    ],
    tests: ['batching.e2e', 'faults', 'folders.e2e'],
  },
  {
    id: 'reduce-once',
    what: "a reducer folds a map task's share every time it reads one",
    file: 'worker/reduce-task.ts',
    edits: [['if (task >= order.tasks || folded[task] === 1) continue;', 'if (task >= order.tasks) continue;']],
    tests: ['reducers', 'folders.e2e', 'batching.e2e'],
  },
  {
    id: 'no-backups',
    what: 'a straggling task is never backed up: a job with a frozen worker waits out the ack wait',
    file: 'coordinator/backup-tasks.ts',
    edits: [['if (!this.o.settings.enabled || this.stopped || this.messages.size === 0) return;', 'if (this.o.settings.enabled || this.stopped || this.messages.size === 0) return;']],
    tests: ['stragglers'],
  },
  {
    id: 'superseded-ignored',
    what: "a worker ignores the notice that another copy's result is in, and finishes its copy of a backed-up task",
    file: 'worker/task-loop.ts',
    edits: [['if (this.current?.job === job && this.current.first === first) this.current.superseded = true;', 'void [job, first];']],
    tests: ['stragglers'],
  },
  {
    id: 'retry-no-backoff',
    what: 'a failed delivery is retried after the same 1 s each time, not after a growing delay',
    file: 'shared/nats/topology.ts',
    edits: [['return Math.min(DELIVERY.retryMaxMs, DELIVERY.retryBaseMs * 2 ** Math.max(0, deliveries - 1));', 'return Math.min(DELIVERY.retryMaxMs, DELIVERY.retryBaseMs + 0 * deliveries);']],
    tests: ['stragglers'],
  },
  {
    id: 'reducers-wait-for-skipped',
    what: 'a reducer is not told which map tasks were skipped (--skip-failed) and waits for their shares',
    file: 'worker/reduce-task.ts',
    edits: [['  for (const task of order.skipped ?? []) {', '  for (const task of [] as number[]) {']],
    tests: ['skip-failed'],
  },
  {
    id: 'skip-whole-batch',
    what: 'a batch with a task that failed for good is not resent task by task: the failed task is skipped and the rest of the batch never runs',
    file: 'coordinator/skipped-tasks.ts',
    edits: [['    if (count > 1) {\n      // The other tasks', '    if (count < 1) {\n      // The other tasks']],
    tests: ['skip-failed'],
  },
  {
    id: 'ngrams-join-across-skipped',
    what: 'ngrams joins the n-grams of the chunks on either side of a skipped one, as if the chunk had no words',
    file: 'shared/kinds/ngrams.ts',
    edits: [['acc.edges.push([file as number, offset as number, Number.MAX_SAFE_INTEGER, [], []]);', 'void [file, offset];']],
    tests: ['skip-failed'],
  },
  {
    id: 'partial-count',
    what: 'a partial writes each count one too low',
    file: 'shared/text/words.ts',
    edits: [['      out[p++] = 0x09;\n      p = writeDecimal(out, p, counts[h]!);\n      out[p++] = 0x0a;\n    }\n    out.set(tail, p);', '      out[p++] = 0x09;\n      p = writeDecimal(out, p, Math.max(1, counts[h]! - 1));\n      out[p++] = 0x0a;\n    }\n    out.set(tail, p);']],
    tests: ['words', 'chunker', 'count-file-reads'],
  },
  {
    id: 'share-partition',
    what: 'a word beyond ASCII goes to the partition after the one its bytes hash to',
    file: 'shared/text/words.ts',
    edits: [['      const p = partitionOfText(w, partitions);', '      const p = (partitionOfText(w, partitions) + 1) % partitions;']],
    tests: ['partitions', 'count.e2e'],
  },
  {
    id: 'range-split',
    what: 'the range split of sum and primes drops the last integer of every sub-range',
    file: 'shared/kinds/integer-range.ts',
    edits: [['    const hi = low + (size * (i + 1n)) / n - 1n;', '    const hi = low + (size * (i + 1n)) / n - 2n;']],
    tests: ['sum', 'primes', 'numbers.e2e'],
  },
  {
    id: 'primes-first-bit',
    what: 'the primes sieve drops FROM itself when FROM is a prime (its first byte is masked with > instead of ≥)',
    file: 'shared/primes-sieve.ts',
    edits: [['    if (above ? n >= bound : n <= bound) mask |= 1 << w;', '    if (above ? n > bound : n <= bound) mask |= 1 << w;']],
    tests: ['primes'],
  },
  {
    id: 'primes-segment-edge',
    what: "a small sieving prime loses the multiple that falls on a segment's last byte (its guard is > instead of ≥)",
    file: 'shared/primes-sieve.ts',
    edits: [['      if (i + o7 >= length) { w = 7; break; }', '      if (i + o7 > length) { w = 7; break; }']],
    tests: ['primes'],
  },
  {
    id: 'primes-wasm-segment-edge',
    what: "in the WebAssembly loop, a small sieving prime loses the multiple that falls on a segment's last byte (its guard is > instead of ≥)",
    file: 'wasm/prime-sieve.ts',
    edits: [['        if (i + o3 >= length) { w = 3; break; }', '        if (i + o3 > length) { w = 3; break; }']],
    tests: ['primes'],
  },
  {
    id: 'primes-wasm-popcount-tail',
    what: "the WebAssembly popcount leaves out a segment's last 32-bit word when their number is odd",
    file: 'wasm/prime-sieve.ts',
    edits: [['  for (; i < words; i++) total +=', '  for (; i < words - 1; i++) total +=']],
    tests: ['primes'],
  },
  {
    id: 'primes-wasm-bucket-late',
    what: "in the WebAssembly buckets, a large prime's next multiple is filed for the segment after the one it falls in",
    file: 'wasm/prime-sieve.ts',
    edits: [['      push((s + (i >> SEGMENT_SHIFT)) & bucketMask, prime,', '      push((s + (i >> SEGMENT_SHIFT) + 1) & bucketMask, prime,']],
    tests: ['primes'],
  },
  {
    id: 'primes-wasm-activate-ceil',
    what: "in the WebAssembly buckets, a large prime starts crossing one multiple late when the segment's start or its square is a multiple of it (⌈start / p⌉ computed as ⌊start / p⌋ + 1)",
    file: 'wasm/prime-sieve.ts',
    edits: [['    let q = Math.floor((Math.max(square, segmentStart) + pf - 1) / pf);', '    let q = Math.floor((Math.max(square, segmentStart) + pf) / pf);']],
    tests: ['primes'],
  },
  {
    id: 'gzip-piece-whole-tail',
    what: "a gzip piece decompressed in one call loses its text's last byte",
    file: 'shared/text/compressed-pieces.ts',
    edits: [['    return [zlib.gunzipSync(compressed, { chunkSize: GUNZIP_CHUNK_BYTES, maxOutputLength: MAX_PIECE_TEXT_BYTES })];', '    return [zlib.gunzipSync(compressed, { chunkSize: GUNZIP_CHUNK_BYTES, maxOutputLength: MAX_PIECE_TEXT_BYTES }).subarray(0, -1)];']],
    tests: ['compressed-pieces'],
  },
  {
    id: 'worker-consumer-no-second-try',
    what: 'a worker consumer refused while its stream is still being set up is not created again',
    file: 'shared/nats/topology.ts',
    edits: [['      if (!isStreamNotReady(error) || attempt === CONSUMER_CREATE.attempts) throw error;', '      if (!isStreamNotReady(error) || attempt >= 1) throw error;']],
    tests: ['set-up-retry'],
  },
  {
    id: 'default-chunk-one-small-file',
    what: "a count's word sample reads one small file of a folder, too few words to say they repeat",
    file: 'shared/text/word-sample.ts',
    edits: [['    const picks = Math.min(files.length, Math.ceil(SAMPLE_BYTES / Math.max(1, average)));', '    const picks = Math.min(files.length, 1);']],
    tests: ['count-read-files.e2e'],
  },
  {
    id: 'wasm-word-view-before-room',
    what: 'the WebAssembly scanner takes its view of memory before making room for a folded word (a grown memory leaves the view detached)',
    file: 'shared/text/wasm-scanner.ts',
    edits: [['      const at = x.wordBuffer(word.length);\n      new Uint8Array(x.memory.buffer, at, word.length).set(word);', '      new Uint8Array(x.memory.buffer, x.wordBuffer(word.length), word.length).set(word);']],
    tests: ['partitions'],
  },
  {
    id: 'resume-directory',
    what: "resume reads a count job's relative paths from the current directory, not the job's",
    file: 'shared/kinds/count.ts',
    edits: [["  return path === '-' || isUrl(path) || isObjectUrl(path) ? path : resolve(options.directory ?? '.', path);", "  return path === '-' || isUrl(path) || isObjectUrl(path) ? path : resolve('.', path);"]],
    tests: ['faults', 'folders.e2e'],
  },
  {
    id: 'record-fence',
    what: 'job records are written without the revision check (a stale coordinator can overwrite a resumed job)',
    file: 'coordinator/job-store.ts',
    edits: [['        return await this.records.update(record.id, value, expected);', '        return await this.records.put(record.id, value);']],
    tests: ['coordinator-partition'],
  },
  {
    id: 'part-order',
    what: 'a sorted part puts a word after the longer words it is a prefix of ("ab" before "a")',
    file: 'shared/text/sorted-part.ts',
    edits: [['    if (d !== 0) return d;\n  }\n  return lx - ly;', '    if (d !== 0) return d;\n  }\n  return ly - lx;']],
    tests: ['sorted-parts'],
  },
  {
    id: 'result-store',
    what: 'the stored result of a job keeps no words (tally result prints an empty table)',
    file: 'coordinator/job-store.ts',
    edits: [['    await this.results.putBlob({ name: id }, encoder.encode(JSON.stringify(result)));', "    await this.results.putBlob({ name: id }, encoder.encode(JSON.stringify({ ...(result as object), counts: [] })));"]],
    tests: ['numbers.e2e', 'embedded', 'output'],
  },
  {
    id: 'dashboard-html',
    what: 'the dashboard puts text into its pages as HTML (a counted word becomes an element)',
    file: 'coordinator/dashboard/assets/app.js',
    edits: [["    else if (key === 'text') node.textContent = String(value);", "    else if (key === 'text') node.innerHTML = String(value);"]],
    tests: ['dashboard'],
  },
  {
    id: 'dashboard-token-unchecked',
    what: 'the dashboard takes any token off loopback',
    file: 'coordinator/dashboard/auth.ts',
    edits: [["    return given.some((t) => t !== undefined && this.matches(t)) ? 'ok' : 'unauthorized';", "    return given.some((t) => t !== undefined) ? 'ok' : 'unauthorized';"]],
    tests: ['dashboard'],
  },
  {
    id: 'object-window-miss',
    what: 'a worker takes a read past the bytes it fetched of an object for the end of the object',
    file: 'shared/text/remote-ranges.ts',
    edits: [['if (position < window.lo || position + want > window.lo + window.bytes.length) throw new RemoteWindowMiss(index);', 'if (position < window.lo || position + want > window.lo + window.bytes.length) return 0;']],
    tests: ['count-objects'],
  },
  {
    id: 'object-chunks-contiguous',
    what: "a worker takes every object's chunks to follow each other in the stream",
    file: 'shared/text/object-input.ts',
    edits: [['if (candidate >= 1 && consumer.num_pending === chunks) return', 'if (candidate >= 1) return']],
    tests: ['count-objects'],
  },
  {
    id: 'object-change-unnoticed',
    what: 'a worker reads an object replaced since the job started',
    file: 'shared/text/object-input.ts',
    edits: [
      ['  if (info.size !== size) throw new InputChangedError', '  if (info.size !== size && Number.isNaN(size)) throw new InputChangedError'],
      ['  if (Date.parse(info.mtime) !== mtimeMs) throw', '  if (Date.parse(info.mtime) !== mtimeMs && Number.isNaN(size)) throw'],
    ],
    tests: ['count-objects'],
  },
  {
    id: 'url-change-unnoticed',
    what: "a worker reads a range of a URL whose ETag changed since the job's probe",
    file: 'shared/text/url-input.ts',
    edits: [['  if (planned.etag !== undefined && now.etag !== planned.etag) throw', '  if (planned.etag !== undefined && now.etag !== planned.etag && planned.size < 0) throw']],
    tests: ['url-ranges'],
  },
  {
    id: 'piece-edge-unshifted',
    what: "a compressed piece's text counts from its first byte, not from where the piece before it stopped",
    file: 'shared/text/compressed-pieces.ts',
    edits: [['  const start = first ? 0 : Math.min(EDGE, size);', '  const start = first ? 0 : Math.min(EDGE, size) * 0;']],
    tests: ['compressed-pieces'],
  },
  {
    id: 'piece-lookahead-short',
    what: 'a piece decompresses no text after its own up front: each then decompresses the rest of the file to find its end (and fails on damage further on)',
    file: 'shared/text/compressed-pieces.ts',
    edits: [['  return EDGE + maxWordBytes + WORD_SLACK + LOOKAHEAD;', '  return 0 * (EDGE + maxWordBytes + WORD_SLACK + LOOKAHEAD);']],
    tests: ['compressed-pieces'],
  },
  {
    id: 'piece-any-magic',
    what: 'every gzip magic in the compressed bytes is taken for a member start, unchecked',
    file: 'shared/text/compressed-pieces.ts',
    edits: [["        const starts = compression === 'gzip' ? await isGzipMember(handle, start, header) : isBzip2Stream(header);", "        const starts = compression === 'gzip' ? true : isBzip2Stream(header);"]],
    tests: ['compressed-pieces'],
  },
  {
    id: 'decimal-unpadded',
    what: 'the decimal conversion drops the leading zeros of an inner piece (10^k + 1 loses its zeros)',
    file: 'shared/decimal.ts',
    edits: [['  appendDigits(r, ladder, level - 1, rung.digits, out);', '  appendDigits(r, ladder, level - 1, 0, out);']],
    tests: ['decimal', 'factorial'],
  },
  {
    id: 'barrett-one-way',
    what: 'a Barrett split corrects only an estimate that is short, not one a unit over',
    file: 'shared/decimal.ts',
    edits: [['  while (r < 0n) {\n    r += rung.power;\n    q--;\n  }\n', '']],
    tests: ['decimal'],
  },
  {
    id: 'gmp-shift-short',
    what: "the GMP path shifts N!'s odd part by one 2 too few",
    file: 'shared/kinds/factorial-describe.ts',
    edits: [['return entryOf(n, [await gmp.decimal(partials, twosLeft(n))], keepDecimal);', 'return entryOf(n, [await gmp.decimal(partials, twosLeft(n) - 1)], keepDecimal);']],
    tests: ['factorial'],
  },
  {
    id: 'factorial-unchecked',
    what: "a factorial's digits are reported without the check against N! mod a prime",
    file: 'shared/kinds/factorial-describe.ts',
    edits: [['  if (decimalMod(pieces, zeros) !== factorialMod(n)) throw', '  if (decimalMod(pieces, zeros) !== factorialMod(n) && n < 0) throw']],
    tests: ['factorial'],
  },
];

const args = process.argv.slice(2);
if (args.includes('--list')) {
  for (const m of MUTANTS) process.stdout.write(`${m.id.padEnd(24)} ${m.what}\n${''.padEnd(24)} caught by: ${m.tests.join(', ')}\n`);
  process.exit(0);
}
const onlyArg = args.find((a) => a.startsWith('--only'));
const only = onlyArg ? new Set((onlyArg.includes('=') ? onlyArg.split('=')[1] : args[args.indexOf(onlyArg) + 1]).split(',')) : null;
const chosen = MUTANTS.filter((m) => !only || only.has(m.id));

/** The scratch copy: the tracked files as they are in the work tree, node_modules linked. */
function scratchCopy() {
  const dir = mkdtempSync(join(tmpdir(), 'tally-mutants-'));
  const files = spawnSync('git', ['ls-files', '-z'], { cwd: root, encoding: 'utf8' }).stdout.split('\0').filter(Boolean);
  for (const file of files) {
    if (!existsSync(join(root, file))) continue;
    mkdirSync(dirname(join(dir, file)), { recursive: true });
    cpSync(join(root, file), join(dir, file));
  }
  symlinkSync(join(root, 'node_modules'), join(dir, 'node_modules'));
  // The GMP addon as built here (no mutant touches its C source): the factorial tests use it.
  if (existsSync(join(root, 'native', 'build'))) symlinkSync(join(root, 'native', 'build'), join(dir, 'native', 'build'));
  return dir;
}

function run(command, argv, cwd, timeoutMs) {
  // The per-user code cache is keyed by path: the scratch copy's modules must not borrow from it.
  const env = { ...process.env, TALLY_CODE_CACHE: 'off', CI: '' };
  delete env.NATS_URL;
  return spawnSync(command, argv, { cwd, env, encoding: 'utf8', timeout: timeoutMs, maxBuffer: 64 * 1024 * 1024 });
}

/** Applies a mutant's edits to a source text; throws when one does not match exactly once. */
function mutate(m, original) {
  let mutated = original;
  for (const [find, replace] of m.edits) {
    const hits = mutated.split(find).length - 1;
    if (hits !== 1) throw new Error(`${m.file}: expected 1 match, found ${hits}: ${find.slice(0, 80)}`);
    mutated = mutated.replace(find, replace);
  }
  return mutated;
}

if (args.includes('--check')) {
  let bad = 0;
  for (const m of chosen) {
    try {
      mutate(m, readFileSync(join(root, m.file), 'utf8'));
    } catch (error) {
      process.stderr.write(`mutants: ${m.id}: BROKEN (${error.message})\n`);
      bad++;
    }
  }
  process.stdout.write(`${chosen.length - bad} of ${chosen.length} mutants apply\n`);
  process.exit(bad > 0 ? 2 : 0);
}

const dir = scratchCopy();
process.stderr.write(`mutants: scratch copy in ${dir}\n`);
const results = [];
let broken = 0;
try {
  for (const m of chosen) {
    const path = join(dir, m.file);
    const original = readFileSync(path, 'utf8');
    let mutated;
    try {
      mutated = mutate(m, original);
    } catch (error) {
      process.stderr.write(`mutants: ${m.id}: BROKEN (${error.message})\n`);
      results.push({ ...m, outcome: 'broken' });
      broken++;
      continue;
    }
    writeFileSync(path, mutated);
    const t0 = Date.now();
    let build = run(process.execPath, [join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.json'], dir, 300_000);
    // The WebAssembly modules too: the tests compare each with its JavaScript twin.
    for (const config of ['wasm/asconfig.json', 'wasm/prime-sieve.asconfig.json']) {
      if (build.status === 0) build = run(process.execPath, [join(root, 'node_modules', 'assemblyscript', 'bin', 'asc.js'), '--config', config], dir, 300_000);
    }
    // And the bundles the tests run (bin/tally.js, the worker processes): as `npm run build` does.
    if (build.status === 0) build = run(process.execPath, ['scripts/bundle.mjs'], dir, 300_000);
    let outcome;
    if (build.status !== 0) {
      outcome = 'caught by the compiler';
    } else {
      const files = m.tests.map((name) => `dist/tests/${name}.test.js`);
      const tests = run(process.execPath, [join(root, 'node_modules', 'ava', 'entrypoints', 'cli.mjs'), ...files], dir, 15 * 60_000);
      const failing = [...(tests.stdout + tests.stderr).matchAll(/✘ \[fail\]: ([^\n]+)/g)].map((x) => x[1].slice(0, 120));
      outcome = tests.status === 0 ? 'SURVIVED' : `caught: ${failing.slice(0, 2).join(' | ') || `exit ${tests.status ?? tests.signal}`}`;
    }
    writeFileSync(path, original);
    process.stderr.write(`mutants: ${m.id}: ${outcome} (${Math.round((Date.now() - t0) / 1000)} s)\n`);
    results.push({ ...m, outcome });
  }
  // Leave the scratch copy built from the original sources (and then remove it).
} finally {
  rmSync(dir, { recursive: true, force: true });
}

process.stdout.write('\nmutant                    outcome\n');
for (const r of results) process.stdout.write(`${r.id.padEnd(25)} ${r.outcome}\n`);
const survived = results.filter((r) => r.outcome === 'SURVIVED');
process.stdout.write(`\n${results.length - survived.length - broken} of ${results.length} caught${survived.length ? `; survived: ${survived.map((r) => r.id).join(', ')}` : ''}\n`);
process.exit(broken > 0 ? 2 : survived.length > 0 ? 1 : 0);
