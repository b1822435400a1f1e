import type { SqlExecutor } from './database.js';

/** What a removal could not finish: a stored part or a CDN object, by its key. */
export type RemovalKind = 'part' | 'cdnObject';

/**
 * Removals to retry: objects the metadata no longer names but that could not be deleted at the
 * time (the store was down). The sweeper retries them; nothing ever serves them meanwhile.
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
