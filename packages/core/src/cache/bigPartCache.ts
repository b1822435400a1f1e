import { constants as fsConstants } from 'node:fs';
import {
  copyFile,
  type FileHandle,
  lstat,
  mkdir,
  open,
  readdir,
  rename,
  rm,
  utimes,
} from 'node:fs/promises';
import { join } from 'node:path';
import {
  checkPath,
  checkSize,
  chunkLength,
  type EnvelopeResource,
  type Manifest,
  SluiceError,
} from '@sluice/protocol';
import { verifyChunkAsync } from '../format/manifest.js';
import { throwIfAborted } from '../platform/abort.js';
import { fsyncPath, tempPathFor } from '../platform/atomicOutput.js';
import { FileLock, type LockOwner } from '../platform/fileLock.js';
import { toSluiceError } from '../platform/toSluiceError.js';
import { type EntryTrailer, entryTrailer, readEntryTrailer } from './entryTrailer.js';
import { manifestDigest } from './manifestDigest.js';

export interface BigPartCacheOptions {
  /**
   * Keep the cache under this many bytes: after each use the least recently used entries that no
   * process holds are removed until it fits. A part larger than this is never cached.
   */
  maxBytes?: number;
}

export interface CacheEntry {
  /** The entry's key: `manifestDigest` of the big part's manifest. */
  digest: string;
  path: string;
  /** Bytes on disk. */
  size: number;
  /** When a pull last used (or wrote) the entry. */
  lastUsed: Date;
  /** False for a download in progress or cut off (`.partial`, resumed by the next pull). */
  complete: boolean;
  /** The resource version the part belongs to, when the entry records it. */
  resource?: EnvelopeResource;
}

export type VerifyStatus = 'ok' | 'corrupt' | 'unverifiable';

export interface VerifiedEntry extends CacheEntry {
  /** `unverifiable`: the entry stores no manifest (it is checked against the resource's own on its next use). */
  status: VerifyStatus;
  /** Why the entry is corrupt or unverifiable. */
  reason?: string;
  /** Whether a corrupt entry was removed (false if it vanished or was replaced meanwhile). */
  removed: boolean;
}

export interface PruneOptions {
  /** Remove least recently used entries until the cache holds at most this many bytes (default the cache's maxBytes). */
  maxBytes?: number;
  /** Remove every entry that no process holds. */
  all?: boolean;
  /** Digests never removed. */
  keep?: readonly string[];
}

/** What `provide` asks of the caller: how to use chunks and how to download the missing ones. */
export interface ProvideHandlers {
  /** Recorded in the entry, for `ls`. */
  resource?: EnvelopeResource;
  signal?: AbortSignal;
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
  /** Called when another process (or call) is fetching the same part and this one waits. */
  onWait?(owner: LockOwner): void;
}

const ENTRY_NAME = /^([0-9a-f]{64})\.big(\.partial)?$/;
/** What a process killed at the wrong moment can leave: a lock, a break guard, a lock's temp file. */
const LEFTOVER =
  /^(?:[0-9a-f]{64}\.lock(?:\.break)?|\.[0-9a-f]{64}\.lock(?:\.break)?\.sluice-[0-9a-f]+\.tmp)$/;
/** A lock's temp file lives for microseconds: one this old was left by a killed process. */
const LEFTOVER_TEMP_MS = 10 * 60 * 1000;
const DIGEST = /^[0-9a-f]{64}$/;

/** Bytes an entry of `m` takes with its trailer (the trailer of a given manifest has a fixed size). */
function entryBytes(m: Manifest, resource?: EnvelopeResource): number {
  return m.bigSize + entryTrailer(m, resource).length;
}

