import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type BetterSqlite3 from 'better-sqlite3';
import {
  checkStorable,
  type PoolStats,
  type SqlDatabase,
  type SqlExecutor,
  type SqlRow,
  SqlUniqueViolation,
  type SqlValue,
} from './database.js';

const require = createRequire(import.meta.url);

/** Where scripts/build-sqlite.mjs puts the addon built for this Node ABI. */
function nativeBinding(): string {
  const pkg = dirname(dirname(dirname(dirname(fileURLToPath(import.meta.url)))));
  const path = join(
    pkg,
    'build',
    'sqlite',
    `abi-${process.versions.modules}`,
    'better_sqlite3.node',
  );
  if (!existsSync(path)) {
    throw new Error(
      `the embedded database's SQLite addon is not built for this Node (ABI ${process.versions.modules}): ` +
        'run `pnpm build` (packages/server/scripts/build-sqlite.mjs)',
    );
  }
  return path;
}

/** `$1`, `$2`… (PostgreSQL) as `@p1`, `@p2`… (named SQLite parameters). */
function translate(sql: string): string {
  return sql.replace(/\$(\d+)/g, '@p$1');
}

function bind(params: readonly SqlValue[]): Record<string, SqlValue> {
  const named: Record<string, SqlValue> = {};
  params.forEach((v, i) => {
    named[`p${i + 1}`] = v;
  });
  return named;
}

/**
 * The embedded default's database: one SQLite file (WAL, synchronous=FULL: a commit is on disk
 * when it resolves) through better-sqlite3. The binding is synchronous; every statement and every
 * transaction runs through one queue, so a transaction's statements never interleave with
 * anyone else's even while `fn` awaits.
 */
export class SqliteDatabase implements SqlDatabase {
  readonly kind = 'sqlite' as const;
  private readonly db: BetterSqlite3.Database;
  private readonly statements = new Map<string, BetterSqlite3.Statement>();
  private queue: Promise<unknown> = Promise.resolve();
  private waiting = 0;
  private closed = false;
  private readonly direct: SqlExecutor = {
    query: async <R extends SqlRow>(sql: string, params: readonly SqlValue[] = []) =>
      this.run(sql, params) as R[],
  };

  private constructor(db: BetterSqlite3.Database) {
    this.db = db;
  }

  static open(path: string): SqliteDatabase {
    const Database = require('better-sqlite3') as typeof BetterSqlite3;
    const db = new Database(path, { nativeBinding: nativeBinding() });
    try {
      db.pragma('journal_mode = WAL');
      db.pragma('synchronous = FULL');
      db.pragma('foreign_keys = ON');
      db.pragma('busy_timeout = 5000');
    } catch (e) {
      db.close();
      throw e;
    }
    return new SqliteDatabase(db);
  }

  query<R extends SqlRow = SqlRow>(sql: string, params: readonly SqlValue[] = []): Promise<R[]> {
    return this.exclusive(() => this.run(sql, params) as R[]);
  }

  transaction<T>(fn: (tx: SqlExecutor) => Promise<T>): Promise<T> {
    return this.exclusive(async () => {
      this.db.exec('BEGIN IMMEDIATE');
      try {
        const result = await fn(this.direct);
        this.db.exec('COMMIT');
        return result;
      } catch (e) {
        if (this.db.inTransaction) this.db.exec('ROLLBACK');
        throw e;
      }
    });
  }

  locked<T>(_key: number, fn: (tx: SqlExecutor) => Promise<T>): Promise<T> {
    return this.transaction(fn);
  }

  async tryLock(_key: number): Promise<{ release(): Promise<void> }> {
    return { release: async () => {} };
  }

  async ping(): Promise<void> {
    await this.query('SELECT 1 AS one');
  }

  stats(): PoolStats {
    return { total: this.closed ? 0 : 1, idle: this.waiting === 0 ? 1 : 0, waiting: this.waiting };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.queue.catch(() => {});
    this.db.close();
  }

  private exclusive<T>(fn: () => T | Promise<T>): Promise<T> {
    if (this.closed) return Promise.reject(new Error('database is closed'));
    this.waiting += 1;
    const run = this.queue.then(() => {
      this.waiting -= 1;
      return fn();
    });
    this.queue = run.catch(() => {});
    return run;
  }

  private run(sql: string, params: readonly SqlValue[]): SqlRow[] {
    checkStorable(params);
    let statement = this.statements.get(sql);
    if (statement === undefined) {
      statement = this.db.prepare(translate(sql));
      this.statements.set(sql, statement);
    }
    try {
      if (statement.reader) return statement.all(bind(params)) as SqlRow[];
      statement.run(bind(params));
      return [];
    } catch (e) {
      const code = (e as { code?: unknown }).code;
      if (code === 'SQLITE_CONSTRAINT_UNIQUE' || code === 'SQLITE_CONSTRAINT_PRIMARYKEY') {
        throw new SqlUniqueViolation(undefined, { cause: e });
      }
      throw e;
    }
  }
}
