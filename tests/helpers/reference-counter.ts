/**
 * Obviously-correct word counters for the tests: whole text in memory, a regex, a Map. Slow
 * and simple on purpose; tally's streaming, chunked, byte-level counter must agree with them.
 */

/** Code point order (not UTF-16 unit order), as the count contract sorts words. */
export function compareCodePoints(a: string, b: string): number {
  const x = [...a];
  const y = [...b];
  for (let i = 0; i < Math.min(x.length, y.length); i++) {
    const d = x[i]!.codePointAt(0)! - y[i]!.codePointAt(0)!;
    if (d !== 0) return d;
  }
  return x.length - y.length;
}

export interface ReferenceCount {
  totalWords: number;
  overlongWords: number;
  counts: Array<[string, number]>;
}

function finish(map: Map<string, number>, totalWords: number, overlongWords: number): ReferenceCount {
  const counts = [...map.entries()].sort((a, b) => b[1] - a[1] || compareCodePoints(a[0], b[0]));
  return { totalWords, overlongWords, counts };
}

/** The unicode tokenizer contract, as one regex over the decoded text. */
export function referenceUnicodeCount(texts: Uint8Array[], options: { caseSensitive?: boolean; maxWordBytes?: number } = {}): ReferenceCount {
  const max = options.maxWordBytes ?? 1024;
  const map = new Map<string, number>();
  let total = 0;
  let overlong = 0;
  for (const bytes of texts) {
    const text = new TextDecoder().decode(bytes);
    for (const match of text.matchAll(/[\p{L}\p{M}\p{N}]+(?:['’][\p{L}\p{M}\p{N}]+)*/gu)) {
      total++;
      if (Buffer.byteLength(match[0]) > max) {
        overlong++;
        continue;
      }
      const word = options.caseSensitive ? match[0] : match[0].toLowerCase();
      map.set(word, (map.get(word) ?? 0) + 1);
    }
  }
  return finish(map, total, overlong);
}

/** The whitespace tokenizer contract: runs of non-whitespace bytes holding a printable ASCII byte. */
export function referenceWhitespaceCount(texts: Uint8Array[], options: { caseSensitive?: boolean; maxWordBytes?: number } = {}): ReferenceCount {
  const max = options.maxWordBytes ?? 1024;
  const map = new Map<string, number>();
  let total = 0;
  let overlong = 0;
  for (const bytes of texts) {
    const tokens = Buffer.from(bytes).toString('latin1').split(/[ \t\n\v\f\r]+/);
    for (const token of tokens) {
      if (!/[\x21-\x7e]/.test(token)) continue;
      total++;
      if (token.length > max) {
        overlong++;
        continue;
      }
      const decoded = new TextDecoder().decode(Buffer.from(token, 'latin1'));
      const word = options.caseSensitive ? decoded : decoded.toLowerCase();
      map.set(word, (map.get(word) ?? 0) + 1);
    }
  }
  return finish(map, total, overlong);
}
