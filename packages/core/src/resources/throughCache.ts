import type { Manifest } from '@sluice/protocol';
import { BigPartCache, type PartConsumer, type ProvideOptions } from '../cache/bigPartCache.js';
import { type CacheProblem, cacheDirProblem, cacheProblemOf } from '../cache/cacheAvailability.js';
import type { BigPartSource, ChunkWriter, RangedBigPart } from './bigPartSource.js';

/** The cache a pull uses, and whom it tells when it has to go on without it. */
export interface CacheUse {
  dir: string;
  maxBytes?: number;
  /** Called when the cache cannot be used (read-only, not a directory, full…); the pull goes on. */
  onUnusable: (problem: CacheProblem) => void;
}

/**
 * The big part through the shared local cache: the chunks of an intact entry are replayed to the
 * writer; a missing or damaged entry is filled from `ranged`, each chunk stored before it is used.
 * A cache that cannot be used never fails the pull: one that is unusable from the start is
 * skipped, a disk that fills up mid-download stops only the storing (the half-written entry is
 * removed), and any other failure of the cache's own file calls restarts the pull over ranges.
 */
export class CachedBigPart implements BigPartSource {
  readonly #cache: CacheUse;
  readonly #manifest: Manifest;
  readonly #ranged: RangedBigPart;
  readonly #options: ProvideOptions;

  constructor(cache: CacheUse, manifest: Manifest, ranged: RangedBigPart, options: ProvideOptions) {
    this.#cache = cache;
    this.#manifest = manifest;
    this.#ranged = ranged;
    this.#options = options;
  }

  async deliver(writer: ChunkWriter): Promise<boolean> {
    const { dir, maxBytes, onUnusable } = this.#cache;
    const unusable = await cacheDirProblem(dir, { create: true });
    if (unusable !== undefined) {
      onUnusable(unusable);
      return this.#ranged.deliver(writer);
    }
    const feed = new CacheFeed(writer, this.#ranged);
    try {
      const cache = await BigPartCache.open(dir, { maxBytes });
      return await cache.provide(this.#manifest, feed, {
        ...this.#options,
        onUnusable: (e) => onUnusable(cacheProblemOf(e, dir) ?? ioError(dir)),
      });
    } catch (e) {
      const problem = feed.isForeign(e) ? undefined : cacheProblemOf(e, dir);
      if (problem === undefined) throw e;
      onUnusable(problem);
      await writer.restart();
      return this.#ranged.deliver(writer);
    }
  }
}

function ioError(dir: string): CacheProblem {
  return { kind: 'I/O error', dir, message: `cache ${dir} is unusable (I/O error)` };
}

/**
 * What the cache drives: its chunks go to the writer, the ones it lacks come over ranges. It
 * remembers the failures that are not the cache's (the writer's, the transport's), so that a
 * full destination disk is never taken for a full cache disk.
 */
class CacheFeed implements PartConsumer {
  readonly #writer: ChunkWriter;
  readonly #ranged: RangedBigPart;
  readonly #foreign = new WeakSet<object>();

  constructor(writer: ChunkWriter, ranged: RangedBigPart) {
    this.#writer = writer;
    this.#ranged = ranged;
  }

  isForeign(e: unknown): boolean {
    return typeof e === 'object' && e !== null && this.#foreign.has(e);
  }

  replay(index: number, data: Buffer): Promise<void> {
    return this.#marking(this.#writer.write(index, data));
  }

  restart(): Promise<void> {
    return this.#marking(this.#writer.restart());
  }

  async download(
    skip: ReadonlySet<number>,
    store: ((index: number, data: Buffer) => Promise<void>) | undefined,
  ): Promise<void> {
    let storeError: unknown;
    try {
      await this.#ranged.fetch(skip, async (index, data) => {
        if (store !== undefined) {
          try {
            await store(index, data);
          } catch (e) {
            storeError = e;
            throw e;
          }
        }
        await this.#writer.write(index, data);
      });
    } catch (e) {
      if (e !== storeError) this.#mark(e);
      throw e;
    }
  }

  async #marking(p: Promise<void>): Promise<void> {
    try {
      await p;
    } catch (e) {
      this.#mark(e);
      throw e;
    }
  }

  #mark(e: unknown): void {
    if (typeof e === 'object' && e !== null) this.#foreign.add(e);
  }
}