/**
 * A local cache of verified big parts that several processes share. Entries are keyed by
 * `manifestDigest` (the manifest lists every chunk's SHA-256, so the key names the bytes):
 *
 * - `<digest>.big`: a complete entry, the big part followed by a trailer with its manifest and
 *   resource (see entryTrailer.ts); it appears only by rename, after an fsync.
 * - `<digest>.big.partial`: a download in progress or cut off; the next fill resumes from the
 *   chunks in it that still match their digests.
 * - `<digest>.lock`: held while a process fills, repairs or removes that entry (see FileLock).
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
    return join(this.dir, `${checkDigest(digest)}.big`);
  }

  partialPath(digest: string): string {
    return `${this.entryPath(digest)}.partial`;
  }

  lockPath(digest: string): string {
    return join(this.dir, `${checkDigest(digest)}.lock`);
  }

  /** Waits for and takes the lock of one entry. */
  lock(
    digest: string,
    options: { signal?: AbortSignal; onWait?: (owner: LockOwner) => void } = {},
  ): Promise<FileLock> {
    return FileLock.acquire(this.lockPath(digest), options);
  }

  /**
   * Feeds the big part of `manifest` through `handlers`: from the cache entry when every chunk
   * matches, else downloaded into the cache (resuming a partial download) under the entry's lock,
   * so concurrent callers fetch a part once: the others wait, then read the entry. True when the
   * part came from the cache entry.
   */
  async provide(manifest: Manifest, handlers: ProvideHandlers): Promise<boolean> {
    const { signal } = handlers;
    const digest = manifestDigest(manifest);
    const size = entryBytes(manifest, handlers.resource);
    const fits = this.maxBytes === undefined || size <= this.maxBytes;
    let fromCache = false;
    let first = await this.#replayEntry(digest, manifest, handlers);
    if (first.kind === 'hit') {
      fromCache = true;
      await this.#afterHit(digest, manifest, handlers.resource, first);
    } else if (!fits) {
      if (first.kind === 'corrupt') await handlers.restart();
      await handlers.download(new Set(), undefined);
    } else {
      if (first.kind === 'corrupt') await handlers.restart();
      const lock = await this.lock(digest, {
        ...(signal ? { signal } : {}),
        ...(handlers.onWait ? { onWait: handlers.onWait } : {}),
      });
      try {
        if (first.kind === 'miss') {
          // Filled by the process we waited for?
          first = await this.#replayEntry(digest, manifest, handlers);
          if (first.kind === 'corrupt') await handlers.restart();
        }
        if (first.kind === 'hit') {
          fromCache = true;
          await this.#afterHit(digest, manifest, handlers.resource, first, lock);
        } else {
          if (first.kind === 'corrupt') await this.#removeIfSame(digest, first.ino);
          if (this.maxBytes !== undefined) {
            await this.prune({ maxBytes: this.maxBytes - size, keep: [digest] });
          }
          await this.#fill(digest, manifest, handlers);
        }
      } finally {
        await lock.release();
      }
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
    const trailer = entryTrailer(manifest, options.resource);
    if (this.maxBytes !== undefined && manifest.bigSize + trailer.length > this.maxBytes) {
      return false;
    }
    const entry = this.entryPath(digest);
    const lock = await this.lock(digest, options.signal ? { signal: options.signal } : {});
    try {
      if (
        await lstat(entry).then(
          () => true,
          () => false,
        )
      ) {
        await touch(entry);
        return true;
      }
      if (this.maxBytes !== undefined) {
        await this.prune({ maxBytes: this.maxBytes - manifest.bigSize - trailer.length });
      }
      const size = (
        await lstat(path).catch((e: unknown) => {
          throw toSluiceError(e, `caching ${path}`);
        })
      ).size;
      if (size !== manifest.bigSize) {
        throw new SluiceError(
          'ERR_BAD_BLOB',
          `${path} holds ${size} bytes but its manifest describes a big part of ${manifest.bigSize}`,
        );
      }
      const tmp = tempPathFor(entry);
      try {
        if (options.move) {
          await rename(path, tmp).catch(async (e: NodeJS.ErrnoException) => {
            if (e.code !== 'EXDEV') throw e;
            await copyFile(path, tmp, fsConstants.COPYFILE_EXCL);
          });
        } else {
          await copyFile(path, tmp, fsConstants.COPYFILE_EXCL);
        }
        const fh = await open(tmp, 'r+');
        try {
          await fh.chmod(0o600);
          await writeFully(fh, trailer, manifest.bigSize);
          await fh.sync();
        } finally {
          await fh.close();
        }
        throwIfAborted(options.signal);
        await rename(tmp, entry);
        await fsyncPath(this.dir).catch(() => {});
      } catch (e) {
        await rm(tmp, { force: true });
        throw toSluiceError(e, `caching ${path}`);
      }
    } finally {
      await lock.release();
    }
    return true;
  }

  /** Every entry, complete or partial, most recently used first. */
  async list(): Promise<CacheEntry[]> {
    return (await this.#scan({ withResource: true, tidy: false })).map((s) => s.entry);
  }

  /**
   * The entries, most recently used first. `withResource` reads each trailer for it; `tidy`
   * also removes stale locks and old lock temp files that killed processes left.
   */
  async #scan(options: { withResource: boolean; tidy: boolean }): Promise<Scanned[]> {
    let names: string[];
    try {
      names = await readdir(this.dir);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw toSluiceError(e, `cache directory ${this.dir}`);
    }
    const found: Scanned[] = [];
    for (const name of names) {
      const m = ENTRY_NAME.exec(name);
      if (m) {
        const complete = m[2] === undefined;
        const path = join(this.dir, name);
        const scanned = await describe(path, m[1] as string, complete, options.withResource);
        if (scanned !== undefined) found.push(scanned);
      } else if (options.tidy && LEFTOVER.test(name)) {
        await removeLeftover(join(this.dir, name));
      }
    }
    return found.sort((a, b) => b.mtimeMs - a.mtimeMs);
  }

  /**
   * Checks every complete entry against the manifest stored in it, chunk by chunk, and removes
   * the corrupt ones. Entries that store no manifest are reported, not removed.
   */
  async verify(
    options: { signal?: AbortSignal; onEntry?: (entry: VerifiedEntry) => void } = {},
  ): Promise<VerifiedEntry[]> {
    const { signal } = options;
    const results: VerifiedEntry[] = [];
    for (const entry of (await this.list()).filter((e) => e.complete)) {
      throwIfAborted(signal);
      const check = await checkEntry(entry, signal);
      let removed = false;
      if (check.status === 'corrupt' && check.ino !== undefined) {
        const lock = await this.lock(entry.digest, signal ? { signal } : {});
        try {
          removed = await this.#removeIfSame(entry.digest, check.ino);
        } finally {
          await lock.release();
        }
      }
      const result: VerifiedEntry = {
        ...entry,
        status: check.status,
        ...(check.reason === undefined ? {} : { reason: check.reason }),
        removed,
      };
      results.push(result);
      options.onEntry?.(result);
    }
    return results;
  }

  /**
   * Removes least recently used entries (partial downloads included) until the cache holds at
   * most `maxBytes`, or all of them with `all`. Entries whose lock a process holds are in use
   * and skipped. Returns the removed entries.
   */
  async prune(options: PruneOptions = {}): Promise<CacheEntry[]> {
    const limit = options.all ? 0 : (options.maxBytes ?? this.maxBytes);
    if (limit === undefined) return [];
    checkSize(limit, 'maxBytes');
    const keep = new Set(options.keep ?? []);
    // Least recently used first.
    const scanned = (await this.#scan({ withResource: false, tidy: true })).reverse();
    let total = scanned.reduce((sum, s) => sum + s.entry.size, 0);
    const removed: CacheEntry[] = [];
    for (const { entry, ino, mtimeMs } of scanned) {
      if (total <= limit) break;
      if (keep.has(entry.digest)) continue;
      const lock = await FileLock.tryAcquire(this.lockPath(entry.digest));
      if (lock === undefined) continue;
      try {
        const now = await lstat(entry.path).catch(() => undefined);
        // Gone, or replaced by a fresh entry since it was listed: not the one to evict.
        if (now === undefined) {
          total -= entry.size;
          continue;
        }
        if (now.ino !== ino || now.mtimeMs !== mtimeMs) continue; // used since it was listed
        if (entry.complete) {
          const resource = await resourceOf(entry.path, entry.size);
          if (resource !== undefined) entry.resource = resource;
        }
        await rm(entry.path, { force: true });
        total -= entry.size;
        removed.push(entry);
      } finally {
        await lock.release();
      }
    }
    return removed;
  }

  /** Reads the entry, verifying and replaying each chunk; stops at the first bad one. */
  async #replayEntry(
    digest: string,
    m: Manifest,
    handlers: ProvideHandlers,
  ): Promise<{ kind: 'miss' } | { kind: 'corrupt'; ino: number } | Hit> {
    let fh: FileHandle;
    try {
      fh = await open(this.entryPath(digest), 'r');
    } catch {
      return { kind: 'miss' };
    }
    try {
      const st = await fh.stat();
      if (st.size < m.bigSize) return { kind: 'corrupt', ino: st.ino };
      // Chunk i+1 is read and hashed while chunk i is used: two buffers, taken in turn.
      const size = Math.min(m.chunkSize, Math.max(m.bigSize, 1));
      const buffers = [Buffer.allocUnsafe(size), Buffer.allocUnsafe(size)];
      const file = fh;
      const load = async (i: number): Promise<Buffer | undefined> => {
        const data = (buffers[i % 2] as Buffer).subarray(0, chunkLength(m, i));
        const { bytesRead } = await file.read(data, 0, data.length, i * m.chunkSize);
        if (bytesRead !== data.length) return undefined;
        try {
          await verifyChunkAsync(m, i, data);
        } catch {
          return undefined;
        }
        return data;
      };
      let next: Promise<Buffer | undefined> | undefined = m.chunks.length > 0 ? load(0) : undefined;
      try {
        for (let i = 0; i < m.chunks.length; i++) {
          const data = await next;
          next = undefined;
          if (data === undefined) return { kind: 'corrupt', ino: st.ino };
          throwIfAborted(handlers.signal);
          if (i + 1 < m.chunks.length) next = load(i + 1);
          await handlers.replay(i, data);
        }
      } finally {
        // Never close the file under a read in flight (an early return or a failed replay).
        await next?.catch(() => {});
      }
      const trailer = await readEntryTrailer(fh, st.size);
      const trailerOk =
        !('missing' in trailer) &&
        manifestDigest(trailer.manifest) === digest &&
        (handlers.resource === undefined || trailer.resource !== undefined);
      return { kind: 'hit', ino: st.ino, trailerOk };
    } finally {
      await fh.close();
    }
  }

  /** Marks a hit as used and gives an entry without a (sound) trailer one. */
  async #afterHit(
    digest: string,
    m: Manifest,
    resource: EnvelopeResource | undefined,
    hit: Hit,
    held?: FileLock,
  ): Promise<void> {
    const path = this.entryPath(digest);
    if (!hit.trailerOk) {
      // Written by an older sluice or an upload: the bytes just verified, only the trailer is new.
      const lock = held ?? (await FileLock.tryAcquire(this.lockPath(digest)));
      if (lock !== undefined) {
        try {
          const fh = await open(path, 'r+').catch(() => undefined);
          if (fh !== undefined) {
            try {
              if ((await fh.stat()).ino === hit.ino) {
                await fh.truncate(m.bigSize);
                await writeFully(fh, entryTrailer(m, resource), m.bigSize);
                await fh.sync();
              }
            } finally {
              await fh.close();
            }
          }
        } finally {
          if (held === undefined) await lock.release();
        }
      }
    }
    await touch(path);
  }

  /** Downloads into `<digest>.big.partial` (resuming it), then renames it into place. */
  async #fill(digest: string, m: Manifest, handlers: ProvideHandlers): Promise<void> {
    const partial = this.partialPath(digest);
    let fh: FileHandle | undefined = await open(
      partial,
      fsConstants.O_RDWR | fsConstants.O_CREAT,
      0o600,
    );
    try {
      const skip = new Set(await replayPartial(fh, m, handlers));
      if (skip.size < m.chunks.length) {
        const out = fh;
        await handlers.download(skip, (index, data) => writeFully(out, data, index * m.chunkSize));
      }
      await fh.truncate(m.bigSize);
      await writeFully(fh, entryTrailer(m, handlers.resource), m.bigSize);
      await fh.sync();
      await fh.close();
      fh = undefined;
      throwIfAborted(handlers.signal);
      await rename(partial, this.entryPath(digest));
      await fsyncPath(this.dir).catch(() => {});
    } finally {
      await fh?.close().catch(() => {});
    }
  }

  /** Removes the entry if it is still the file (inode) that was found corrupt; under its lock. */
  async #removeIfSame(digest: string, ino: number): Promise<boolean> {
    const path = this.entryPath(digest);
    const now = await lstat(path).catch(() => undefined);
    if (now === undefined || now.ino !== ino) return false;
    await rm(path, { force: true });
    return true;
  }
}

