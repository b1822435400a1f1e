import type { Io } from '../command.js';

export interface Step {
  step: string;
  ms: number;
  detail: string;
  mbPerSec?: number;
}

/** The demo's steps as they complete: one line each, or kept for the final JSON object. */
export class StepLog {
  readonly steps: Step[] = [];

  constructor(
    private readonly io: Io,
    private readonly json: boolean | undefined,
  ) {}

  /**
   * Runs one step (which throws when what it shows did not hold), timed, then records it with
   * what `outcome` says of its result.
   */
  async run<T>(
    step: string,
    job: () => Promise<T>,
    outcome: (result: T, ms: number) => { detail: string; mbPerSec?: number },
  ): Promise<T> {
    const t0 = performance.now();
    const result = await job();
    const ms = Math.round(performance.now() - t0);
    const s = { step, ms, ...outcome(result, ms) };
    this.steps.push(s);
    if (!this.json) {
      const rate = s.mbPerSec === undefined ? '' : `  ${s.mbPerSec.toFixed(0)} MB/s`;
      this.io.out(`${s.step.padEnd(14)} ${String(s.ms).padStart(6)} ms  ${s.detail}${rate}`);
    }
    return result;
  }
}
