import type { EnvelopeResource } from '@sluice/protocol';
import type { LockWaitOptions } from '../platform/fileLock.js';

/**
 * What `BigPartCache.provide` feeds a big part to (a pull's decryption): the chunks the cache
 * holds, and the way to download the ones it lacks.
 */
export interface PartConsumer {
  /**
   * A chunk read from the cache, already checked against the manifest. Chunks come in index order
   * but may skip indexes that the download provides later. `data` is reused once this resolves.
   */
  replay(index: number, data: Buffer): Promise<void>;
  /** Every chunk replayed so far is void (an entry failed a digest part-way): start over. */
  restart(): Promise<void> | void;
  /**
   * Fetch every chunk not in `skip`, verify it against the manifest, then pass it to `store`
   * (when given) before using it.
   */
  download(
    skip: ReadonlySet<number>,
    store: ((index: number, data: Buffer) => Promise<void>) | undefined,
  ): Promise<void>;
}

/** `onWait` is called when another process (or call) is fetching the same part and this one waits. */
export interface ProvideOptions extends LockWaitOptions {
  /** Recorded in the entry, for `ls`. */
  resource?: EnvelopeResource;
  /**
   * When given, a failure to write the entry (its disk filled up, an I/O error) does not fail
   * the fill: the download goes on without storing, the half-written entry is removed, and this
   * is called once with the error. Without it such a failure rejects, as any other.
   */
  onUnusable?: (error: unknown) => void;
}