interface Hit {
  kind: 'hit';
  ino: number;
  /** The entry stores this manifest (and the resource, when the caller knows it). */
  trailerOk: boolean;
}

/** Removes a stale lock (its holder is dead) or an old temp file; leaves live locks alone. */
async function removeLeftover(path: string): Promise<void> {
  if (path.endsWith('.tmp')) {
    const st = await lstat(path).catch(() => undefined);
    if (st !== undefined && Date.now() - st.mtimeMs > LEFTOVER_TEMP_MS) {
      await rm(path, { force: true });
    }
    return;
  }
  // Taken only if free or stale; released at once, which removes it.
  const lock = await FileLock.tryAcquire(path).catch(() => undefined);
  await lock?.release();
}

function checkDigest(digest: string): string {
  if (typeof digest !== 'string' || !DIGEST.test(digest)) {
    throw new RangeError(`digest must be 64 lower-case hex digits, got ${JSON.stringify(digest)}`);
  }
  return digest;
}

interface Scanned {
  entry: CacheEntry;
  ino: number;
  mtimeMs: number;
}

async function describe(
  path: string,
  digest: string,
  complete: boolean,
  withResource: boolean,
): Promise<Scanned | undefined> {
  const st = await lstat(path).catch(() => undefined);
  if (st === undefined || !st.isFile()) return undefined;
  const entry: CacheEntry = {
    digest,
    path,
    size: st.size,
    lastUsed: new Date(st.mtimeMs),
    complete,
  };
  if (complete && withResource) {
    const resource = await resourceOf(path, st.size);
    if (resource !== undefined) entry.resource = resource;
  }
  return { entry, ino: st.ino, mtimeMs: st.mtimeMs };
}

