import { setTimeout as sleep } from 'node:timers/promises';
import { abortError } from '../platform/abort.js';

export interface RetryPolicyOptions {
  /** Extra attempts after the first. */
  retries: number;
  /** First backoff delay in ms; doubles per attempt. */
  retryBaseMs: number;
  /** Longest single delay in ms, also the cap on a server's Retry-After. */
  retryMaxMs: number;
}

/** How often and how long an idempotent request waits before it is sent again. */
export class RetryPolicy {
  constructor(private readonly options: RetryPolicyOptions) {}

  /** Whether another attempt may follow attempt number `attempt` (0 for the first). */
  allows(attempt: number): boolean {
    return attempt < this.options.retries;
  }

  /** Exponential backoff with jitter: half the doubled delay fixed, half random. */
  async wait(
    attempt: number,
    retryAfterSeconds: number | undefined,
    signal: AbortSignal | undefined,
  ): Promise<void> {
    const { retryBaseMs, retryMaxMs } = this.options;
    const ceiling = Math.min(retryMaxMs, retryBaseMs * 2 ** attempt);
    let delay = ceiling / 2 + (Math.random() * ceiling) / 2;
    if (retryAfterSeconds !== undefined) {
      delay = Math.min(retryMaxMs, Math.max(delay, retryAfterSeconds * 1000));
    }
    try {
      await sleep(delay, undefined, { signal });
    } catch (e) {
      if (signal?.aborted) throw abortError(signal);
      throw e;
    }
  }
}
