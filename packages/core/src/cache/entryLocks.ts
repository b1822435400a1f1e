import { lstat, rm } from 'node:fs/promises';
import { FileLock } from '../platform/fileLock.js';

/** A lock's temp file lives for microseconds: one this old was left by a killed process. */
const LEFTOVER_TEMP_MS = 10 * 60 * 1000;

/** Runs `fn` holding `lock`, which is released whatever happens. */
export async function holding<T>(lock: FileLock, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } finally {
    await lock.release();
  }
}

/** Removes the entry if it is still the file (inode) that was found corrupt; under its lock. */
export async function removeIfSame(path: string, ino: number): Promise<boolean> {
  const now = await lstat(path).catch(() => undefined);
  if (now === undefined || now.ino !== ino) return false;
  await rm(path, { force: true });
  return true;
}

/** Removes a stale lock (its holder is dead) or an old temp file; leaves live locks alone. */
export async function removeLeftover(path: string): Promise<void> {
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
