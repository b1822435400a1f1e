import { lstat, mkdir } from 'node:fs/promises';
import { checkPath, checkSize, type EnvelopeResource, type Manifest } from '@sluice/protocol';
import { FileLock, type LockWaitOptions } from '../platform/fileLock.js';
import { toSluiceError } from '../platform/toSluiceError.js';
import { entryBytes, entryPath, lockPath, partialPath } from './cacheLayout.js';
import {
  type CacheEntry,
  evictEntries,
  type PruneOptions,
  scanEntries,
  type VerifiedEntry,
  verifyEntries,
} from './cacheMaintenance.js';
import {
  copyIntoEntry,
  type EntryHit,
  type EntryRead,
  fillEntry,
  replayEntry,
  rewriteTrailer,
  touch,
} from './entryFiles.js';
import { holding, removeIfSame } from './entryLocks.js';
import { manifestDigest } from './manifestDigest.js';
import type { PartConsumer, ProvideOptions } from './partConsumer.js';

export type { CacheEntry, PruneOptions, VerifiedEntry, VerifyStatus } from './cacheMaintenance.js';
export type { PartConsumer, ProvideOptions } from './partConsumer.js';

export interface BigPartCacheOptions {
  /**
   * Keep the cache under this many bytes: after each use the least recently used entries that no
   * process holds are removed until it fits. A part larger than this is never cached.
   */
  maxBytes?: number;
}

/** One `provide` call: the part wanted, its key and entry size, and whom to feed it to. */
interface Wanted {
  manifest: Manifest;
  digest: string;
  bytes: number;
  consumer: PartConsumer;
  options: ProvideOptions;
}

/**
 * A local cache of verified big parts that several processes share. Entries are keyed by
 * `manifestDigest` (the manifest lists every chunk's SHA-256, so the key names the bytes); the
 * file names are in cacheLayout.ts.
 *
 * Every chunk read from the cache is checked against the manifest before it is used; an entry
 * that fails is removed and fetched again. Least recently used = oldest mtime (touched on use).
 */
export class BigPartCache {
  readonly dir: string;
  readonly maxBytes: number | undefined;

  private constructor(dir: string, maxBytes: number | undefined) {
    this.dir = dir;
    this.maxBytes = maxBytes;
  }

  /** The cache in `dir` (created, owner-only, if missing). */
  static async open(dir: string, options: BigPartCacheOptions = {}): Promise<BigPartCache> {
    checkPath(dir, 'dir');
    const maxBytes =
      options.maxBytes === undefined ? undefined : checkSize(options.maxBytes, 'maxBytes');
    try {
      await mkdir(dir, { recursive: true, mode: 0o700 });
    } catch (e) {
      throw toSluiceError(e, `cache directory ${dir}`);
    }
    return new BigPartCache(dir, maxBytes);
  }

  entryPath(digest: string): string {
    return entryPath(this.dir, digest);
  }

  partialPath(digest: string): string {
    return partialPath(this.dir, digest);
  }

  lockPath(digest: string): string {
    return lockPath(this.dir, digest);
  }

  /** Waits for and takes the lock of one entry. */
  lock(digest: string, options: LockWaitOptions = {}): Promise<FileLock> {
    return FileLock.acquire(this.lockPath(digest), options);
  }

