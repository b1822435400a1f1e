import type { SqlExecutor } from './database.js';

/** Small named facts about the store itself (when a legacy file was imported, …). */
export class MetaRows {
  constructor(private readonly sql: SqlExecutor) {}

  async get(key: string): Promise<string | undefined> {
    const [row] = await this.sql.query('SELECT value FROM store_meta WHERE key = $1', [key]);
    return row === undefined ? undefined : String(row.value);
  }

  async set(key: string, value: string): Promise<void> {
    await this.sql.query(
      'INSERT INTO store_meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = $2',
      [key, value],
    );
  }
}
