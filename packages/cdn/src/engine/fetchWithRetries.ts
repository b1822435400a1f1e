import { SluiceError } from '@sluice/protocol';
import { Transient } from './errors.js';

export interface RetryPolicy {
  /** Names the object in the error after the last attempt. */
  what: string;
  /** Retries after the first attempt. */
  retries: number;
  /** First retry delay in ms; doubles per attempt up to `maxBackoffMs`, with jitter. */
  backoffMs: number;
  maxBackoffMs: number;
}

/**
 * Runs `attempt` for chunk `index` until it succeeds, retrying `Transient` failures with
 * exponential backoff and jitter; any other failure, or `stop` firing, ends it at once.
 */
export async function fetchWithRetries(
  index: number,
  policy: RetryPolicy,
  stop: AbortSignal,
  attempt: () => Promise<Buffer>,
): Promise<Buffer> {
  for (let tried = 0; ; tried++) {
    try {
      return await attempt();
    } catch (e) {
      if (stop.aborted) throw e;
      if (!(e instanceof Transient)) throw e;
      if (tried >= policy.retries) {
        throw new SluiceError(
          'ERR_NETWORK',
          `chunk ${index} of ${policy.what} failed after ${tried + 1} attempts: ${e.message}`,
          { cause: e.cause ?? e },
        );
      }
      const delay = Math.min(policy.maxBackoffMs, policy.backoffMs * 2 ** tried);
      await sleep(delay * (0.5 + Math.random() / 2), stop);
    }
  }
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) {
      reject(signal.reason);
      return;
    }
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal.reason);
    };
    signal.addEventListener('abort', onAbort, { once: true });
  });
}
