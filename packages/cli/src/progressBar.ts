import type { Io } from './command.js';
import { formatSize } from './units.js';

/** What a transfer reports its progress to. */
export interface Progress {
  update(done: number, total: number): void;
  /** Ends the display so what follows starts on a fresh line. */
  finish(): void;
}

/** The rate is measured over the last this many milliseconds, not since the start. */
const RATE_WINDOW_MS = 5000;
/** Redraws at most this often (the last one, at 100 %, always). */
const REDRAW_MS = 100;
const MIN_BAR = 10;

/**
 * A one-line progress bar on a terminal's stderr: label, bar, percentage, bytes, the current
 * rate and an ETA, fitted to the terminal's width at every redraw (one column short of it, so a
 * terminal never wraps the line).
 */
export class ProgressBar implements Progress {
  private readonly samples: { t: number; bytes: number }[] = [];
  private lastDraw = Number.NEGATIVE_INFINITY;
  private drawn = false;

  /** A bar, only on a terminal and never with `-q`, `--no-progress` or `--json`. */
  static forTerminal(io: Io, json: boolean | undefined, label: string): ProgressBar | undefined {
    return io.progress && json !== true ? new ProgressBar(label) : undefined;
  }

  /** For one transfer: with `-v` a detail line per range reported (no bar), else `forTerminal`. */
  static forTransfer(io: Io, json: boolean | undefined, label: string): Progress | undefined {
    if (io.verbose && json !== true) return new RangeLines(io, label);
    return ProgressBar.forTerminal(io, json, label);
  }

  constructor(
    private readonly label: string,
    private readonly stream: NodeJS.WriteStream = process.stderr,
    private readonly now: () => number = () => performance.now(),
  ) {}

  update(done: number, total: number): void {
    const t = this.now();
    this.sample(t, done);
    if (t - this.lastDraw < REDRAW_MS && done < total) return;
    this.lastDraw = t;
    const columns = this.stream.columns || Number(process.env.COLUMNS) || 80;
    const line = renderProgress({ label: this.label, done, total, rate: this.rate(), columns });
    this.stream.write(`\r${line}\u001b[K`);
    this.drawn = true;
  }

  finish(): void {
    if (this.drawn) this.stream.write('\n');
    this.drawn = false;
  }

  private sample(t: number, bytes: number): void {
    const last = this.samples.at(-1);
    if (last !== undefined && bytes < last.bytes) this.samples.length = 0; // started over
    this.samples.push({ t, bytes });
    // Keep one sample at or before the window's start, so the window is always covered.
    while ((this.samples[1]?.t ?? t) <= t - RATE_WINDOW_MS) this.samples.shift();
  }

  /** Bytes per second over the window, or undefined before there are two samples apart in time. */
  private rate(): number | undefined {
    const first = this.samples[0];
    const last = this.samples.at(-1);
    if (first === undefined || last === undefined || last.t - first.t < 1) return undefined;
    return ((last.bytes - first.bytes) * 1000) / (last.t - first.t);
  }
}

/** With `-v`: one detail line per reported range instead of a bar. */
class RangeLines implements Progress {
  private readonly started = performance.now();
  private last = 0;

  constructor(
    private readonly io: Io,
    private readonly label: string,
  ) {}

  update(done: number, total: number): void {
    const ms = Math.round(performance.now() - this.started);
    this.io.detail(
      `${this.label}: +${formatSize(Math.max(0, done - this.last))}, ` +
        `${formatSize(done)} of ${formatSize(total)} after ${ms} ms`,
    );
    this.last = done;
  }

  finish(): void {}
}

/** One progress line of at most `columns - 1` characters. */
export function renderProgress(p: {
  label: string;
  done: number;
  total: number;
  rate: number | undefined;
  columns: number;
}): string {
  const frac = p.total > 0 ? Math.min(1, p.done / p.total) : 0;
  const rate = p.rate === undefined ? '-- MB/s' : `${(p.rate / 1e6).toFixed(1)} MB/s`;
  const eta =
    p.done >= p.total ? 0 : p.rate ? (p.total - p.done) / p.rate : Number.POSITIVE_INFINITY;
  // Fixed widths, so the bar does not change length as the numbers grow.
  const total = formatSize(p.total);
  const percent = `${(frac * 100).toFixed(0).padStart(3)}%`;
  const timing = `${rate.padStart(11)} ETA ${clock(eta).padStart(5)}`;
  const width = p.columns - 1;
  const full = `${percent} ${formatSize(p.done).padStart(total.length)} / ${total} ${timing}`;
  // A narrow terminal loses the byte counts before it loses the rate and the ETA.
  const stats = full.length <= width ? full : `${percent} ${timing.trimStart()}`;
  const room = width - stats.length - 1; // for the label and the bar, one space before stats
  let head = '';
  if (room >= MIN_BAR + 3) {
    const label = fit(p.label, Math.max(0, room - (MIN_BAR + 3)), Math.floor(room / 2));
    const barWidth = room - label.length - (label === '' ? 2 : 3);
    const filled = Math.round(frac * barWidth);
    const bar = `[${'#'.repeat(filled)}${'-'.repeat(barWidth - filled)}]`;
    head = label === '' ? `${bar} ` : `${label} ${bar} `;
  }
  return `${head}${stats}`.slice(0, Math.max(0, width));
}

/** `label` in at most `max` characters (at most `share` when the bar can take the rest). */
function fit(label: string, max: number, share: number): string {
  const limit = Math.min(max, Math.max(share, 0));
  if (label.length <= limit) return label;
  return limit <= 1 ? '' : `${label.slice(0, limit - 1)}…`;
}

/** `1:05`, `1:02:03`, `--:--` when not known. */
function clock(seconds: number): string {
  if (!Number.isFinite(seconds)) return '--:--';
  const s = Math.ceil(seconds);
  const [h, m, sec] = [Math.floor(s / 3600), Math.floor((s % 3600) / 60), s % 60];
  const two = (n: number) => String(n).padStart(2, '0');
  return h > 0 ? `${h}:${two(m)}:${two(sec)}` : `${m}:${two(sec)}`;
}
