import type { Io } from './command.js';
import { formatSize } from './units.js';

/** A one-line progress bar on a terminal's stderr, redrawn at most ten times a second. */
export class ProgressBar {
  private readonly started = performance.now();
  private lastDraw = 0;
  private drawn = false;

  /** A bar for a transfer, shown only on a terminal and never with `--json`. */
  static forTerminal(io: Io, json: boolean | undefined, label: string): ProgressBar | undefined {
    return io.isTty && !json ? new ProgressBar(label) : undefined;
  }

  constructor(
    private readonly label: string,
    private readonly stream: NodeJS.WriteStream = process.stderr,
  ) {}

  update(done: number, total: number): void {
    const now = performance.now();
    if (now - this.lastDraw < 100 && done < total) return;
    this.lastDraw = now;
    const width = 30;
    const frac = total > 0 ? Math.min(1, done / total) : 0;
    const filled = Math.round(frac * width);
    const secs = (now - this.started) / 1000;
    const rate = secs > 0 ? done / 1e6 / secs : 0;
    const line =
      `${this.label} [${'#'.repeat(filled)}${'-'.repeat(width - filled)}] ` +
      `${(frac * 100).toFixed(0).padStart(3)}% ${formatSize(done)} / ${formatSize(total)} ` +
      `${rate.toFixed(0)} MB/s`;
    this.stream.write(`\r${line}\u001b[K`);
    this.drawn = true;
  }

  /** Ends the line so what follows starts on a fresh one. */
  finish(): void {
    if (this.drawn) this.stream.write('\n');
    this.drawn = false;
  }
}
