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

/** The entries counters keep, by key (one map shared by every counter: keys carry a prefix). */
export type Entries = Map<string, unknown>;

/** Above this many tracked keys, forgotten ones are swept before adding another. */
const SWEEP_THRESHOLD = 10_000;

/**
 * Failure counts with exponential backoff, per key, kept in the `Entries` each call is given (in
 * memory, or loaded from the store for the call: see limiterState.ts). A caller counts an
 * attempt with `add` before it knows the outcome (so parallel attempts cannot slip past the
 * limit) and `clear`s the key when the attempt succeeded.
 */
export class BackoffCounter {
  constructor(
    private readonly rule: BackoffRule,
    /** What this counter's keys start with in `Entries`. */
    readonly prefix: string,
  ) {}

  key(key: string): string {
    return `${this.prefix}${key}`;
  }

  /** Seconds until `key` is unlocked; 0 when it is not locked. */
  wait(m: Entries, key: string, now: number): number {
    const e = this.live(m, key, now);
    if (e === undefined || e.lockedUntil <= now) return 0;
    return Math.max(1, Math.ceil((e.lockedUntil - now) / 1000));
  }

  /** Counts one failure; at the limit and beyond, locks the key (doubling each time). */
  add(m: Entries, key: string, now: number): void {
    let e = this.live(m, key, now);
    if (e === undefined) {
      if (m.size >= SWEEP_THRESHOLD) this.sweep(m, now);
      e = { failures: 0, lockedUntil: 0, lastAt: now };
      m.set(this.key(key), e);
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
  clear(m: Entries, key: string): void {
    m.delete(this.key(key));
  }

  /** The entry of `key`, unless it is unlocked and its failures are old enough to forget. */
  private live(m: Entries, key: string, now: number): Entry | undefined {
    const e = m.get(this.key(key)) as Entry | undefined;
    if (e !== undefined && this.forgotten(e, now)) {
      m.delete(this.key(key));
      return undefined;
    }
    return e;
  }

  private forgotten(e: Entry, now: number): boolean {
    return e.lockedUntil <= now && now - e.lastAt >= this.rule.forgetSeconds * 1000;
  }

  private sweep(m: Entries, now: number): void {
    for (const [k, e] of m) {
      if (k.startsWith(this.prefix) && this.forgotten(e as Entry, now)) m.delete(k);
    }
  }
}
