import type { Manifest } from '@sluice/protocol';
import { BigPartCache, type PartConsumer, type ProvideOptions } from '../cache/bigPartCache.js';
import type { BigPartSource, ChunkWriter, RangedBigPart } from './bigPartSource.js';

/**
 * The big part through the shared local cache: the chunks of an intact entry are replayed to the
 * writer; a missing or damaged entry is filled from `ranged`, each chunk stored before it is used.
 */
export class CachedBigPart implements BigPartSource {
  readonly #cache: { dir: string; maxBytes?: number };
  readonly #manifest: Manifest;
  readonly #ranged: RangedBigPart;
  readonly #options: ProvideOptions;

  constructor(
    cache: { dir: string; maxBytes?: number },
    manifest: Manifest,
    ranged: RangedBigPart,
    options: ProvideOptions,
  ) {
    this.#cache = cache;
    this.#manifest = manifest;
    this.#ranged = ranged;
    this.#options = options;
  }

  async deliver(writer: ChunkWriter): Promise<boolean> {
    const { dir, maxBytes } = this.#cache;
    const cache = await BigPartCache.open(dir, { maxBytes });
    return cache.provide(this.#manifest, new CacheFeed(writer, this.#ranged), this.#options);
  }
}

/** What the cache drives: its chunks go to the writer, the ones it lacks come over ranges. */
class CacheFeed implements PartConsumer {
  readonly #writer: ChunkWriter;
  readonly #ranged: RangedBigPart;

  constructor(writer: ChunkWriter, ranged: RangedBigPart) {
    this.#writer = writer;
    this.#ranged = ranged;
  }

  replay(index: number, data: Buffer): Promise<void> {
    return this.#writer.write(index, data);
  }

  restart(): Promise<void> {
    return this.#writer.restart();
  }

  download(
    skip: ReadonlySet<number>,
    store: ((index: number, data: Buffer) => Promise<void>) | undefined,
  ): Promise<void> {
    return this.#ranged.fetch(skip, async (index, data) => {
      await store?.(index, data);
      await this.#writer.write(index, data);
    });
  }
}
