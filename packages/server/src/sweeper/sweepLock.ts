/**
 * Lets one sweeper at a time run a pass: `FileSweepLock` over a file in the data directory, or
 * one shared by every instance of a fleet (a PostgreSQL advisory lock). Held for one pass.
 */
export interface SweepLock {
  /** Takes the lock when no one holds it; false, at once, when another sweeper does. */
  tryAcquire(): Promise<boolean>;
  /** Releases the lock the last successful `tryAcquire` took; a no-op when none is held. */
  release(): Promise<void>;
}
