import { createHash } from 'node:crypto';
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
  /** Like `run`, for an `fn` that only reads: no transaction, nothing written. */
  peek<T>(keys: readonly string[], fn: (entries: Entries) => T): Promise<T>;
}

/** One process's memory: the embedded default, where one process owns the data directory. */
export class MemoryLimiterState implements LimiterState {
  private readonly entries: Entries = new Map();

  async run<T>(_keys: readonly string[], _now: number, fn: (entries: Entries) => T): Promise<T> {
    return fn(this.entries);
  }

  async peek<T>(_keys: readonly string[], fn: (entries: Entries) => T): Promise<T> {
    return fn(this.entries);
  }
}

/**
 * The store's `limiter_entries` table, shared by every instance over one database: each `run`
 * is a transaction that loads the keys, runs `fn` and writes back the entries it changed.
 */
export class StoreLimiterState implements LimiterState {
  constructor(private readonly store: Store) {}

  async peek<T>(keys: readonly string[], fn: (entries: Entries) => T): Promise<T> {
    const stored = rowKeys(keys);
    const before = await this.store.limiter.load([...stored.values()]);
    const entries: Entries = new Map();
    for (const [key, row] of stored) {
      const text = before.get(row);
      if (text !== undefined) entries.set(key, JSON.parse(text));
    }
    return fn(entries);
  }

  run<T>(keys: readonly string[], now: number, fn: (entries: Entries) => T): Promise<T> {
    const stored = rowKeys(keys);
    return this.store.transaction(async (t) => {
      const before = await t.limiter.load([...stored.values()]);
      const entries: Entries = new Map();
      for (const [key, row] of stored) {
        const text = before.get(row);
        if (text !== undefined) entries.set(key, JSON.parse(text));
      }
      const result = fn(entries);
      for (const [key, row] of stored) {
        const value = entries.get(key);
        if (value === undefined) {
          if (before.has(row)) await t.limiter.remove(row);
          continue;
        }
        const text = JSON.stringify(value);
        if (text !== before.get(row)) await t.limiter.put(row, text, now + LIMITER_ENTRY_TTL_MS);
      }
      return result;
    });
  }
}

/**
 * Rows are keyed by a digest: an email or address as typed (any length, NUL…) never reaches the
 * database, and every key is 64 characters.
 */
function rowKeys(keys: readonly string[]): Map<string, string> {
  return new Map(keys.map((k) => [k, createHash('sha256').update(k).digest('hex')]));
}
