/**
 * The WebAssembly scanner (wasm/word-scanner.ts) against the JavaScript one, for both tokenizers:
 * built and chosen by default, the same partial lines (in whatever order) on real English and
 * multilingual text and on generated text, chunk by chunk, and the same `tally count` output end
 * to end. (tests/words.test.ts runs every tokenizer test on both and against the reference counter.)
 */
import test from 'ava';
import fc from 'fast-check';
import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ChunkWords, countChunk, type ChunkEdges, type CountSettings } from '../shared/text/words.js';
import type { Tokenizer } from '../shared/text/chunker.js';
import { scannerChoice, useScanner, type ScannerChoice } from '../shared/text/wasm-scanner.js';
import { arbitraryText, utf8 } from './helpers/texts.js';
import { referenceCount } from './helpers/reference-counter.js';
import { REPO_ROOT, cleanEnv, runTally, tempDir } from './helpers/tally.js';

/** Every localized TypeScript diagnostic message (15 languages, ~4 MB), as the bench's multilingual seed. */
function multilingual(): Buffer {
  const lib = join(REPO_ROOT, 'node_modules', 'typescript', 'lib');
  const parts: string[] = [];
  for (const locale of readdirSync(lib).sort()) {
    try {
      parts.push(...Object.values(JSON.parse(readFileSync(join(lib, locale, 'diagnosticMessages.generated.json'), 'utf8')) as Record<string, string>));
    } catch {
      // not a locale folder
    }
  }
  return Buffer.from(parts.join('\n'), 'utf8');
}

/** The project's own English prose: the README and docs/ (~0.5 MB). */
function english(): Buffer {
  const docs = join(REPO_ROOT, 'docs');
  const files = [join(REPO_ROOT, 'README.md'), ...readdirSync(docs).filter((name) => name.endsWith('.md')).sort().map((name) => join(docs, name))];
  return Buffer.concat(files.map((file) => readFileSync(file)));
}

/** A partial's or share's lines, sorted: the scanners may write them in different orders. */
function sortedLines(bytes: Uint8Array): string[] {
  return Buffer.from(bytes).toString('utf8').split('\n').sort();
}

/**
 * Tables filled chunk by chunk with the given scanner: their partial lines, shares and listing.
 * A table gives either its lines or its shares (the WebAssembly scanner writes them straight
 * from its own table): one table for each.
 */
function partials(choice: ScannerChoice, bytes: Uint8Array, chunkBytes: number, settings: CountSettings, edges: (index: number) => ChunkEdges) {
  useScanner(choice);
  try {
    let totals = [0, 0];
    const filled = () => {
      const words = new ChunkWords(settings.caseSensitive, bytes.length);
      totals = [0, 0];
      for (let at = 0, index = 0; at < bytes.length; at += chunkBytes, index++) {
        const counted = countChunk(bytes.subarray(at, at + chunkBytes), settings, edges(index), words);
        totals = [totals[0]! + counted.totalWords, totals[1]! + counted.overlongWords];
      }
      return words;
    };
    const lines = sortedLines(filled().encodeLines().bytes);
    const { shares, top } = filled().encodeSharesListing(3, 10);
    // Words tied at the listing's cut may be listed from either table: their counts are what must agree.
    return { totals, lines, shares: shares.map(sortedLines), listed: top.rows.map(([, count]) => count), unlisted: top.unlisted };
  } finally {
    useScanner(undefined);
  }
}

const plainEdges = (): ChunkEdges => ({ fileStart: false, continuesWord: false, endsInsideWord: false, wordCounted: false });
const TOKENIZERS: Tokenizer[] = ['unicode', 'whitespace'];

test('the WebAssembly scanner is built and chosen by default; TALLY_SCANNER=js chooses JavaScript', (t) => {
  t.is(scannerChoice(), 'wasm');
  useScanner('js');
  t.is(scannerChoice(), 'js');
  useScanner(undefined);
});

