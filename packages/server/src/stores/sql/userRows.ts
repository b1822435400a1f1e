import { isRole } from '@sluice/protocol';
import { normaliseEmail, type PublisherKeyRecord, type UserRecord } from '../records.js';
import { type SqlExecutor, type SqlRow, storable } from './database.js';

const COLUMNS =
  'id, email, role, disabled, password_hash, bound_hardware_hash, tokens_valid_after, created_at, updated_at, bound_hardware_factors, device_drifted_at, org_id, bound_at';

function toUser(row: SqlRow): UserRecord {
  const role = row.role;
  if (!isRole(role)) throw new Error(`the users table holds an unknown role for ${String(row.id)}`);
  const user: UserRecord = {
    id: String(row.id),
    email: String(row.email),
    role,
    disabled: row.disabled === 1,
    passwordHash: String(row.password_hash),
    boundHardwareHash: row.bound_hardware_hash === null ? null : String(row.bound_hardware_hash),
    orgId: String(row.org_id),
    createdAt: String(row.created_at),
    updatedAt: String(row.updated_at),
  };
  if (row.bound_at !== null) user.boundAt = String(row.bound_at);
  if (row.tokens_valid_after !== null) user.tokensValidAfter = String(row.tokens_valid_after);
  if (row.bound_hardware_factors !== null) {
    user.boundHardwareFactors = JSON.parse(String(row.bound_hardware_factors));
  }
  if (row.device_drifted_at !== null) user.deviceDriftedAt = String(row.device_drifted_at);
  return user;
}

function values(u: UserRecord) {
  return [
    u.id,
    u.email,
    u.role,
    u.disabled ? 1 : 0,
    u.passwordHash,
    u.boundHardwareHash,
    u.tokensValidAfter ?? null,
    u.createdAt,
    u.updatedAt,
    u.boundHardwareFactors === undefined ? null : JSON.stringify(u.boundHardwareFactors),
    u.deviceDriftedAt ?? null,
    u.orgId,
    u.boundAt ?? null,
  ];
}

/** A page of users in creation order, and the cursor of the next page (absent on the last). */
export interface UserPage {
  users: UserRecord[];
  next?: string;
}

/** Where a page starts: after the user created at `createdAt` with id `id`. */
function parseCursor(cursor: string): [string, string] | undefined {
  const text = Buffer.from(cursor, 'base64url').toString('utf8');
  const at = text.indexOf('|');
  if (at <= 0 || at === text.length - 1) return undefined;
  return [text.slice(0, at), text.slice(at + 1)];
}

function cursorOf(u: UserRecord): string {
  return Buffer.from(`${u.createdAt}|${u.id}`, 'utf8').toString('base64url');
}

/** The users table (and their publisher keys) over one executor: a database or a transaction. */
export class UserRows {
  constructor(private readonly sql: SqlExecutor) {}

  async get(id: string): Promise<UserRecord | undefined> {
    // No row can hold it: nobody has that id (and the database is not asked).
    if (!storable(id)) return undefined;
    const [row] = await this.sql.query(`SELECT ${COLUMNS} FROM users WHERE id = $1`, [id]);
    return row === undefined ? undefined : toUser(row);
  }

  async byEmail(email: string): Promise<UserRecord | undefined> {
    if (!storable(email)) return undefined;
    const [row] = await this.sql.query(`SELECT ${COLUMNS} FROM users WHERE email = $1`, [
      normaliseEmail(email),
    ]);
    return row === undefined ? undefined : toUser(row);
  }