  /**
   * Feeds the big part of `manifest` to `consumer`: from the cache entry when every chunk
   * matches, else downloaded into the cache (resuming a partial download) under the entry's lock,
   * so concurrent callers fetch a part once: the others wait, then read the entry. True when the
   * part came from the cache entry.
   */
  async provide(
    manifest: Manifest,
    consumer: PartConsumer,
    options: ProvideOptions = {},
  ): Promise<boolean> {
    const digest = manifestDigest(manifest);
    const bytes = entryBytes(manifest, options.resource);
    const want: Wanted = { manifest, digest, bytes, consumer, options };
    const fits = this.maxBytes === undefined || bytes <= this.maxBytes;
    const found = await this.#replay(want);
    let fromCache = true;
    if (found.kind === 'hit') {
      await this.#afterHit(want, found);
    } else if (!fits) {
      fromCache = false;
      await consumer.download(new Set(), undefined);
    } else {
      const lock = await this.lock(digest, options);
      fromCache = await holding(lock, () => this.#hitOrFill(want, found, lock));
    }
    if (this.maxBytes !== undefined) await this.prune({ keep: fits ? [digest] : [] });
    return fromCache;
  }

  /**
   * Adds a big part the caller holds as a file whose manifest it computed from those very bytes
   * (an upload's sealed big part): copied, or moved with `move`, into a temp file beside the
   * entry, given its trailer, fsynced and renamed into place under the entry's lock. An existing
   * entry is kept (and the file left where it is). False when the part is larger than maxBytes.
   */
  async put(
    path: string,
    manifest: Manifest,
    options: { resource?: EnvelopeResource; move?: boolean; signal?: AbortSignal } = {},
  ): Promise<boolean> {
    checkPath(path, 'path');
    const digest = manifestDigest(manifest);
    const bytes = entryBytes(manifest, options.resource);
    if (this.maxBytes !== undefined && bytes > this.maxBytes) return false;
    const entry = this.entryPath(digest);
    const lock = await this.lock(digest, { signal: options.signal });
    await holding(lock, async () => {
      const exists = await lstat(entry).then(
        () => true,
        () => false,
      );
      if (exists) return touch(entry);
      if (this.maxBytes !== undefined) await this.prune({ maxBytes: this.maxBytes - bytes });
      await copyIntoEntry(path, entry, manifest, options);
    });
    return true;
  }

  /** Every entry, complete or partial, most recently used first. */
  async list(): Promise<CacheEntry[]> {
    return (await scanEntries(this.dir, { withResource: true, tidy: false })).map((s) => s.entry);
  }

  /**
   * Checks every complete entry against the manifest stored in it, chunk by chunk, and removes
   * the corrupt ones. Entries that store no manifest are reported, not removed.
   */
  verify(
    options: { signal?: AbortSignal; onEntry?: (entry: VerifiedEntry) => void } = {},
  ): Promise<VerifiedEntry[]> {
    return verifyEntries(this.dir, options);
  }

  /**
   * Removes least recently used entries (partial downloads included) until the cache holds at
   * most `maxBytes`, or all of them with `all`. Entries whose lock a process holds are in use
   * and skipped. Returns the removed entries.
   */
  async prune(options: PruneOptions = {}): Promise<CacheEntry[]> {
    const limit = options.all ? 0 : (options.maxBytes ?? this.maxBytes);
    if (limit === undefined) return [];
    return evictEntries(this.dir, checkSize(limit, 'maxBytes'), new Set(options.keep ?? []));
  }

  /** Replays the entry; a consumer fed some chunks of a corrupt one starts over. */
  async #replay(want: Wanted): Promise<EntryRead> {
    const path = this.entryPath(want.digest);
    const found = await replayEntry(path, want.digest, want.manifest, want.consumer, want.options);
    if (found.kind === 'corrupt') await want.consumer.restart();
    return found;
  }

  /** Under the entry's lock: the entry if the process we waited for filled it, else a fill. */
  async #hitOrFill(want: Wanted, first: EntryRead, lock: FileLock): Promise<boolean> {
    const found = first.kind === 'miss' ? await this.#replay(want) : first;
    if (found.kind === 'hit') {
      await this.#afterHit(want, found, lock);
      return true;
    }
    if (found.kind === 'corrupt') await removeIfSame(this.entryPath(want.digest), found.ino);
    if (this.maxBytes !== undefined) {
      await this.prune({ maxBytes: this.maxBytes - want.bytes, keep: [want.digest] });
    }
    const { manifest, digest, consumer, options } = want;
    await fillEntry(this.partialPath(digest), this.entryPath(digest), manifest, consumer, options);
    return false;
  }

  /** Marks a hit as used and gives an entry without a (sound) trailer one. */
  async #afterHit(want: Wanted, hit: EntryHit, held?: FileLock): Promise<void> {
    const path = this.entryPath(want.digest);
    if (!hit.trailerOk) {
      // Written by an older sluice or an upload: the bytes just verified, only the trailer is new.
      const lock = held ?? (await FileLock.tryAcquire(this.lockPath(want.digest)));
      if (lock !== undefined) {
        const rewrite = () => rewriteTrailer(path, want.manifest, want.options.resource, hit.ino);
        await (held === undefined ? holding(lock, rewrite) : rewrite());
      }
    }
    await touch(path);
  }
}
