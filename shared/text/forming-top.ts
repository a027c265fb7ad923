/**
 * The most frequent words of a job while it forms, with honest bounds.
 *
 * A partitioned count never has the whole table on the coordinator (the reducers build it at
 * the end), so each map task lists its own K most frequent words and the largest count of any
 * word it did not list (`unlisted`). Folding those lists gives, for every listed word, a count
 * it has at least (the sum of what tasks listed) and at most (plus the `unlisted` of every task
 * that did not list it). Frequent words are listed by every task and come out exact; the page
 * shows the range for the others and converges to the final table when the job ends.
 */

/** What one task reports: its K most frequent words, and the largest count of the rest. */
export interface ListedTop {
  rows: [string, number][];
  /** No word the task did not list occurs more often than this in its input. */
  unlisted: number;
  /**
   * Occurrences of any word, listed or not, that the listing cannot vouch for (n-grams that
   * straddle the task's edges, joined by the coordinator; a second spelling of a listed word):
   * they widen every word's upper bound.
   */
  beyond?: number;
}

/** A row of the forming table: the word, and bounds on its count in the input folded so far. */
export type BoundedRow = [word: string, atLeast: number, atMost: number];

/** Words each map task lists. */
export const LISTED_PER_TASK = 32;

/** Rows a preview shows. */
export const PREVIEW_ROWS = 20;

/**
 * Keeps the `k` largest of what it is offered (a min-heap) and the largest count it did not
 * keep: what a task needs to report its {@link ListedTop} in one pass over its table.
 */
export class TopK<T> {
  private readonly counts: number[] = [];
  private readonly items: T[] = [];
  /** The largest count offered and not kept (evicted or refused). */
  unlisted = 0;

  constructor(private readonly k: number) {}

  offer(count: number, item: T): void {
    const { counts, items } = this;
    if (counts.length < this.k) {
      counts.push(count);
      items.push(item);
      this.up(counts.length - 1);
      return;
    }
    if (this.k === 0 || count <= counts[0]!) {
      if (count > this.unlisted) this.unlisted = count;
      return;
    }
    if (counts[0]! > this.unlisted) this.unlisted = counts[0]!;
    counts[0] = count;
    items[0] = item;
    this.down(0);
  }

  /** What was kept, most frequent first. */
  kept(): Array<[T, number]> {
    return this.items.map((item, i): [T, number] => [item, this.counts[i]!]).sort((a, b) => b[1] - a[1]);
  }

  private up(i: number): void {
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (this.counts[parent]! <= this.counts[i]!) return;
      this.swap(i, parent);
      i = parent;
    }
  }

  private down(i: number): void {
    const n = this.counts.length;
    for (;;) {
      const left = 2 * i + 1;
      const right = left + 1;
      let least = i;
      if (left < n && this.counts[left]! < this.counts[least]!) least = left;
      if (right < n && this.counts[right]! < this.counts[least]!) least = right;
      if (least === i) return;
      this.swap(i, least);
      i = least;
    }
  }

  private swap(a: number, b: number): void {
    [this.counts[a], this.counts[b]] = [this.counts[b]!, this.counts[a]!];
    [this.items[a], this.items[b]] = [this.items[b]!, this.items[a]!];
  }
}

/** Words the coordinator keeps bounds for, at most (then the least frequent half is let go). */
const MAX_TRACKED = 4096;

interface Tracked {
  /** Sum of the counts tasks listed. */
  atLeast: number;
  /** Sum of the `unlisted` of the tasks that listed it (they cannot hide more of it). */
  listedSlack: number;
}

/**
 * The coordinator's fold of every task's {@link ListedTop}. Memory is bounded by MAX_TRACKED
 * words whatever the input; a word let go keeps its bounds honest through `forgotten`.
 */
export class FormingTop {
  private readonly words = new Map<string, Tracked>();
  /** Sum of every folded task's `unlisted`. */
  private slack = 0;
  /** Sum of every folded task's `beyond`. */
  private beyond = 0;
  /**
   * How far above `atLeast + slack - listedSlack` a word let go earlier may be: a word seen
   * again after it was let go starts from zero, so its earlier counts are covered by this.
   */
  private forgotten = 0;
  /** Tasks folded. */
  tasks = 0;

  fold(top: ListedTop): void {
    this.tasks++;
    this.slack += top.unlisted;
    this.beyond += top.beyond ?? 0;
    // A word may be listed on two lines (two spellings that fold alike): its slack counts once.
    const listed = new Map<string, number>();
    for (const [word, count] of top.rows) listed.set(word, (listed.get(word) ?? 0) + count);
    for (const [word, count] of listed) {
      const tracked = this.words.get(word);
      if (tracked) {
        tracked.atLeast += count;
        tracked.listedSlack += top.unlisted;
      } else {
        this.words.set(word, { atLeast: count, listedSlack: top.unlisted });
      }
    }
    if (this.words.size > MAX_TRACKED) this.forget();
  }

  /** Lets go of the less frequent half; what they may still have is added to `forgotten`. */
  private forget(): void {
    const byCount = [...this.words.entries()].sort((a, b) => b[1].atLeast - a[1].atLeast);
    let most = 0;
    for (const [word, tracked] of byCount.slice(MAX_TRACKED / 2)) {
      most = Math.max(most, tracked.atLeast - tracked.listedSlack);
      this.words.delete(word);
    }
    this.forgotten += Math.max(0, most);
  }

  /**
   * The `n` words with the largest lower bound, with both bounds, and the largest count any
   * other word can have (one let go, one never listed, or one just below the rows).
   */
  preview(n: number): { rows: BoundedRow[]; unlistedAtMost: number } {
    const top = new TopK<string>(n);
    for (const [word, tracked] of this.words) top.offer(tracked.atLeast, word);
    const atMost = (tracked: Tracked) => tracked.atLeast + this.slack - tracked.listedSlack + this.forgotten + this.beyond;
    const rows = top.kept().map(([word, atLeast]): BoundedRow => [word, atLeast, atMost(this.words.get(word)!)]);
    const shown = new Set(rows.map((row) => row[0]));
    let unlistedAtMost = this.slack + this.forgotten + this.beyond;
    for (const [word, tracked] of this.words) if (!shown.has(word)) unlistedAtMost = Math.max(unlistedAtMost, atMost(tracked));
    return { rows, unlistedAtMost };
  }
}

/** What a text job shows of itself while it forms (the preview of count and ngrams). */
export interface TablePreview {
  rows: BoundedRow[];
  /** No word outside `rows` has a count above this (in what was folded so far). */
  unlistedAtMost: number;
  /** True when the bounds are the exact counts of what was folded (the coordinator holds the table). */
  exact: boolean;
}
