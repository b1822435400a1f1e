import type { RefreshFamily } from '../records.js';
import type { SqlExecutor, SqlRow } from './database.js';

const COLUMNS =
  'id, user_id, current_hash, previous_hashes, created_at, rotated_at, expires_at, revoked_at, revoked_reason';

function toFamily(row: SqlRow): RefreshFamily {
  return {
    id: String(row.id),
    userId: String(row.user_id),
    currentHash: String(row.current_hash),
    previousHashes: JSON.parse(String(row.previous_hashes)) as string[],
    createdAt: String(row.created_at),
    rotatedAt: String(row.rotated_at),
    expiresAt: String(row.expires_at),
    revokedAt: row.revoked_at === null ? null : String(row.revoked_at),
    revokedReason: row.revoked_reason === null ? null : String(row.revoked_reason),
  };
}

function values(f: RefreshFamily) {
  return [
    f.id,
    f.userId,
    f.currentHash,
    JSON.stringify(f.previousHashes),
    f.createdAt,
    f.rotatedAt,
    f.expiresAt,
    f.revokedAt,
    f.revokedReason,
  ];
}

/** The refresh families (one per login) over one executor. */
export class FamilyRows {
  constructor(private readonly sql: SqlExecutor) {}

  async get(id: string): Promise<RefreshFamily | undefined> {
    const [row] = await this.sql.query(`SELECT ${COLUMNS} FROM refresh_families WHERE id = $1`, [
      id,
    ]);
    return row === undefined ? undefined : toFamily(row);
  }

  async ofUser(userId: string): Promise<RefreshFamily[]> {
    const rows = await this.sql.query(
      `SELECT ${COLUMNS} FROM refresh_families WHERE user_id = $1 ORDER BY created_at, id`,
      [userId],
    );
    return rows.map(toFamily);
  }

  async insert(f: RefreshFamily): Promise<void> {
    await this.sql.query(
      `INSERT INTO refresh_families (${COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
      values(f),
    );
  }

  async update(f: RefreshFamily): Promise<void> {
    await this.sql.query(
      `UPDATE refresh_families SET user_id = $2, current_hash = $3, previous_hashes = $4,
         created_at = $5, rotated_at = $6, expires_at = $7, revoked_at = $8, revoked_reason = $9
       WHERE id = $1`,
      values(f),
    );
  }

  /** Revokes every live family of `userId`; returns how many. */
  async revokeAllOf(userId: string, now: string, reason: string): Promise<number> {
    const rows = await this.sql.query(
      `UPDATE refresh_families SET revoked_at = $2, revoked_reason = $3
       WHERE user_id = $1 AND revoked_at IS NULL RETURNING id`,
      [userId, now, reason],
    );
    return rows.length;
  }

  /** Deletes the families of `userId` that expired by `now`. */
  async removeExpired(userId: string, now: string): Promise<void> {
    await this.sql.query('DELETE FROM refresh_families WHERE user_id = $1 AND expires_at <= $2', [
      userId,
      now,
    ]);
  }

  /** Deletes every family that expired by `now` (the sweeper's job); returns how many. */
  async removeAllExpired(now: string): Promise<number> {
    const rows = await this.sql.query(
      'DELETE FROM refresh_families WHERE expires_at <= $1 RETURNING id',
      [now],
    );
    return rows.length;
  }

  async remove(id: string): Promise<void> {
    await this.sql.query('DELETE FROM refresh_families WHERE id = $1', [id]);
  }
}
