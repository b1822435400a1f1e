import { performance } from 'node:perf_hooks';

/** Whether routes time their steps (`SLUICE_SERVER_TIMING=1`; off by default, for benchmarks). */
export const SERVER_TIMING = process.env.SLUICE_SERVER_TIMING === '1';

/**
 * Times the steps of one request into a `Server-Timing` header (`kdf;dur=41.2, seal;dur=0.3`),
 * which `pnpm bench:api` sums up. When timing is off, `lap` and `header` do nothing.
 */
export class StepTimer {
  private readonly steps: string[] = [];
  private last = SERVER_TIMING ? performance.now() : 0;

  /** Ends the step running since the previous lap (or the timer's creation) as `name`. */
  lap(name: string): void {
    if (!SERVER_TIMING) return;
    const now = performance.now();
    this.steps.push(`${name};dur=${(now - this.last).toFixed(3)}`);
    this.last = now;
  }

  /** Adds a step that took no time but says something, e.g. `cache;desc=hit`. */
  note(name: string, desc: string): void {
    if (SERVER_TIMING) this.steps.push(`${name};desc=${desc}`);
  }

  /** The header value, or undefined when timing is off. */
  header(): string | undefined {
    return SERVER_TIMING ? this.steps.join(', ') : undefined;
  }
}
