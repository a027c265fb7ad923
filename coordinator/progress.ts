/**
 * The progress bar on stderr: tasks done/total, throughput and ETA. Drawn only on a TTY and
 * never with --no-progress, so scripts and pipes see clean output.
 */
import type { JobProgress } from './job-runner.js';
import { setStatusLine, type StatusLine } from '../shared/log.js';

export interface ProgressBarOptions {
  enabled: boolean;
  stream?: NodeJS.WriteStream;
  /** Minimum milliseconds between redraws. Default 100. */
  intervalMs?: number;
}

function formatRate(perSecond: number, unit: JobProgress['unit']): string {
  if (unit === 'B') return `${(perSecond / 1e6).toFixed(1)} MB/s`;
  if (perSecond >= 1e6) return `${(perSecond / 1e6).toFixed(1)}M/s`;
  if (perSecond >= 1e3) return `${(perSecond / 1e3).toFixed(1)}k/s`;
  return `${perSecond.toFixed(0)}/s`;
}

function formatSeconds(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return '--';
  if (seconds < 60) return `${Math.ceil(seconds)}s`;
  return `${Math.floor(seconds / 60)}m${String(Math.ceil(seconds % 60)).padStart(2, '0')}s`;
}

/** Renders progress lines; `update` may be called at any rate. */
export class ProgressBar implements StatusLine {
  private readonly stream: NodeJS.WriteStream;
  private readonly enabled: boolean;
  private readonly intervalMs: number;
  private lastDraw = 0;
  private drawn = false;
  /** The line as last drawn, for drawing it again under a log line. */
  private text = '';

  constructor(options: ProgressBarOptions) {
    this.stream = options.stream ?? process.stderr;
    this.enabled = options.enabled && this.stream.isTTY === true;
    this.intervalMs = options.intervalMs ?? 100;
  }

  /** True when the bar is drawn (a terminal, and not turned off). */
  get active(): boolean {
    return this.enabled;
  }

  update(progress: JobProgress): void {
    if (!this.enabled) return;
    const now = Date.now();
    if (now - this.lastDraw < this.intervalMs) return;
    this.lastDraw = now;
    this.text = ProgressBar.line(progress, now, this.stream.columns ?? 80);
    this.redraw();
    // Log lines written from now on clear the bar first (see setStatusLine).
    if (!this.drawn) setStatusLine(this);
    this.drawn = true;
  }

  /** Erases the bar (a log line is about to be written). */
  clear(): void {
    this.stream.write('\r\x1b[K');
  }

  /** Draws the bar again, on the line the cursor is on. */
  redraw(): void {
    this.stream.write(`\r${this.text}\x1b[K`);
  }

  /** Clears the bar so the result prints on a clean line. */
  finish(): void {
    if (this.drawn) {
      this.clear();
      setStatusLine(null);
    }
    this.drawn = false;
  }

  /** One progress line (exported for tests of the wording). */
  static line(p: JobProgress, now: number, columns: number): string {
    const elapsed = Math.max(0.001, (now - p.startedAt) / 1000);
    const fraction = p.weightTotal ? p.weightDone / p.weightTotal : p.tasksTotal ? p.tasksDone / p.tasksTotal : 0;
    const rate = p.weightDone / elapsed;
    const eta = fraction > 0 ? (elapsed * (1 - fraction)) / fraction : NaN;
    const tasks = `${p.tasksDone}/${p.tasksTotal ?? '?'} tasks`;
    // Once every map task is in, the reducers fold the partitions: no byte rate to go on.
    const status = p.waitingForWorkers ? 'waiting for workers' : p.phase === 'reduce' ? `reducing ${p.partsDone}/${p.partitions} partitions` : `${formatRate(rate, p.unit)}  ETA ${formatSeconds(eta)}`;
    const text = `${tasks}  ${status}`;
    const width = Math.max(10, Math.min(40, columns - text.length - 10));
    const filled = Math.round(Math.min(1, fraction) * width);
    return `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${(fraction * 100).toFixed(0).padStart(3)}%  ${text}`;
  }
}
