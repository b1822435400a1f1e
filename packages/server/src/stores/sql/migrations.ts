import type { SqlDatabase, SqlExecutor } from './database.js';

/**
 * The schema, as numbered migrations applied in order and never edited once released: a change
 * is a new entry. The SQL is the common subset of SQLite and PostgreSQL (TEXT, INTEGER, BIGINT;
 * booleans as 0/1; times as ISO-8601 text, which sorts), so both backends run the same schema.
 */
export const MIGRATIONS: readonly { version: number; name: string; statements: string[] }[] = [
  {
    version: 1,
    name: 'initial schema',
    statements: [
      `CREATE TABLE users (
        id TEXT PRIMARY KEY,
        email TEXT NOT NULL UNIQUE,
        role TEXT NOT NULL,
        disabled INTEGER NOT NULL DEFAULT 0,
        password_hash TEXT NOT NULL,
        bound_hardware_hash TEXT,
        tokens_valid_after TEXT,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL
      )`,
      'CREATE INDEX users_by_creation ON users (created_at, id)',
      'CREATE INDEX users_by_role ON users (role, disabled)',
      `CREATE TABLE publisher_keys (
        user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
        public_key TEXT NOT NULL,
        added_at TEXT NOT NULL,
        PRIMARY KEY (user_id, public_key)
      )`,
      // A publisher key names one account.
      'CREATE UNIQUE INDEX publisher_keys_by_key ON publisher_keys (public_key)',
      `CREATE TABLE refresh_families (
        id TEXT PRIMARY KEY,
        user_id TEXT NOT NULL,
        current_hash TEXT NOT NULL,
        previous_hashes TEXT NOT NULL,
        created_at TEXT NOT NULL,
        rotated_at TEXT NOT NULL,
        expires_at TEXT NOT NULL,
        revoked_at TEXT,
        revoked_reason TEXT
      )`,
      'CREATE INDEX refresh_families_by_user ON refresh_families (user_id)',
      'CREATE INDEX refresh_families_by_expiry ON refresh_families (expires_at)',
      `CREATE TABLE resources (
        id TEXT PRIMARY KEY,
        folder TEXT NOT NULL,
        name TEXT NOT NULL,
        UNIQUE (folder, name)
      )`,
      `CREATE TABLE resource_versions (
        resource_id TEXT NOT NULL REFERENCES resources (id) ON DELETE CASCADE,
        version INTEGER NOT NULL,
        manifest TEXT NOT NULL,
        small_blob_id TEXT NOT NULL,
        big_blob_id TEXT,
        cdn_key TEXT,
        wrapped_data_key TEXT NOT NULL,
        created_at TEXT NOT NULL,
        uploaded_by TEXT NOT NULL,
        PRIMARY KEY (resource_id, version)
      )`,
      'CREATE INDEX resource_versions_by_cdn_key ON resource_versions (cdn_key)',
      `CREATE TABLE used_parcel_tokens (
        jti TEXT PRIMARY KEY,
        forget_after BIGINT NOT NULL
      )`,
      'CREATE INDEX used_parcel_tokens_by_expiry ON used_parcel_tokens (forget_after)',
      `CREATE TABLE parcels (
        id TEXT PRIMARY KEY,
        owner TEXT NOT NULL,
        sha256 TEXT NOT NULL,
        size BIGINT NOT NULL,
        blob_id TEXT,
        created_at TEXT NOT NULL,
        removed_at TEXT
      )`,
      `CREATE TABLE store_meta (
        key TEXT PRIMARY KEY,
        value TEXT NOT NULL
      )`,
      `CREATE TABLE limiter_entries (
        key TEXT PRIMARY KEY,
        value TEXT NOT NULL,
        expires_at BIGINT NOT NULL
      )`,
      'CREATE INDEX limiter_entries_by_expiry ON limiter_entries (expires_at)',
      `CREATE TABLE pending_removals (
        kind TEXT NOT NULL,
        key TEXT NOT NULL,
        since TEXT NOT NULL,
        PRIMARY KEY (kind, key)
      )`,
    ],
  },
  {
    version: 2,
    name: 'resource release pointer and version high-water mark',
    statements: [
      // The version devices get when they name none; NULL (rows from before): the latest.
      'ALTER TABLE resources ADD COLUMN current_version INTEGER',
      // The highest number ever given to a version: a deleted one is never handed out again.
      'ALTER TABLE resources ADD COLUMN top_version INTEGER NOT NULL DEFAULT 0',
    ],
  },
  {
    version: 3,
    name: 'drift-tolerant device binding: a digest per hardware factor',
    statements: [
      // JSON {factor name: digest} of the bound device (docs/FORMAT.md §7), null for a binding
      // made from the hash alone; and when the binding last moved to a drifted device.
      'ALTER TABLE users ADD COLUMN bound_hardware_factors TEXT',
      'ALTER TABLE users ADD COLUMN device_drifted_at TEXT',
    ],
  },
  {
    version: 4,
    name: 'entitlements: organisations, folder grants, device groups, limits, audit',
    statements: [
      // A tenant. Limits: bound devices (NULL: no limit) and pulled bytes per calendar month
      // (UTC; NULL: no quota). Every existing user lands in the default organisation.
      `CREATE TABLE organisations (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        seat_limit INTEGER,
        monthly_quota_bytes BIGINT,
        created_at TEXT NOT NULL
      )`,
      `INSERT INTO organisations (id, name, created_at) VALUES ('default', 'default', '1970-01-01T00:00:00.000Z')`,
      `ALTER TABLE users ADD COLUMN org_id TEXT NOT NULL DEFAULT 'default'`,
      'CREATE INDEX users_by_org ON users (org_id, created_at, id)',
      // When the bound device was bound (for the inventory); NULL for bindings from before.
      'ALTER TABLE users ADD COLUMN bound_at TEXT',
      // A folder belongs to one organisation: the pusher's, at its first push. Existing folders
      // go to the default organisation.
      `CREATE TABLE folders (
        folder TEXT PRIMARY KEY,
        org_id TEXT NOT NULL REFERENCES organisations (id),
        created_at TEXT NOT NULL
      )`,
      `INSERT INTO folders (folder, org_id, created_at)
        SELECT DISTINCT folder, 'default', '1970-01-01T00:00:00.000Z' FROM resources`,
      // Access to a folder beyond its own organisation's: subject_kind 'org' | 'user' | 'group',
      // access 'read' (list, pull) or 'write' (push, release, delete; implies read).
      `CREATE TABLE folder_grants (
        folder TEXT NOT NULL,
        subject_kind TEXT NOT NULL,
        subject_id TEXT NOT NULL,
        access TEXT NOT NULL,
        granted_by TEXT NOT NULL,
        granted_at TEXT NOT NULL,
        PRIMARY KEY (folder, subject_kind, subject_id)
      )`,
      'CREATE INDEX folder_grants_by_subject ON folder_grants (subject_kind, subject_id)',
      // A named group of an organisation's accounts (and so of their bound devices).
      `CREATE TABLE device_groups (
        id TEXT PRIMARY KEY,
        org_id TEXT NOT NULL REFERENCES organisations (id),
        name TEXT NOT NULL,
        created_at TEXT NOT NULL,
        UNIQUE (org_id, name)
      )`,
      `CREATE TABLE device_group_members (
        group_id TEXT NOT NULL REFERENCES device_groups (id) ON DELETE CASCADE,
        user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
        added_at TEXT NOT NULL,
        PRIMARY KEY (group_id, user_id)
      )`,
      'CREATE INDEX device_group_members_by_user ON device_group_members (user_id)',
      // Bytes of big and small parts handed out per organisation and month ('2026-12').
      `CREATE TABLE pull_usage (
        org_id TEXT NOT NULL,
        month TEXT NOT NULL,
        bytes BIGINT NOT NULL,
        PRIMARY KEY (org_id, month)
      )`,
      // What happened, who did it and from where: envelopes issued, binds, drifts, resets, grant
      // changes, deletions. id is time-ordered text (the ISO time, then random), the page cursor.
      `CREATE TABLE audit_events (
        id TEXT PRIMARY KEY,
        at TEXT NOT NULL,
        kind TEXT NOT NULL,
        actor_id TEXT,
        actor_email TEXT,
        org_id TEXT,
        subject_id TEXT,
        device_hash TEXT,
        folder TEXT,
        name TEXT,
        version INTEGER,
        address TEXT,
        detail TEXT
      )`,
      'CREATE INDEX audit_events_by_org ON audit_events (org_id, id)',
      'CREATE INDEX audit_events_by_kind ON audit_events (kind, id)',
      'CREATE INDEX audit_events_by_subject ON audit_events (subject_id, id)',
    ],
  },
];

