import { lstat, readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { EnvelopeResource } from '@sluice/protocol';
import { throwIfAborted } from '../platform/abort.js';
import { FileLock } from '../platform/fileLock.js';
import { toSluiceError } from '../platform/toSluiceError.js';
import { ENTRY_NAME, LEFTOVER, lockPath } from './cacheLayout.js';
import { chunkBuffer, readVerifiedChunk, resourceOf, withFile } from './entryFiles.js';
import { holding, removeIfSame, removeLeftover } from './entryLocks.js';
import { readEntryTrailer } from './entryTrailer.js';
import { manifestDigest } from './manifestDigest.js';

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

interface Scanned {
  entry: CacheEntry;
  ino: number;
  mtimeMs: number;
}

/**
 * The entries in `dir`, most recently used first. `withResource` reads each trailer for it;
 * `tidy` also removes stale locks and old lock temp files that killed processes left.
 */
export async function scanEntries(
  dir: string,
  options: { withResource: boolean; tidy: boolean },
): Promise<Scanned[]> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw toSluiceError(e, `cache directory ${dir}`);
  }
  const found: Scanned[] = [];
  for (const name of names) {
    const m = ENTRY_NAME.exec(name);
    if (m) {
      const complete = m[2] === undefined;
      const scanned = await describe(join(dir, name), m[1] as string, complete, options);
      if (scanned !== undefined) found.push(scanned);
    } else if (options.tidy && LEFTOVER.test(name)) {
      await removeLeftover(join(dir, name));
    }
  }
  return found.sort((a, b) => b.mtimeMs - a.mtimeMs);
}

/**
 * Checks every complete entry in `dir` against the manifest stored in it, chunk by chunk, and
 * removes the corrupt ones (under their lock). Entries that store no manifest are reported, not
 * removed.
 */
export async function verifyEntries(
  dir: string,
  options: { signal?: AbortSignal; onEntry?: (entry: VerifiedEntry) => void },
): Promise<VerifiedEntry[]> {
  const { signal } = options;
  const scanned = await scanEntries(dir, { withResource: true, tidy: false });
  const results: VerifiedEntry[] = [];
  for (const { entry } of scanned.filter((s) => s.entry.complete)) {
    throwIfAborted(signal);
    const check = await checkEntry(entry, signal);
    let removed = false;
    if (check.status === 'corrupt' && check.ino !== undefined) {
      const { ino } = check;
      const lock = await FileLock.acquire(lockPath(dir, entry.digest), { signal });
      removed = await holding(lock, () => removeIfSame(entry.path, ino));
    }
    const result: VerifiedEntry = { ...entry, status: check.status, reason: check.reason, removed };
    results.push(result);
    options.onEntry?.(result);
  }
  return results;
}

/**
 * Removes least recently used entries of `dir` (partial downloads included) until it holds at
 * most `limit` bytes, skipping `keep` and the entries whose lock a process holds (in use).
 * Returns the removed entries.
 */
export async function evictEntries(
  dir: string,
  limit: number,
  keep: ReadonlySet<string>,
): Promise<CacheEntry[]> {
  // Least recently used first.
  const scanned = (await scanEntries(dir, { withResource: false, tidy: true })).reverse();
  let total = scanned.reduce((sum, s) => sum + s.entry.size, 0);
  const removed: CacheEntry[] = [];
  for (const { entry, ino, mtimeMs } of scanned) {
    if (total <= limit) break;
    if (keep.has(entry.digest)) continue;
    const lock = await FileLock.tryAcquire(lockPath(dir, entry.digest));
    if (lock === undefined) continue;
    await holding(lock, async () => {
      const now = await lstat(entry.path).catch(() => undefined);
      // Gone, or replaced by a fresh entry since it was listed: not the one to evict.
      if (now === undefined) {
        total -= entry.size;
        return;
      }
      if (now.ino !== ino || now.mtimeMs !== mtimeMs) return; // used since it was listed
      if (entry.complete) {
        const resource = await resourceOf(entry.path, entry.size);
        if (resource !== undefined) entry.resource = resource;
      }
      await rm(entry.path, { force: true });
      total -= entry.size;
      removed.push(entry);
    });
  }
  return removed;
}

async function describe(
  path: string,
  digest: string,
  complete: boolean,
  options: { withResource: boolean },
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
  if (complete && options.withResource) {
    const resource = await resourceOf(path, st.size);
    if (resource !== undefined) entry.resource = resource;
  }
  return { entry, ino: st.ino, mtimeMs: st.mtimeMs };
}

async function checkEntry(
  entry: CacheEntry,
  signal: AbortSignal | undefined,
): Promise<{ status: VerifyStatus; reason?: string; ino?: number }> {
  const result = await withFile(entry.path, async (fh) => {
    const st = await fh.stat();
    const trailer = await readEntryTrailer(fh, st.size);
    if ('missing' in trailer) return { status: 'unverifiable' as const, reason: trailer.missing };
    const m = trailer.manifest;
    const corrupt = (reason: string) => ({ status: 'corrupt' as const, reason, ino: st.ino });
    if (manifestDigest(m) !== entry.digest) {
      return corrupt('its stored manifest does not match its name');
    }
    const buffer = chunkBuffer(m);
    for (let i = 0; i < m.chunks.length; i++) {
      throwIfAborted(signal);
      if ((await readVerifiedChunk(fh, m, i, buffer)) === undefined) {
        return corrupt(`chunk ${i} of ${m.chunks.length} does not match its digest`);
      }
    }
    return { status: 'ok' as const };
  });
  return result ?? { status: 'unverifiable', reason: 'the entry vanished while being checked' };
}