/** The resource an entry's trailer records, if any. */
async function resourceOf(path: string, size: number): Promise<EnvelopeResource | undefined> {
  const trailer = await withFile(path, (fh) => readEntryTrailer(fh, size));
  return trailer === undefined || 'missing' in trailer ? undefined : trailer.resource;
}

async function checkEntry(
  entry: CacheEntry,
  signal: AbortSignal | undefined,
): Promise<{ status: VerifyStatus; reason?: string; ino?: number }> {
  const result = await withFile(entry.path, async (fh) => {
    const st = await fh.stat();
    const trailer: EntryTrailer | { missing: string } = await readEntryTrailer(fh, st.size);
    if ('missing' in trailer) return { status: 'unverifiable' as const, reason: trailer.missing };
    const m = trailer.manifest;
    if (manifestDigest(m) !== entry.digest) {
      return {
        status: 'corrupt' as const,
        reason: 'its stored manifest does not match its name',
        ino: st.ino,
      };
    }
    const buffer = Buffer.allocUnsafe(Math.min(m.chunkSize, Math.max(m.bigSize, 1)));
    for (let i = 0; i < m.chunks.length; i++) {
      throwIfAborted(signal);
      const data = buffer.subarray(0, chunkLength(m, i));
      const { bytesRead } = await fh.read(data, 0, data.length, i * m.chunkSize);
      try {
        if (bytesRead !== data.length) throw new Error('short read');
        await verifyChunkAsync(m, i, data);
      } catch {
        return {
          status: 'corrupt' as const,
          reason: `chunk ${i} of ${m.chunks.length} does not match its digest`,
          ino: st.ino,
        };
      }
    }
    return { status: 'ok' as const };
  });
  return result ?? { status: 'unverifiable', reason: 'the entry vanished while being checked' };
}

