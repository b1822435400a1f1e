import type { SqlExecutor } from './database.js';

/** The login limiter's entries (JSON), shared by the instances over one database. */
export class LimiterRows {
  constructor(private readonly sql: SqlExecutor) {}

  /** The stored text of each of `keys` that has an entry. */
  async load(keys: readonly string[]): Promise<Map<string, string>> {
    const found = new Map<string, string>();
    if (keys.length === 0) return found;
    const list = keys.map((_, i) => `$${i + 1}`).join(', ');
    const rows = await this.sql.query(
      `SELECT key, value FROM limiter_entries WHERE key IN (${list})`,
      keys,
    );
    for (const row of rows) found.set(String(row.key), String(row.value));
    return found;
  }

  async put(key: string, value: string, expiresAt: number): Promise<void> {
    await this.sql.query(
      `INSERT INTO limiter_entries (key, value, expires_at) VALUES ($1, $2, $3)
       ON CONFLICT (key) DO UPDATE SET value = $2, expires_at = $3`,
      [key, value, expiresAt],
    );
  }

  async remove(key: string): Promise<void> {
    await this.sql.query('DELETE FROM limiter_entries WHERE key = $1', [key]);
  }

  /** Deletes the entries no rule needs any more (the sweeper's job); returns how many. */
  async removeExpired(now: number): Promise<number> {
    const rows = await this.sql.query(
      'DELETE FROM limiter_entries WHERE expires_at <= $1 RETURNING key',
      [now],
    );
    return rows.length;
  }
}
