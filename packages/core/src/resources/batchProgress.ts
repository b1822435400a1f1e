import type { PullManyProgress, PullManyResult } from './pullManyOptions.js';
import type { PullProgress } from './pullOptions.js';

/** Turns each resource's progress into a PullManyProgress event with the batch's totals. */
export class BatchProgress {
  readonly #count: number;
  readonly #onProgress: ((progress: PullManyProgress) => void) | undefined;
  /** Per resource: the most bytes it has reported, and its size once known (0 before). */
  readonly #high: number[];
  readonly #sizes: number[];
  readonly #totals = { loaded: 0, total: 0, settled: 0, failed: 0 };

  constructor(count: number, onProgress: ((progress: PullManyProgress) => void) | undefined) {
    this.#count = count;
    this.#onProgress = onProgress;
    this.#high = new Array<number>(count).fill(0);
    this.#sizes = new Array<number>(count).fill(0);
  }

  /** The progress of request `index`; `result` on the one event that settles it. */
  report(index: number, resource: PullProgress, result?: PullManyResult): void {
    const totals = this.#totals;
    if (this.#sizes[index] === 0 && resource.total > 0) {
      this.#sizes[index] = resource.total;
      totals.total += resource.total;
    }
    // A pull that starts over (a corrupt cache file) repeats bytes: count each byte once.
    const before = this.#high[index] as number;
    if (resource.loaded > before) {
      this.#high[index] = resource.loaded;
      totals.loaded += resource.loaded - before;
    }
    if (result !== undefined) {
      totals.settled++;
      if (!result.ok) {
        totals.failed++;
        totals.total -= (this.#sizes[index] as number) - (this.#high[index] as number);
      }
    }
    this.#onProgress?.({ index, resource, result, ...totals, count: this.#count });
  }
}