  /** Users in creation order, `limit` at a time from `cursor` (undefined: the first page). */
  async page(limit: number, cursor?: string): Promise<UserPage> {
    const from = cursor === undefined ? undefined : parseCursor(cursor);
    if (cursor !== undefined && from === undefined) throw new RangeError('malformed cursor');
    const rows =
      from === undefined
        ? await this.sql.query(`SELECT ${COLUMNS} FROM users ORDER BY created_at, id LIMIT $1`, [
            limit + 1,
          ])
        : await this.sql.query(
            // A row value: an index range on both backends (the OR form made PostgreSQL walk
            // the index from its start, so each page cost more than the last).
            `SELECT ${COLUMNS} FROM users WHERE (created_at, id) > ($1, $2)
             ORDER BY created_at, id LIMIT $3`,
            [from[0], from[1], limit + 1],
          );
    const users = rows.slice(0, limit).map(toUser);
    const last = users.at(-1);
    return rows.length > limit && last !== undefined ? { users, next: cursorOf(last) } : { users };
  }

  async count(): Promise<number> {
    const [row] = await this.sql.query<{ n: number }>('SELECT COUNT(*) AS n FROM users');
    return Number(row?.n ?? 0);
  }

  /** Whether any user has `role` (disabled ones included). */
  async anyWithRole(role: string): Promise<boolean> {
    const rows = await this.sql.query('SELECT 1 AS one FROM users WHERE role = $1 LIMIT 1', [role]);
    return rows.length > 0;
  }

  /** Active ApiAdmins other than `exceptId`: the last one may not be disabled or demoted. */
  async otherActiveApiAdmins(exceptId: string): Promise<number> {
    const [row] = await this.sql.query<{ n: number }>(
      "SELECT COUNT(*) AS n FROM users WHERE role = 'ApiAdmin' AND disabled = 0 AND id <> $1",
      [exceptId],
    );
    return Number(row?.n ?? 0);
  }

  /** Adds `user`; SqlUniqueViolation when its id or email is taken. */
  async insert(user: UserRecord): Promise<void> {
    await this.sql.query(
      `INSERT INTO users (${COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)`,
      values(user),
    );
  }

  /** Writes every field of `user` (found by id). */
  async update(user: UserRecord): Promise<void> {
    await this.sql.query(
      `UPDATE users SET email = $2, role = $3, disabled = $4, password_hash = $5,
         bound_hardware_hash = $6, tokens_valid_after = $7, created_at = $8, updated_at = $9,
         bound_hardware_factors = $10, device_drifted_at = $11, org_id = $12, bound_at = $13
       WHERE id = $1`,
      values(user),
    );
  }

  /**
   * Binds `hardware` to `id` if it is bound to nothing: one conditional statement, so of two
   * concurrent first binds (on any instances) exactly one succeeds. True when this call bound it.
   */
  async bindIfUnbound(
    id: string,
    hardware: string,
    now: string,
    factors?: Record<string, string>,
  ): Promise<boolean> {
    const rows = await this.sql.query(
      `UPDATE users SET bound_hardware_hash = $2, updated_at = $3, bound_hardware_factors = $4,
         device_drifted_at = NULL, bound_at = $3
       WHERE id = $1 AND bound_hardware_hash IS NULL RETURNING id`,
      [id, hardware, now, factors === undefined ? null : JSON.stringify(factors)],
    );
    return rows.length === 1;
  }

  async publisherKeys(userId: string): Promise<PublisherKeyRecord[]> {
    const rows = await this.sql.query(
      'SELECT public_key, added_at FROM publisher_keys WHERE user_id = $1 ORDER BY added_at, public_key',
      [userId],
    );
    return rows.map((r) => ({ publicKey: String(r.public_key), addedAt: String(r.added_at) }));
  }

  /** The id of the user `publicKey` is registered to, if any. */
  async publisherKeyOwner(publicKey: string): Promise<string | undefined> {
    const [row] = await this.sql.query('SELECT user_id FROM publisher_keys WHERE public_key = $1', [
      publicKey,
    ]);
    return row === undefined ? undefined : String(row.user_id);
  }

  async addPublisherKey(userId: string, key: PublisherKeyRecord): Promise<void> {
    await this.sql.query(
      'INSERT INTO publisher_keys (user_id, public_key, added_at) VALUES ($1, $2, $3)',
      [userId, key.publicKey, key.addedAt],
    );
  }
}
