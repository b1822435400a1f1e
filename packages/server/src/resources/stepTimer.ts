import { performance } from 'node:perf_hooks';

/**
 * Times the steps of one request into a `Server-Timing` header (`kdf;dur=41.2, seal;dur=0.3`),
 * which `pnpm bench:api` sums up. Off by default (`SLUICE_SERVER_TIMING=1`, read by the
 * settings); when off, `lap` and `header` do nothing.
 */
export class StepTimer {
  private readonly steps: string[] = [];
  private last: number;

  constructor(private readonly enabled: boolean) {
    this.last = enabled ? performance.now() : 0;
  }

  /** Ends the step running since the previous lap (or the timer's creation) as `name`. */
  lap(name: string): void {
    if (!this.enabled) return;
    const now = performance.now();
    this.steps.push(`${name};dur=${(now - this.last).toFixed(3)}`);
    this.last = now;
  }

  /** Adds a step that took no time but says something, e.g. `cache;desc=hit`. */
  note(name: string, desc: string): void {
    if (this.enabled) this.steps.push(`${name};desc=${desc}`);
  }

  /** The header value, or undefined when timing is off. */
  header(): string | undefined {
    return this.enabled ? this.steps.join(', ') : undefined;
  }
}
