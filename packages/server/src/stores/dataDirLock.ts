import { open, readFile, unlink } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';

export const LOCK_FILE = 'server.lock';

interface LockOwner {
  pid: number;
  hostname: string;
  startedAt: string;
}

/** A held data-directory lock. */
export interface DataDirLock {
  readonly path: string;
  release(): Promise<void>;
}

/**
 * Takes `<dataDir>/server.lock` (created exclusively, holding pid, host and start time) so that
 * only one store at a time owns the metadata file: a second server, or `initAdmin` while a
 * server runs, would otherwise overwrite each other's updates. A lock left by a process that no
 * longer runs on this host is taken over; a live owner (this process included) is an error.
 */
export async function acquireDataDirLock(dataDir: string): Promise<DataDirLock> {
  const path = join(dataDir, LOCK_FILE);
  const me: LockOwner = {
    pid: process.pid,
    hostname: hostname(),
    startedAt: new Date().toISOString(),
  };
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      const handle = await open(path, 'wx', 0o600);
      try {
        await handle.writeFile(`${JSON.stringify(me)}\n`);
      } finally {
        await handle.close();
      }
      let released = false;
      return {
        path,
        async release() {
          if (released) return;
          released = true;
          await unlink(path).catch(() => {});
        },
      };
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
    const owner = await readOwner(path);
    if (owner !== undefined && isLive(owner)) {
      throw new Error(
        `data directory ${dataDir} is in use by process ${owner.pid} on ${owner.hostname} ` +
          `(since ${owner.startedAt}); stop it first, or delete ${path} if that process is gone`,
      );
    }
    await unlink(path).catch(() => {});
  }
  throw new Error(`could not take the lock ${path}`);
}

async function readOwner(path: string): Promise<LockOwner | undefined> {
  try {
    const o = JSON.parse(await readFile(path, 'utf8')) as Partial<LockOwner>;
    if (typeof o.pid === 'number' && typeof o.hostname === 'string') return o as LockOwner;
  } catch {
    // Unreadable or half-written: treated as stale below unless it is our own race.
  }
  return undefined;
}

function isLive(owner: LockOwner): boolean {
  // Another host's process cannot be checked from here (a shared directory): assume it runs.
  if (owner.hostname !== hostname()) return true;
  try {
    process.kill(owner.pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}
