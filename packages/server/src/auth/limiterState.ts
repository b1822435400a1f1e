import type { Store } from '../stores/store.js';
import type { Entries } from './backoffCounter.js';

/** How long a limiter entry may stay in the store after its last change (the longest rule). */
export const LIMITER_ENTRY_TTL_MS = 31 * 24 * 60 * 60 * 1000;

/**
 * Where the login limiter's counters live. `run` gives `fn` the current entries of `keys` (at
 * least) and keeps whatever `fn` changed among them, as one atomic step: two attempts on any
 * instances never both see the count before the other's.
 */
export interface LimiterState {
  run<T>(keys: readonly string[], now: number, fn: (entries: Entries) => T): Promise<T>;
}

/** One process's memory: the embedded default, where one process owns the data directory. */
export class MemoryLimiterState implements LimiterState {
  private readonly entries: Entries = new Map();

  async run<T>(_keys: readonly string[], _now: number, fn: (entries: Entries) => T): Promise<T> {
    return fn(this.entries);
  }
}

/**
 * The store's `limiter_entries` table, shared by every instance over one database: each `run`
 * is a transaction that loads the keys, runs `fn` and writes back the entries it changed.
 */
export class StoreLimiterState implements LimiterState {
  constructor(private readonly store: Store) {}

  run<T>(keys: readonly string[], now: number, fn: (entries: Entries) => T): Promise<T> {
    return this.store.transaction(async (t) => {
      const before = await t.limiter.load(keys);
      const entries: Entries = new Map([...before].map(([k, v]) => [k, JSON.parse(v)]));
      const result = fn(entries);
      for (const key of keys) {
        const now_ = entries.get(key);
        if (now_ === undefined) {
          if (before.has(key)) await t.limiter.remove(key);
          continue;
        }
        const text = JSON.stringify(now_);
        if (text !== before.get(key)) await t.limiter.put(key, text, now + LIMITER_ENTRY_TTL_MS);
      }
      return result;
    });
  }
}
