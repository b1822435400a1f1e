import type { SqlExecutor } from './database.js';

/** An organisation's limits: bound accounts and pulled bytes per UTC month (null: none). */
export interface OrgLimits {
  seatLimit: number | null;
  monthlyQuotaBytes: number | null;
}

/** The organisations' limits, the seats they use and their pull usage (table pull_usage). */
export class LimitRows {
  constructor(private readonly sql: SqlExecutor) {}

  /** The limits of organisation `orgId`, or undefined when there is no such organisation. */
  async get(orgId: string): Promise<OrgLimits | undefined> {
    const [row] = await this.sql.query(
      'SELECT seat_limit, monthly_quota_bytes FROM organisations WHERE id = $1',
      [orgId],
    );
    if (row === undefined) return undefined;
    const n = (v: unknown) => (v === null || v === undefined ? null : Number(v));
    return { seatLimit: n(row.seat_limit), monthlyQuotaBytes: n(row.monthly_quota_bytes) };
  }

  /** Sets the limits of organisation `orgId`; false when there is no such organisation. */
  async set(orgId: string, limits: OrgLimits): Promise<boolean> {
    const rows = await this.sql.query(
      'UPDATE organisations SET seat_limit = $2, monthly_quota_bytes = $3 WHERE id = $1 RETURNING id',
      [orgId, limits.seatLimit, limits.monthlyQuotaBytes],
    );
    return rows.length === 1;
  }

  /** How many accounts of `orgId` are bound to a device now. */
  async boundSeats(orgId: string): Promise<number> {
    const [row] = await this.sql.query(
      'SELECT COUNT(*) AS n FROM users WHERE org_id = $1 AND bound_hardware_hash IS NOT NULL',
      [orgId],
    );
    return Number(row?.n ?? 0);
  }

  /** Bytes pulled by `orgId` in `month` ('YYYY-MM', UTC). */
  async usage(orgId: string, month: string): Promise<number> {
    const [row] = await this.sql.query(
      'SELECT bytes FROM pull_usage WHERE org_id = $1 AND month = $2',
      [orgId, month],
    );
    return row === undefined ? 0 : Number(row.bytes);
  }

  /** Adds `bytes` to the pull usage of `orgId` in `month`. */
  async addUsage(orgId: string, month: string, bytes: number): Promise<void> {
    await this.sql.query(
      `INSERT INTO pull_usage (org_id, month, bytes) VALUES ($1, $2, $3)
       ON CONFLICT (org_id, month) DO UPDATE SET bytes = pull_usage.bytes + $3`,
      [orgId, month, bytes],
    );
  }
}
