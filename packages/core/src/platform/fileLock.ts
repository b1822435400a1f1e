import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { link, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { SluiceError } from '@sluice/protocol';
import { abortError, throwIfAborted } from './abort.js';
import { tempPathFor } from './atomicOutput.js';

/** Who holds a lock: written into the lock file when it is created. */
export interface LockOwner {
  pid: number;
  host: string;
  /** Linux boot id: a lock from before a reboot is stale whatever its pid. */
  boot?: string;
  /** The holder's start time in clock ticks since boot (/proc/PID/stat): detects a reused pid. */
  start?: string;
  /** When the lock was taken (ms since the epoch). */
  since: number;
  /** Random per acquisition, so a holder only ever removes its own lock file. */
  token: string;
}

export interface LockWaitOptions {
  signal?: AbortSignal;
  /** Called once when the lock is held by a live process and this one starts to wait. */
  onWait?: (owner: LockOwner) => void;
}

/** A lock file without a readable owner (foreign or damaged) counts as stale after this long. */
const UNREADABLE_GRACE_MS = 10_000;
const FIRST_POLL_MS = 10;
const MAX_POLL_MS = 500;

/**
 * An exclusive lock between processes (and between calls in one process): a file created
 * atomically with its owner's pid, boot id and start time. A lock whose holder has died (its pid
 * is gone, or now belongs to another process, or the machine rebooted) is stale and taken over;
 * waiters poll with backoff and honour their AbortSignal. A lock held from another host is never
 * judged stale: its pid means nothing here.
 */
export class FileLock {
  readonly path: string;
  readonly owner: LockOwner;
  #released = false;

  private constructor(path: string, owner: LockOwner) {
    this.path = path;
    this.owner = owner;
  }

  /** Takes the lock at `path`, waiting while a live process holds it. */
  static async acquire(path: string, options: LockWaitOptions = {}): Promise<FileLock> {
    const { signal } = options;
    let delay = FIRST_POLL_MS;
    let waiting = false;
    for (;;) {
      throwIfAborted(signal);
      const lock = await FileLock.tryAcquire(path);
      if (lock !== undefined) return lock;
      const owner = await readOwner(path);
      // Gone between the two steps, or stale and just broken: try again at once.
      if (owner === 'gone') continue;
      if (owner !== 'unreadable' && !waiting) {
        waiting = true;
        options.onWait?.(owner);
      }
      try {
        await sleep(delay + Math.floor(Math.random() * delay), undefined, { signal });
      } catch (e) {
        if (signal?.aborted) throw abortError(signal);
        throw e;
      }
      delay = Math.min(MAX_POLL_MS, Math.ceil(delay * 1.6));
    }
  }

  /** Takes the lock if it is free or stale; undefined when a live process holds it. */
  static async tryAcquire(path: string): Promise<FileLock | undefined> {
    for (let attempt = 0; attempt < 3; attempt++) {
      const owner = currentOwner();
      if (await createExclusive(path, JSON.stringify(owner))) return new FileLock(path, owner);
      const held = await readOwner(path);
      if (held === 'gone') continue;
      if (!(await isStale(path, held))) return undefined;
      await breakStale(path, held);
    }
    return undefined;
  }

  /** Who holds the lock at `path` now (undefined when it is free or its file is unreadable). */
  static async holder(path: string): Promise<LockOwner | undefined> {
    const owner = await readOwner(path);
    return typeof owner === 'string' ? undefined : owner;
  }

  /** Removes the lock file if it is still this holder's. Safe to call twice. */
  async release(): Promise<void> {
    if (this.#released) return;
    this.#released = true;
    const now = await readOwner(this.path);
    if (typeof now !== 'string' && now.token === this.owner.token) {
      await rm(this.path, { force: true });
    }
  }
}

/** Creates `path` holding `content`, or returns false if it exists; never a half-written file. */
async function createExclusive(path: string, content: string): Promise<boolean> {
  // Written beside and hard-linked into place: the lock appears with its content in one step,
  // with the same exclusivity as O_EXCL. Filesystems without hard links get O_EXCL itself.
  const tmp = tempPathFor(path);
  try {
    await writeFile(tmp, content, { mode: 0o600, flag: 'wx' });
    await link(tmp, path);
    return true;
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'EEXIST') return false;
    if (code !== 'EPERM' && code !== 'ENOTSUP' && code !== 'EOPNOTSUPP') {
      throw new SluiceError('ERR_IO', `cannot create the lock ${path}: ${(e as Error).message}`, {
        cause: e,
        path,
      });
    }
    try {
      await writeFile(path, content, { mode: 0o600, flag: 'wx' });
      return true;
    } catch (e2) {
      if ((e2 as NodeJS.ErrnoException).code === 'EEXIST') return false;
      throw new SluiceError('ERR_IO', `cannot create the lock ${path}: ${(e2 as Error).message}`, {
        cause: e2,
        path,
      });
    }
  } finally {
    await rm(tmp, { force: true });
  }
}

async function readOwner(path: string): Promise<LockOwner | 'gone' | 'unreadable'> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return 'gone';
    return 'unreadable';
  }
  try {
    const v = JSON.parse(text) as Partial<LockOwner>;
    if (
      typeof v.pid === 'number' &&
      Number.isSafeInteger(v.pid) &&
      v.pid > 0 &&
      typeof v.host === 'string' &&
      typeof v.since === 'number' &&
      typeof v.token === 'string'
    ) {
      return {
        pid: v.pid,
        host: v.host,
        since: v.since,
        token: v.token,
        boot: typeof v.boot === 'string' ? v.boot : undefined,
        start: typeof v.start === 'string' ? v.start : undefined,
      };
    }
  } catch {}
  return 'unreadable';
}

