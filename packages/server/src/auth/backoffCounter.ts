/**
 * Failures allowed per key before it is locked, and how the locks grow: the first lasts
 * `lockSeconds`, each further failure doubles it up to `maxLockSeconds`; failures are forgotten
 * `forgetSeconds` after the last one.
 */
export interface BackoffRule {
  limit: number;
  lockSeconds: number;
  maxLockSeconds: number;
  forgetSeconds: number;
}

interface Entry {
  failures: number;
  lockedUntil: number;
  lastAt: number;
}

/** Above this many tracked keys, forgotten ones are swept before adding another. */
const SWEEP_THRESHOLD = 10_000;

/**
 * Failure counts with exponential backoff, per key, in memory (per process). A caller counts an
 * attempt with `add` before it knows the outcome (so parallel attempts cannot slip past the
 * limit) and `clear`s the key when the attempt succeeded.
 */
export class BackoffCounter {
  private readonly entries = new Map<string, Entry>();

  constructor(private readonly rule: BackoffRule) {}

  /** Seconds until `key` is unlocked; 0 when it is not locked. */
  wait(key: string, now: number): number {
    const e = this.live(key, now);
    if (e === undefined || e.lockedUntil <= now) return 0;
    return Math.max(1, Math.ceil((e.lockedUntil - now) / 1000));
  }

  /** Counts one failure; at the limit and beyond, locks the key (doubling each time). */
  add(key: string, now: number): void {
    let e = this.live(key, now);
    if (e === undefined) {
      if (this.entries.size >= SWEEP_THRESHOLD) this.sweep(now);
      e = { failures: 0, lockedUntil: 0, lastAt: now };
      this.entries.set(key, e);
    }
    e.failures += 1;
    e.lastAt = now;
    const { limit, lockSeconds, maxLockSeconds } = this.rule;
    if (e.failures >= limit) {
      const seconds = Math.min(maxLockSeconds, lockSeconds * 2 ** (e.failures - limit));
      e.lockedUntil = Math.max(e.lockedUntil, now + seconds * 1000);
    }
  }

  /** Forgets the failures of `key` (its attempt succeeded). */
  clear(key: string): void {
    this.entries.delete(key);
  }

  /** The entry of `key`, unless it is unlocked and its failures are old enough to forget. */
  private live(key: string, now: number): Entry | undefined {
    const e = this.entries.get(key);
    if (e !== undefined && this.forgotten(e, now)) {
      this.entries.delete(key);
      return undefined;
    }
    return e;
  }

  private forgotten(e: Entry, now: number): boolean {
    return e.lockedUntil <= now && now - e.lastAt >= this.rule.forgetSeconds * 1000;
  }

  private sweep(now: number): void {
    for (const [k, e] of this.entries) if (this.forgotten(e, now)) this.entries.delete(k);
  }
}
