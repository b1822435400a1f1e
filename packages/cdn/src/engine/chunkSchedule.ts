import type { DownloadProgress } from './downloader.js';

/**
 * The chunks of one download: their byte ranges, the indexes still to fetch (one shared generator
 * that every worker draws from) and the progress so far, skipped chunks counting as loaded.
 */
export class ChunkSchedule {
  readonly count: number;
  readonly #size: number;
  readonly #chunkSize: number;
  readonly #skip: ReadonlySet<number>;
  readonly #queue: Generator<number>;
  #loaded = 0;
  #done = 0;

  constructor(size: number, chunkSize: number, skip: ReadonlySet<number>) {
    this.#size = size;
    this.#chunkSize = chunkSize;
    this.#skip = skip;
    this.count = Math.ceil(size / chunkSize);
    for (const index of skip) {
      if (index < this.count) {
        this.#loaded += Math.min(size, (index + 1) * chunkSize) - index * chunkSize;
        this.#done++;
      }
    }
    this.#queue = this.#indexes();
  }

  /** Chunks not delivered yet. */
  get remaining(): number {
    return this.count - this.#done;
  }

  /** The next chunk index to fetch, shared by all workers; undefined when none is left. */
  next(): number | undefined {
    const next = this.#queue.next();
    return next.done ? undefined : next.value;
  }

  /** First and last byte (inclusive) of chunk `index`. */
  range(index: number): { start: number; end: number } {
    const start = index * this.#chunkSize;
    return { start, end: Math.min(this.#size, start + this.#chunkSize) - 1 };
  }

  /** Counts a delivered chunk of `length` bytes; returns the progress to report. */
  delivered(length: number): DownloadProgress {
    this.#loaded += length;
    this.#done++;
    return { loaded: this.#loaded, total: this.#size, chunks: this.#done };
  }

  *#indexes(): Generator<number> {
    for (let i = 0; i < this.count; i++) if (!this.#skip.has(i)) yield i;
  }
}
