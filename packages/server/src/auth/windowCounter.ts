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
 * Counts per key in fixed windows kept in memory (per process; scale-out would move them to a
 * shared store): `wait` says how long a key over its limit must wait, `add` counts, `remove`
 * takes one back.
 */
export class WindowCounter {
  private readonly windows = new Map<string, Window>();

  constructor(private readonly rule: LimitRule) {}

  /** Seconds until `key` is below its limit again; 0 when it is now. */
  wait(key: string, now: number): number {
    const w = this.windows.get(key);
    if (w === undefined || w.resetAt <= now || w.count < this.rule.limit) return 0;
    return Math.max(1, Math.ceil((w.resetAt - now) / 1000));
  }

  add(key: string, now: number): void {
    const w = this.windows.get(key);
    if (w !== undefined && w.resetAt > now) {
      w.count += 1;
      return;
    }
    if (this.windows.size >= SWEEP_THRESHOLD) {
      for (const [k, v] of this.windows) if (v.resetAt <= now) this.windows.delete(k);
    }
    this.windows.set(key, { count: 1, resetAt: now + this.rule.windowSeconds * 1000 });
  }

  /** Takes back one count of the current window (an attempt that turned out not to count). */
  remove(key: string, now: number): void {
    const w = this.windows.get(key);
    if (w !== undefined && w.resetAt > now && w.count > 0) w.count -= 1;
  }
}