test('English and multilingual text, in chunks of several sizes, both case modes, both tokenizers: the same partial lines, shares and listings', (t) => {
  for (const [name, text] of [['english', english()], ['multilingual', multilingual()]] as const) {
    t.true(text.length > 30_000, `${name} corpus found`);
    for (const tokenizer of TOKENIZERS) {
      for (const caseSensitive of [false, true]) {
        for (const chunkBytes of [4096, 1 << 20]) {
          const settings: CountSettings = { tokenizer, caseSensitive, maxWordBytes: 40 };
          const wasm = partials('wasm', text, chunkBytes, settings, plainEdges);
          const js = partials('js', text, chunkBytes, settings, plainEdges);
          const label = `${name}, ${tokenizer}, ${chunkBytes}-byte chunks, ${caseSensitive ? 'case kept' : 'folded'}`;
          t.deepEqual(wasm.totals, js.totals, label);
          t.true(wasm.lines.length > 1000, `${label}: ${wasm.lines.length} lines`);
          t.deepEqual(wasm.lines, js.lines, `${label}: lines`);
          t.deepEqual(wasm.shares, js.shares, `${label}: shares`);
          t.deepEqual([wasm.listed, wasm.unlisted], [js.listed, js.unlisted], `${label}: listing`);
        }
      }
    }
  }
  // And the totals are the reference counter's (an independent regex tokenizer, or wc's rule), for one of them.
  const text = multilingual();
  for (const tokenizer of TOKENIZERS) {
    const settings: CountSettings = { tokenizer, caseSensitive: false, maxWordBytes: 1 << 20 };
    t.is(partials('wasm', text, text.length, settings, plainEdges).totals[0], referenceCount(text, settings).totalWords, tokenizer);
  }
});

test('property: generated text under random edge flags, into one table over several chunks: the same lines', (t) => {
  const flags = fc.record({ continuesWord: fc.boolean(), wordCounted: fc.boolean(), endsInsideWord: fc.boolean(), fileStart: fc.boolean() });
  fc.assert(
    fc.property(fc.array(fc.tuple(arbitraryText, flags), { minLength: 1, maxLength: 4 }), fc.constantFrom(...TOKENIZERS), fc.boolean(), fc.integer({ min: 1, max: 24 }), (chunks, tokenizer, caseSensitive, maxWordBytes) => {
      const settings: CountSettings = { tokenizer, caseSensitive, maxWordBytes };
      const bytes = Buffer.concat(chunks.map(([text]) => text));
      // Each piece is one chunk, with its own flags.
      const run = (choice: ScannerChoice) => {
        useScanner(choice);
        try {
          const words = new ChunkWords(caseSensitive, bytes.length);
          const totals = chunks.map(([text, edges]) => countChunk(text, settings, edges, words));
          return { totals: totals.map((c) => [c.totalWords, c.overlongWords]), lines: sortedLines(words.encodeLines().bytes) };
        } finally {
          useScanner(undefined);
        }
      };
      const wasm = run('wasm');
      const js = run('js');
      t.deepEqual(wasm.totals, js.totals);
      t.deepEqual(wasm.lines, js.lines, bytes.toString('hex').slice(0, 200));
    }),
    { numRuns: 400 },
  );
});

/** Mostly-ASCII text, where the WebAssembly scanner reads 64 bytes at a time: apostrophes in every position, runs across block edges. */
const asciiText = fc
  .array(
    fc.oneof(
      { weight: 8, arbitrary: fc.constantFrom('a', 'B', 'z', 'Q', 'word', 'The', 'THE', '0', '7', 'x1', "'", "''", ' ', '  ', '\n', '\t', '.', ',', '-', "don't", "rock'n'roll", "'tis", "dogs'", "a'b'c", "''x''") },
      { weight: 2, arbitrary: fc.tuple(fc.constantFrom('a', 'Z', '9', "a'", 'ab '), fc.integer({ min: 2, max: 90 })).map(([f, n]) => f.repeat(n)) },
      { weight: 1, arbitrary: fc.constantFrom('é', 'Σ', '’', '日本', '\u00a0', "l'été") },
    ),
    { maxLength: 200 },
  )
  .map((parts) => utf8(parts.join('')));

