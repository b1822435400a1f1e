import { join } from 'node:path';
import { FileLock } from '@sluice/core';
import type { SweepLock } from './sweepLock.js';

/** The lock file of the sweep, in the data directory. */
export const SWEEP_LOCK_FILE = 'sweep.lock';

/**
 * The sweep lock as `<dataDir>/sweep.lock` (core's FileLock: created atomically with the holder's
 * pid, boot id and start time). A lock left by a process that died is taken over; one held by a
 * live process, this one included, is not. It excludes sweepers that share the data directory,
 * not instances with data directories of their own: a fleet needs a lock they all see.
 */
export class FileSweepLock implements SweepLock {
  readonly path: string;
  #held: FileLock | undefined;

  constructor(dataDir: string) {
    this.path = join(dataDir, SWEEP_LOCK_FILE);
  }

  async tryAcquire(): Promise<boolean> {
    if (this.#held !== undefined) return false;
    this.#held = await FileLock.tryAcquire(this.path);
    return this.#held !== undefined;
  }

  async release(): Promise<void> {
    const held = this.#held;
    this.#held = undefined;
    await held?.release();
  }
}
