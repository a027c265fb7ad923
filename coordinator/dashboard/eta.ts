/**
 * A job's measured rate and the ETA that follows from it, with its uncertainty. No rate, no
 * ETA: a guess before there is anything to go on is what made other dashboards' ETAs lie.
 */

/** One look at a job's progress: when (epoch ms), tasks and weight (bytes, numbers) done. */
export interface ProgressSample {
  t: number;
  tasksDone: number;
  weightDone: number;
  /** Weight per second since the previous sample; null for the first. */
  rate: number | null;
}

/** When the job should end, from now, with the spread the measured rate allows. */
export interface Eta {
  /** Seconds left at the fitted rate. */
  seconds: number;
  /** Half the width of the range the rate's uncertainty (± 2 standard errors) allows; null when the slow end is unbounded. */
  plusMinus: number | null;
  /** Weight per second, fitted. */
  rate: number;
  /** Samples the fit used. */
  samples: number;
}

/** Samples the fit needs at least: two points always fit a line exactly. */
export const MIN_SAMPLES = 3;
/** Only this many of the latest samples count: the rate now, not the rate at the start. */
const WINDOW = 30;

/**
 * Fits weight done against time over the latest samples (least squares) and divides the weight
 * left by the slope. Undefined without a total, with fewer than {@link MIN_SAMPLES} samples
 * that span some time, or without progress.
 */
export function estimateEta(samples: readonly ProgressSample[], weightTotal: number | null): Eta | undefined {
  if (weightTotal === null || samples.length < MIN_SAMPLES) return undefined;
  const recent = samples.slice(-WINDOW);
  const n = recent.length;
  const t0 = recent[0]!.t;
  const xs = recent.map((s) => (s.t - t0) / 1000);
  const ys = recent.map((s) => s.weightDone);
  const mx = xs.reduce((a, b) => a + b, 0) / n;
  const my = ys.reduce((a, b) => a + b, 0) / n;
  let sxx = 0;
  let sxy = 0;
  for (let i = 0; i < n; i++) {
    sxx += (xs[i]! - mx) ** 2;
    sxy += (xs[i]! - mx) * (ys[i]! - my);
  }
  if (sxx === 0) return undefined;
  const rate = sxy / sxx;
  if (!(rate > 0)) return undefined;
  let sse = 0;
  for (let i = 0; i < n; i++) sse += (ys[i]! - (my + rate * (xs[i]! - mx))) ** 2;
  const stderr = n > 2 ? Math.sqrt(sse / (n - 2) / sxx) : 0;
  const left = Math.max(0, weightTotal - recent[n - 1]!.weightDone);
  const seconds = left / rate;
  const fast = left / (rate + 2 * stderr);
  const slow = rate - 2 * stderr > 0 ? left / (rate - 2 * stderr) : null;
  return { seconds, plusMinus: slow === null ? null : (slow - fast) / 2, rate, samples: n };
}