test('property: mostly-ASCII text, the 64-byte blocks at every alignment: the same as the JavaScript scanner and the reference', (t) => {
  fc.assert(
    fc.property(asciiText, fc.boolean(), fc.integer({ min: 1, max: 100 }), (bytes, caseSensitive, maxWordBytes) => {
      const settings: CountSettings = { tokenizer: 'unicode', caseSensitive, maxWordBytes };
      const wasm = partials('wasm', bytes, bytes.length || 1, settings, plainEdges);
      const js = partials('js', bytes, bytes.length || 1, settings, plainEdges);
      t.deepEqual(wasm.totals, js.totals);
      t.deepEqual(wasm.lines, js.lines, Buffer.from(bytes).toString('utf8').slice(0, 300));
      t.deepEqual(wasm.shares, js.shares, Buffer.from(bytes).toString('utf8').slice(0, 300));
      t.deepEqual([wasm.listed, wasm.unlisted], [js.listed, js.unlisted]);
      const reference = referenceCount(bytes, settings);
      t.deepEqual(wasm.totals, [reference.totalWords, reference.overlongWords]);
    }),
    { numRuns: 400 },
  );
});

/**
 * Bytes as the whitespace tokenizer sees them: the six whitespace bytes, printable ASCII around
 * the case bit (@ [ ` { ~), control bytes (which alone make no token), well-formed and ill-formed
 * UTF-8, and runs across the 64-byte blocks' edges.
 */
const whitespaceText = fc
  .array(
    fc.oneof(
      { weight: 8, arbitrary: fc.constantFrom(' ', '\t', '\n', '\v', '\f', '\r', '  ', 'a', 'B', 'Word', 'THE', '@', '[', '`', '{', '~', 'Z@[', 'x-y', '0', '\x00', '\x01', '\x1f', '\x7f', 'a\x01b').map((text) => Buffer.from(text, 'latin1')) },
      { weight: 3, arbitrary: fc.constantFrom('é', 'ÉCOLE', 'Σ', '日本', '\u00a0', '\u212a', '\ufeff').map(utf8) },
      { weight: 2, arbitrary: fc.constantFrom(0x80, 0xc0, 0xc3, 0xe6, 0xff).map((byte) => Buffer.from([byte])) },
      { weight: 2, arbitrary: fc.tuple(fc.constantFrom('a', 'Q', '\x01', 'é', 'ab ', 'x\t'), fc.integer({ min: 2, max: 90 })).map(([f, n]) => utf8(f.repeat(n))) },
    ),
    { maxLength: 200 },
  )
  .map((parts) => Buffer.concat(parts));

test('property: whitespace tokens, the 64-byte blocks at every alignment: the same as the JavaScript scanner and as wc counts', (t) => {
  fc.assert(
    fc.property(whitespaceText, fc.boolean(), fc.integer({ min: 1, max: 100 }), (bytes, caseSensitive, maxWordBytes) => {
      const settings: CountSettings = { tokenizer: 'whitespace', caseSensitive, maxWordBytes };
      // The bytes are a whole file (one chunk): a byte order mark that starts it is no part of a token.
      const wholeFile = (): ChunkEdges => ({ ...plainEdges(), fileStart: true });
      const wasm = partials('wasm', bytes, bytes.length || 1, settings, wholeFile);
      const js = partials('js', bytes, bytes.length || 1, settings, wholeFile);
      const shown = bytes.toString('hex').slice(0, 300);
      t.deepEqual(wasm.totals, js.totals, shown);
      t.deepEqual(wasm.lines, js.lines, shown);
      t.deepEqual(wasm.shares, js.shares, shown);
      t.deepEqual([wasm.listed, wasm.unlisted], [js.listed, js.unlisted], shown);
      const reference = referenceCount(bytes, settings);
      t.deepEqual(wasm.totals, [reference.totalWords, reference.overlongWords], shown);
    }),
    { numRuns: 400 },
  );
});

test('all-ASCII text: the shares the WebAssembly scanner writes from its own table are the whole table, which is then spent', (t) => {
  // The project's English docs with every non-ASCII byte made a space: no word leaves the scanner's table.
  const text = Buffer.from(english().map((b) => (b < 0x80 ? b : 0x20)));
  for (const [tokenizer, caseSensitive] of TOKENIZERS.flatMap((tokenizer) => [false, true].map((caseSensitive) => [tokenizer, caseSensitive] as const))) {
    const settings: CountSettings = { tokenizer, caseSensitive, maxWordBytes: 1 << 20 };
    const wasm = partials('wasm', text, text.length, settings, plainEdges);
    const js = partials('js', text, text.length, settings, plainEdges);
    t.deepEqual(wasm.shares, js.shares);
    t.deepEqual([wasm.listed, wasm.unlisted], [js.listed, js.unlisted]);
    // Every distinct word is on one share line, and the lines' counts add up to the text's words.
    const shareLines = wasm.shares.flatMap((lines) => lines.filter((line) => line.includes('\t')));
    t.is(shareLines.length, wasm.lines.filter((line) => line !== '').length);
    t.is(
      shareLines.reduce((sum, line) => sum + Number(line.split('\t')[1]), 0),
      referenceCount(text, settings).totalWords,
    );
  }
  useScanner('wasm');
  try {
    const words = new ChunkWords(false, text.length);
    countChunk(text, { tokenizer: 'unicode', caseSensitive: false, maxWordBytes: 40 }, plainEdges(), words);
    words.encodeSharesListing(2, 0);
    t.throws(() => words.encodeLines(), { message: /written out/ });
  } finally {
    useScanner(undefined);
  }
});