/** The lock key migrations are applied under (any constant shared by every instance). */
const MIGRATION_LOCK = 0x51_1c_e0_01;

/** The newest schema version this code knows. */
export const SCHEMA_VERSION = MIGRATIONS.at(-1)?.version ?? 0;

async function appliedVersion(tx: SqlExecutor): Promise<number> {
  await tx.query(
    `CREATE TABLE IF NOT EXISTS schema_migrations (
      version INTEGER PRIMARY KEY,
      name TEXT NOT NULL,
      applied_at TEXT NOT NULL
    )`,
  );
  const [row] = await tx.query<{ v: number | null }>(
    'SELECT MAX(version) AS v FROM schema_migrations',
  );
  return row?.v ?? 0;
}

/**
 * Brings the schema up to SCHEMA_VERSION, one migration at a time, under a lock so that
 * instances starting together apply each migration once. Refuses a database whose schema is
 * newer than this code (a downgrade). Returns the versions it applied.
 */
export async function migrate(db: SqlDatabase): Promise<number[]> {
  return db.locked(MIGRATION_LOCK, async (tx) => {
    const current = await appliedVersion(tx);
    if (current > SCHEMA_VERSION) {
      throw new Error(
        `the database's schema is version ${current}, newer than this server's ${SCHEMA_VERSION}: upgrade the server`,
      );
    }
    const applied: number[] = [];
    for (const m of MIGRATIONS) {
      if (m.version <= current) continue;
      for (const statement of m.statements) await tx.query(statement);
      await tx.query(
        'INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)',
        [m.version, m.name, new Date().toISOString()],
      );
      applied.push(m.version);
    }
    return applied;
  });
}
