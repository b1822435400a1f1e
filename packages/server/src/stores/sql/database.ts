import { SluiceError } from '@sluice/protocol';

/** A value a query binds or returns: the schema uses text and integers only (booleans are 0/1). */
export type SqlValue = string | number | null;

export type SqlRow = Record<string, SqlValue>;

/** Runs statements, inside a transaction or not. SQL is written once, PostgreSQL style (`$1`). */
export interface SqlExecutor {
  query<R extends SqlRow = SqlRow>(sql: string, params?: readonly SqlValue[]): Promise<R[]>;
}

export interface PoolStats {
  /** Connections open (SQLite: 1). */
  total: number;
  /** Connections open and idle. */
  idle: number;
  /** Callers waiting for a connection (or, on SQLite, for the one writer). */
  waiting: number;
}

/**
 * The one database interface both backends implement: the embedded default (SQLite in the data
 * directory) and PostgreSQL. `transaction` runs `fn` as one serializable unit: on SQLite every
 * statement runs one at a time on one connection, on PostgreSQL at SERIALIZABLE isolation, and a
 * transaction that lost a race to another instance is re-run from the start (so `fn` must only
 * touch the database through `tx`).
 */
export interface SqlDatabase extends SqlExecutor {
  readonly kind: 'sqlite' | 'postgres';
  transaction<T>(fn: (tx: SqlExecutor) => Promise<T>): Promise<T>;
  /**
   * Runs `fn` in one transaction that first takes the lock `key` (a PostgreSQL advisory lock; on
   * SQLite the one writer is the lock), at READ COMMITTED, so that what `fn` reads after the lock
   * includes everything the previous holder committed. For work that must not run twice at once
   * across instances (schema migrations).
   */
  locked<T>(key: number, fn: (tx: SqlExecutor) => Promise<T>): Promise<T>;
  /**
   * Takes the lock `key` if no other instance holds it (a session advisory lock on PostgreSQL,
   * held on a connection of its own until `release`); undefined when another holds it. On SQLite
   * one process owns the data directory, so it is always granted.
   */
  tryLock(key: number): Promise<{ release(): Promise<void> } | undefined>;
  /** Resolves when the database answers a trivial query. */
  ping(): Promise<void>;
  stats(): PoolStats;
  close(): Promise<void>;
}

/**
 * Whether `text` can be stored by both backends: PostgreSQL refuses NUL and text that is not
 * valid UTF-8 (a lone UTF-16 surrogate), so neither backend stores them.
 */
export function storable(text: string): boolean {
  return !text.includes('\u0000') && !LONE_SURROGATE.test(text);
}

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/** Refuses, as a bad request, a parameter that no row could hold (see `storable`). */
export function checkStorable(params: readonly SqlValue[]): void {
  for (const p of params) {
    if (typeof p === 'string' && !storable(p)) {
      throw new SluiceError('ERR_BAD_REQUEST', 'text holds NUL or a lone surrogate');
    }
  }
}

/** A unique or primary-key constraint refused the statement (another row has that key). */
export class SqlUniqueViolation extends Error {
  constructor(
    readonly constraint: string | undefined,
    options?: { cause?: unknown },
  ) {
    super(
      `unique constraint violated${constraint === undefined ? '' : ` (${constraint})`}`,
      options,
    );
    this.name = 'SqlUniqueViolation';
  }
}
