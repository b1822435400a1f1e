import { SluiceError } from '@sluice/protocol';
import { abortError } from '../platform/abort.js';

interface Waiter {
  max: number;
  resolve: (granted: number) => void;
}

/**
 * A counting semaphore shared by many operations (pullMany's API and CDN limits): waiters are
 * served first come first served, and a waiter alone in line takes as many free slots as it asked
 * for, so one download can use the whole CDN budget when nothing else waits.
 */
export class Limiter {
  readonly limit: number;
  #free: number;
  readonly #queue: Waiter[] = [];

  constructor(limit: number) {
    if (!Number.isSafeInteger(limit) || limit <= 0) {
      throw new SluiceError('ERR_INVALID_ARG', `a limit must be a positive integer, got ${limit}`);
    }
    this.limit = limit;
    this.#free = limit;
  }

  /** Slots taken now. */
  get active(): number {
    return this.limit - this.#free;
  }

  /** Waits for at least one slot and takes up to `max` (≥ 1); resolves with how many it took. */
  acquire(max = 1, signal?: AbortSignal): Promise<number> {
    if (!Number.isSafeInteger(max) || max <= 0) {
      throw new SluiceError('ERR_INVALID_ARG', `max must be a positive integer, got ${max}`);
    }
    if (signal?.aborted) return Promise.reject(abortError(signal));
    if (this.#free > 0 && this.#queue.length === 0) {
      const granted = Math.min(max, this.#free);
      this.#free -= granted;
      return Promise.resolve(granted);
    }
    return new Promise<number>((resolve, reject) => {
      const onAbort = () => {
        const i = this.#queue.indexOf(waiter);
        if (i >= 0) this.#queue.splice(i, 1);
        reject(abortError(signal as AbortSignal));
      };
      const waiter: Waiter = {
        max,
        resolve: (granted) => {
          signal?.removeEventListener('abort', onAbort);
          resolve(granted);
        },
      };
      this.#queue.push(waiter);
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  /** Gives back `count` slots taken by `acquire`. */
  release(count = 1): void {
    if (count > this.active)
      throw new Error(`release of ${count} slots, only ${this.active} taken`);
    this.#free += count;
    while (this.#free > 0) {
      const waiter = this.#queue.shift();
      if (waiter === undefined) break;
      // The last in line may take several; others get one each so nobody waits behind them.
      const granted = this.#queue.length === 0 ? Math.min(waiter.max, this.#free) : 1;
      this.#free -= granted;
      waiter.resolve(granted);
    }
  }

  /** Runs `fn` holding one slot. */
  async run<T>(fn: () => Promise<T>, signal?: AbortSignal): Promise<T> {
    await this.acquire(1, signal);
    try {
      return await fn();
    } finally {
      this.release(1);
    }
  }
}
