import type { ParcelRecord } from '../records.js';
import type { SqlExecutor, SqlRow } from './database.js';

const COLUMNS = 'id, owner, sha256, size, blob_id, created_at, removed_at';

function toParcel(row: SqlRow): ParcelRecord {
  return {
    id: String(row.id),
    owner: String(row.owner),
    sha256: String(row.sha256),
    size: Number(row.size),
    blobId: row.blob_id === null ? null : String(row.blob_id),
    createdAt: String(row.created_at),
    removedAt: row.removed_at === null ? null : String(row.removed_at),
  };
}

/** Parcel records (live ones and tombstones) and the one-time parcel token ids already used. */
export class ParcelRows {
  constructor(private readonly sql: SqlExecutor) {}

  async get(id: string): Promise<ParcelRecord | undefined> {
    const [row] = await this.sql.query(`SELECT ${COLUMNS} FROM parcels WHERE id = $1`, [id]);
    return row === undefined ? undefined : toParcel(row);
  }

  /**
   * Stores `record` unless a live parcel has its id (then that one is returned and nothing
   * changes); a tombstone with the id is replaced.
   */
  async addUnlessLive(record: ParcelRecord): Promise<{ record: ParcelRecord; existed: boolean }> {
    const live = await this.get(record.id);
    if (live !== undefined && live.removedAt === null) return { record: live, existed: true };
    await this.sql.query(
      `INSERT INTO parcels (${COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7)
       ON CONFLICT (id) DO UPDATE SET owner = $2, sha256 = $3, size = $4, blob_id = $5,
         created_at = $6, removed_at = $7`,
      [
        record.id,
        record.owner,
        record.sha256,
        record.size,
        record.blobId,
        record.createdAt,
        record.removedAt,
      ],
    );
    return { record, existed: false };
  }

  /** Turns the live parcel `id` into a tombstone; returns the record as it was, if it was live. */
  async tombstone(id: string, now: string): Promise<ParcelRecord | undefined> {
    const live = await this.get(id);
    if (live === undefined || live.removedAt !== null) return undefined;
    await this.sql.query('UPDATE parcels SET blob_id = NULL, removed_at = $2 WHERE id = $1', [
      id,
      now,
    ]);
    return live;
  }

  async referencedBlobIds(): Promise<Set<string>> {
    const rows = await this.sql.query('SELECT blob_id FROM parcels WHERE blob_id IS NOT NULL');
    return new Set(rows.map((r) => String(r.blob_id)));
  }

  /**
   * Marks the parcel token `jti` used until `forgetAfter` (epoch seconds): true for the one call
   * that marks it first, on any instance, false for every other (INSERT … ON CONFLICT DO NOTHING).
   */
  async consumeToken(jti: string, forgetAfter: number): Promise<boolean> {
    const rows = await this.sql.query(
      'INSERT INTO used_parcel_tokens (jti, forget_after) VALUES ($1, $2) ON CONFLICT (jti) DO NOTHING RETURNING jti',
      [jti, Math.ceil(forgetAfter)],
    );
    return rows.length === 1;
  }

  async tokenUsed(jti: string): Promise<boolean> {
    const rows = await this.sql.query('SELECT 1 AS one FROM used_parcel_tokens WHERE jti = $1', [
      jti,
    ]);
    return rows.length > 0;
  }

  /** Forgets the used token ids whose tokens expired by `nowSeconds`; returns how many. */
  async forgetTokens(nowSeconds: number): Promise<number> {
    const rows = await this.sql.query(
      'DELETE FROM used_parcel_tokens WHERE forget_after <= $1 RETURNING jti',
      // A whole number: PostgreSQL refuses a fraction for a BIGINT.
      [Math.floor(nowSeconds)],
    );
    return rows.length;
  }

  async usedTokenCount(): Promise<number> {
    const [row] = await this.sql.query<{ n: number }>(
      'SELECT COUNT(*) AS n FROM used_parcel_tokens',
    );
    return Number(row?.n ?? 0);
  }
}