/** Replays every chunk of a partial download that matches its digest; returns their indexes. */
async function replayPartial(
  fh: FileHandle,
  m: Manifest,
  handlers: ProvideHandlers,
): Promise<number[]> {
  const size = (await fh.stat()).size;
  const found: number[] = [];
  const buffer = Buffer.allocUnsafe(Math.min(m.chunkSize, Math.max(m.bigSize, 1)));
  for (let i = 0; i < m.chunks.length; i++) {
    throwIfAborted(handlers.signal);
    const data = buffer.subarray(0, chunkLength(m, i));
    if (i * m.chunkSize + data.length > size) break;
    const { bytesRead } = await fh.read(data, 0, data.length, i * m.chunkSize);
    if (bytesRead !== data.length) break;
    try {
      await verifyChunkAsync(m, i, data);
    } catch {
      continue; // a hole or a torn write: fetched again
    }
    await handlers.replay(i, data);
    found.push(i);
  }
  return found;
}

async function withFile<T>(
  path: string,
  fn: (fh: FileHandle) => Promise<T>,
): Promise<T | undefined> {
  let fh: FileHandle;
  try {
    fh = await open(path, 'r');
  } catch {
    return undefined;
  }
  try {
    return await fn(fh);
  } finally {
    await fh.close();
  }
}

async function writeFully(fh: FileHandle, data: Buffer, position: number): Promise<void> {
  let done = 0;
  while (done < data.length) {
    const { bytesWritten } = await fh.write(data, done, data.length - done, position + done);
    done += bytesWritten;
  }
}

async function touch(path: string): Promise<void> {
  const now = new Date();
  await utimes(path, now, now).catch(() => {});
}