test('words whose line is not their stored bytes (KELVIN SIGN, capitals beyond ASCII, ill-formed UTF-8) are folded and merged before the scanner writes: one line each, listed exactly', (t) => {
  const text = utf8('kelvin \u212Aelvin KELVIN caf\u00e9 CAF\u00c9 \u00dcber \u00fcber ok\n'.repeat(3));
  useScanner('wasm');
  try {
    for (const [partitions, listed] of [[2, 10], [1, 0]]) {
      const words = new ChunkWords(false, text.length);
      countChunk(text, { tokenizer: 'unicode', caseSensitive: false, maxWordBytes: 64 }, plainEdges(), words);
      const written = partitions === 1 ? [Buffer.from(words.encodeLines().bytes).toString('utf8').split('\n').slice(0, -1)] : [];
      const { shares, top } = partitions === 1 ? { shares: [], top: null } : words.encodeSharesListing(partitions, listed);
      const lines = [...written.flat(), ...shares.flatMap((share) => Buffer.from(share).toString('utf8').split('\n').slice(1, -1))];
      t.deepEqual(lines.sort(), ['caf\u00e9\t6', 'kelvin\t9', 'ok\t3', '\u00fcber\t6'], `${partitions} partition(s)`);
      if (top) t.deepEqual(top, { rows: [['kelvin', 9], ['caf\u00e9', 6], ['\u00fcber', 6], ['ok', 3]], unlisted: 0, beyond: 0 });
    }
    // Whitespace tokens may be ill-formed UTF-8: written as decoded (U+FFFD), merged with a real U+FFFD.
    const words = new ChunkWords(true, 16);
    countChunk(Buffer.from([0x61, 0xff, 0x20, 0x61, 0xef, 0xbf, 0xbd, 0x20, 0x61, 0xff, 0x0a]), { tokenizer: 'whitespace', caseSensitive: true, maxWordBytes: 64 }, plainEdges(), words);
    t.deepEqual(Buffer.from(words.encodeLines().bytes).toString('utf8'), 'a\ufffd\t3\n');
  } finally {
    useScanner(undefined);
  }
});

test('tally count: the same output with TALLY_SCANNER=wasm and =js, either tokenizer; a bad value is one line, exit 2', async (t) => {
  const dir = tempDir();
  try {
    const file = join(dir.path, 'mixed.txt');
    writeFileSync(file, Buffer.concat([english(), multilingual().subarray(0, 300_000)]));
    const strip = (out: string) => {
      const { job: _job, ...rest } = JSON.parse(out) as Record<string, unknown>;
      return rest;
    };
    for (const tokenizer of TOKENIZERS) {
      const args = ['count', file, '--chunk-size', '64K', '--tokenizer', tokenizer, '--format', 'json'];
      const [wasm, js] = await Promise.all([runTally(args, { env: cleanEnv({ TALLY_SCANNER: 'wasm' }) }), runTally(args, { env: cleanEnv({ TALLY_SCANNER: 'js' }) })]);
      t.is(wasm.code, 0, wasm.stderr);
      t.is(js.code, 0, js.stderr);
      t.deepEqual(strip(wasm.stdout), strip(js.stdout), tokenizer);
    }
    const args = ['count', file, '--chunk-size', '64K', '--format', 'json'];
    const bad = await runTally(args, { env: cleanEnv({ TALLY_SCANNER: 'simd' }) });
    t.is(bad.code, 2);
    t.is(bad.stderr.trim().split('\n').length, 1, bad.stderr);
    t.regex(bad.stderr, /TALLY_SCANNER: must be auto, wasm or js/);
  } finally {
    dir.remove();
  }
});
