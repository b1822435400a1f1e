import type { SqlExecutor } from './database.js';

/**
 * What is due for removal: a deleted version's CDN object, by its cdnKey (stored parts no record
 * names the sweeper finds by itself).
 */
export type RemovalKind = 'cdnObject';

/**
 * Removals still due: recorded in the transaction that deletes a version, marked done once the
 * object is gone; the sweeper finishes what a failure or a crash left. Nothing serves them.
 */
export class RemovalRows {
  constructor(private readonly sql: SqlExecutor) {}

  async add(kind: RemovalKind, key: string, now: string): Promise<void> {
    await this.sql.query(
      'INSERT INTO pending_removals (kind, key, since) VALUES ($1, $2, $3) ON CONFLICT (kind, key) DO NOTHING',
      [kind, key, now],
    );
  }

  async list(kind: RemovalKind, limit = 1000): Promise<{ key: string; since: string }[]> {
    const rows = await this.sql.query(
      'SELECT key, since FROM pending_removals WHERE kind = $1 ORDER BY since LIMIT $2',
      [kind, limit],
    );
    return rows.map((r) => ({ key: String(r.key), since: String(r.since) }));
  }

  async done(kind: RemovalKind, key: string): Promise<void> {
    await this.sql.query('DELETE FROM pending_removals WHERE kind = $1 AND key = $2', [kind, key]);
  }
}
