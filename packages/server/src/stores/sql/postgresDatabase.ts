import pg from 'pg';
import {
  checkStorable,
  type PoolStats,
  type SqlDatabase,
  type SqlExecutor,
  type SqlRow,
  SqlUniqueViolation,
  type SqlValue,
} from './database.js';

/** SQLSTATEs of a transaction that lost to a concurrent one: it is safe to run it again. */
const RETRYABLE = new Set(['40001', '40P01']);
const MAX_ATTEMPTS = 20;

export interface PostgresOptions {
  /** Connections at most (default 10). */
  max?: number;
  /** Milliseconds a statement may run before PostgreSQL cancels it (default 30 000). */
  statementTimeoutMs?: number;
}

// BIGINT (int8) and COUNT(*) come back as numbers: the schema keeps them below 2^53.
const types = {
  getTypeParser(oid: number, format?: 'text' | 'binary') {
    if (oid === 20) return (v: string) => Number(v);
    return pg.types.getTypeParser(oid, format);
  },
};

/** Statements worth preparing: the store's own queries (not DDL, locks or maintenance). */
const PREPARABLE = /^\s*(SELECT|INSERT|UPDATE|DELETE|WITH)\b/i;
/** Distinct texts at most that get a name; the store's SQL is a fixed set far below it. */
const MAX_NAMED = 1000;
const statementNames = new Map<string, string>();

/**
 * The query as a named (prepared) statement: each connection has PostgreSQL parse and plan
 * it once and afterwards only binds and runs it, which saves both processes CPU per call.
 */
function statement(sql: string, params: readonly SqlValue[]): pg.QueryConfig<SqlValue[]> {
  const values = params as SqlValue[];
  if (!PREPARABLE.test(sql)) return { text: sql, values };
  let name = statementNames.get(sql);
  if (name === undefined) {
    if (statementNames.size >= MAX_NAMED) return { text: sql, values };
    name = `sluice_${statementNames.size}`;
    statementNames.set(sql, name);
  }
  return { name, text: sql, values };
}

function mapError(e: unknown): unknown {
  const { code, constraint } = e as { code?: unknown; constraint?: unknown };
  if (code === '23505') {
    return new SqlUniqueViolation(typeof constraint === 'string' ? constraint : undefined, {
      cause: e,
    });
  }
  return e;
}

function executorOf(client: pg.PoolClient): SqlExecutor {
  return {
    query: async <R extends SqlRow>(sql: string, params: readonly SqlValue[] = []) => {
      checkStorable(params);
      try {
        return (await client.query<R, SqlValue[]>(statement(sql, params))).rows;
      } catch (e) {
        throw mapError(e);
      }
    },
  };
}

/** What a connection error may say, without the URL (it can hold a password). */
export function describeDatabaseUrl(url: string): string {
  try {
    const u = new URL(url);
    return `${u.protocol}//${u.hostname}${u.port === '' ? '' : `:${u.port}`}${u.pathname}`;
  } catch {
    return 'the configured database';
  }
}

/**
 * PostgreSQL as the system of record, through a `pg` pool. Transactions run at SERIALIZABLE, so
 * rules that read several rows (the last active ApiAdmin, a first device bind, a refresh) hold
 * across any number of instances; one that loses a race is retried from the start.
 */
export class PostgresDatabase implements SqlDatabase {
  readonly kind = 'postgres' as const;
  private readonly pool: pg.Pool;

  private constructor(pool: pg.Pool) {
    this.pool = pool;
  }

  static async open(url: string, options: PostgresOptions = {}): Promise<PostgresDatabase> {
    const pool = new pg.Pool({
      connectionString: url,
      max: options.max ?? 10,
      statement_timeout: options.statementTimeoutMs ?? 30_000,
      connectionTimeoutMillis: 10_000,
      types,
    });
    // An idle connection that dies (a database restart) must not crash the process.
    pool.on('error', () => {});
    const db = new PostgresDatabase(pool);
    try {
      await db.ping();
    } catch (e) {
      await pool.end().catch(() => {});
      const reason = (e as { code?: unknown; message?: unknown }).code ?? (e as Error).message;
      throw new Error(`cannot reach PostgreSQL at ${describeDatabaseUrl(url)}: ${String(reason)}`);
    }
    return db;
  }

  async query<R extends SqlRow = SqlRow>(
    sql: string,
    params: readonly SqlValue[] = [],
  ): Promise<R[]> {
    checkStorable(params);
    try {
      return (await this.pool.query<R, SqlValue[]>(statement(sql, params))).rows;
    } catch (e) {
      throw mapError(e);
    }
  }

  async transaction<T>(fn: (tx: SqlExecutor) => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt += 1) {
      const client = await this.pool.connect();
      let broken = false;
      try {
        await client.query('BEGIN ISOLATION LEVEL SERIALIZABLE');
        const result = await fn(executorOf(client));
        await client.query('COMMIT');
        return result;
      } catch (e) {
        await client.query('ROLLBACK').catch(() => {
          broken = true;
        });
        const code = (e as { code?: unknown; cause?: { code?: unknown } }).code;
        const causeCode = (e as { cause?: { code?: unknown } }).cause?.code;
        const retry = RETRYABLE.has(String(code)) || RETRYABLE.has(String(causeCode));
        if (!retry || attempt >= MAX_ATTEMPTS) throw e;
      } finally {
        client.release(broken);
      }
      // Back off a little, with jitter, so racing instances do not collide again in lockstep.
      await new Promise((r) => setTimeout(r, Math.random() * 5 * attempt));
    }
  }

  async locked<T>(key: number, fn: (tx: SqlExecutor) => Promise<T>): Promise<T> {
    const client = await this.pool.connect();
    let broken = false;
    try {
      await client.query('BEGIN');
      await client.query('SELECT pg_advisory_xact_lock($1)', [key]);
      const result = await fn(executorOf(client));
      await client.query('COMMIT');
      return result;
    } catch (e) {
      await client.query('ROLLBACK').catch(() => {
        broken = true;
      });
      throw e;
    } finally {
      client.release(broken);
    }
  }

  async tryLock(key: number): Promise<{ release(): Promise<void> } | undefined> {
    const client = await this.pool.connect();
    try {
      const [row] = (await client.query('SELECT pg_try_advisory_lock($1) AS ok', [key])).rows;
      if (row?.ok !== true) {
        client.release();
        return undefined;
      }
    } catch (e) {
      client.release(true);
      throw e;
    }
    let released = false;
    return {
      release: async () => {
        if (released) return;
        released = true;
        // Dropping the connection ends the session, and with it the lock, whatever happens.
        await client.query('SELECT pg_advisory_unlock($1)', [key]).catch(() => {});
        client.release(true);
      },
    };
  }

  async ping(): Promise<void> {
    await this.pool.query('SELECT 1 AS one');
  }

  stats(): PoolStats {
    return {
      total: this.pool.totalCount,
      idle: this.pool.idleCount,
      waiting: this.pool.waitingCount,
    };
  }

  async close(): Promise<void> {
    await this.pool.end();
  }
}
