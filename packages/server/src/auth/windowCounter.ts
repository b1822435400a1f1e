import type { Entries } from './backoffCounter.js';

/** A budget of `limit` per fixed window of `windowSeconds`. */
export interface LimitRule {
  limit: number;
  windowSeconds: number;
}

interface Window {
  count: number;
  resetAt: number;
}

/** Above this many tracked keys, expired windows are swept before adding another. */
const SWEEP_THRESHOLD = 10_000;

/**
 * Counts per key in fixed windows, kept in the `Entries` each call is given (in memory, or loaded
 * from the store: see limiterState.ts): `wait` says how long a key over its limit must wait,
 * `add` counts, `remove` takes one back.
 */
export class WindowCounter {
  constructor(
    private readonly rule: LimitRule,
    /** What this counter's keys start with in `Entries`. */
    readonly prefix: string,
  ) {}

  key(key: string): string {
    return `${this.prefix}${key}`;
  }

  /** Seconds until `key` is below its limit again; 0 when it is now. */
  wait(m: Entries, key: string, now: number): number {
    const w = m.get(this.key(key)) as Window | undefined;
    if (w === undefined || w.resetAt <= now || w.count < this.rule.limit) return 0;
    return Math.max(1, Math.ceil((w.resetAt - now) / 1000));
  }

  add(m: Entries, key: string, now: number): void {
    const w = m.get(this.key(key)) as Window | undefined;
    if (w !== undefined && w.resetAt > now) {
      w.count += 1;
      return;
    }
    if (m.size >= SWEEP_THRESHOLD) {
      for (const [k, v] of m) {
        if (k.startsWith(this.prefix) && (v as Window).resetAt <= now) m.delete(k);
      }
    }
    m.set(this.key(key), { count: 1, resetAt: now + this.rule.windowSeconds * 1000 });
  }

  /** Takes back one count of the current window (an attempt that turned out not to count). */
  remove(m: Entries, key: string, now: number): void {
    const w = m.get(this.key(key)) as Window | undefined;
    if (w !== undefined && w.resetAt > now && w.count > 0) w.count -= 1;
  }
}