async function isStale(path: string, owner: LockOwner | 'unreadable'): Promise<boolean> {
  if (owner === 'unreadable') {
    try {
      return Date.now() - (await stat(path)).mtimeMs > UNREADABLE_GRACE_MS;
    } catch {
      return false;
    }
  }
  return !processAlive(owner);
}

/** Whether the process that wrote `owner` may still be running. */
export function processAlive(owner: LockOwner): boolean {
  if (owner.host !== hostname()) return true;
  const boot = bootId();
  if (owner.boot !== undefined && boot !== undefined && owner.boot !== boot) return false;
  try {
    process.kill(owner.pid, 0);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ESRCH') return false;
    // EPERM: alive, owned by another user.
  }
  const start = startTicks(owner.pid);
  return owner.start === undefined || start === undefined || start === owner.start;
}

/**
 * Removes a stale lock, guarded by `<lock>.break` so two waiters that both saw the same dead
 * holder cannot both remove it (the second would remove the first's fresh lock).
 */
async function breakStale(path: string, seen: LockOwner | 'unreadable'): Promise<void> {
  const guard = `${path}.break`;
  if (!(await createExclusive(guard, JSON.stringify(currentOwner())))) {
    const holder = await readOwner(guard);
    if (holder !== 'gone' && (await isStale(guard, holder))) await rm(guard, { force: true });
    return;
  }
  try {
    const now = await readOwner(path);
    const same =
      seen === 'unreadable'
        ? now === 'unreadable'
        : typeof now !== 'string' && now.token === seen.token;
    if (same) await rm(path, { force: true });
  } finally {
    await rm(guard, { force: true });
  }
}

function currentOwner(): LockOwner {
  const boot = bootId();
  const start = startTicks(process.pid);
  return {
    pid: process.pid,
    host: hostname(),
    boot,
    start,
    since: Date.now(),
    token: randomBytes(12).toString('hex'),
  };
}

let cachedBootId: string | null | undefined;
function bootId(): string | undefined {
  if (cachedBootId === undefined) {
    try {
      cachedBootId = readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim() || null;
    } catch {
      cachedBootId = null;
    }
  }
  return cachedBootId ?? undefined;
}

/** Field 22 of /proc/PID/stat (start time in clock ticks since boot); undefined off Linux. */
function startTicks(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) may hold spaces and parentheses: count from the last ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return fields[19];
  } catch {
    return undefined;
  }
}
