import { chmod, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { acquireDataDirLock, type DataDirLock } from './dataDirLock.js';
import { importLegacyFiles } from './legacyImport.js';
import type { SqlDatabase, SqlExecutor } from './sql/database.js';
import { FamilyRows } from './sql/familyRows.js';
import { LimiterRows } from './sql/limiterRows.js';
import { LimitRows } from './sql/limitRows.js';
import { MetaRows } from './sql/metaRows.js';
import { migrate } from './sql/migrations.js';
import { ParcelRows } from './sql/parcelRows.js';
import { describeDatabaseUrl, PostgresDatabase } from './sql/postgresDatabase.js';
import { RemovalRows } from './sql/removalRows.js';
import { ResourceRows } from './sql/resourceRows.js';
import { SqliteDatabase } from './sql/sqliteDatabase.js';
import { UserRows } from './sql/userRows.js';

/** The embedded default's database file in the data directory. */
export const DATABASE_FILE = 'sluice.db';

/** Every table, over one executor: the database itself, or one transaction. */
export interface Tables {
  users: UserRows;
  families: FamilyRows;
  resources: ResourceRows;
  /** Organisations' seat and pull limits, and their pull usage. */
  limits: LimitRows;
  parcels: ParcelRows;
  removals: RemovalRows;
  meta: MetaRows;
  limiter: LimiterRows;
}

function tablesOver(sql: SqlExecutor): Tables {
  return {
    users: new UserRows(sql),
    families: new FamilyRows(sql),
    resources: new ResourceRows(sql),
    limits: new LimitRows(sql),
    parcels: new ParcelRows(sql),
    removals: new RemovalRows(sql),
    meta: new MetaRows(sql),
    limiter: new LimiterRows(sql),
  };
}

export interface StoreOptions {
  /** The data directory (created 0700): the embedded database, or with `databaseUrl` the keys. */
  dataDir: string;
  /** PostgreSQL as the system of record (`postgres://…`); absent: the embedded database. */
  databaseUrl?: string;
}

/**
 * The server's system of record: users, logins, resources and versions, parcels, used parcel
 * tokens. One interface over two backends, one schema (stores/sql/migrations.ts) and one set of
 * queries: the embedded default (SQLite in the data directory, one process per directory) and
 * PostgreSQL (any number of instances). Reads go straight to the database; anything that reads
 * and then writes runs in `transaction`, which is serializable on both.
 */
export class Store implements Tables {
  readonly users: UserRows;
  readonly families: FamilyRows;
  readonly resources: ResourceRows;
  readonly limits: LimitRows;
  readonly parcels: ParcelRows;
  readonly removals: RemovalRows;
  readonly meta: MetaRows;
  readonly limiter: LimiterRows;
  private closed: Promise<void> | undefined;

  private constructor(
    readonly db: SqlDatabase,
    readonly dataDir: string,
    private readonly lock: DataDirLock | null,
  ) {
    const t = tablesOver(db);
    this.users = t.users;
    this.families = t.families;
    this.resources = t.resources;
    this.limits = t.limits;
    this.parcels = t.parcels;
    this.removals = t.removals;
    this.meta = t.meta;
    this.limiter = t.limiter;
  }

  get backend(): SqlDatabase['kind'] {
    return this.db.kind;
  }

  /**
   * Opens the store: the database named by `databaseUrl`, else the data directory's embedded one
   * (taking the directory's lock, and importing a `metadata.json` left by an older version once).
   * Applies pending migrations either way.
   */
  static async open(options: StoreOptions): Promise<Store> {
    await ensureDataDir(options.dataDir);
    if (options.databaseUrl !== undefined) {
      const db = await PostgresDatabase.open(options.databaseUrl);
      try {
        await migrate(db);
      } catch (e) {
        await db.close();
        throw new Error(
          `cannot migrate the database at ${describeDatabaseUrl(options.databaseUrl)}: ${(e as Error).message}`,
        );
      }
      return new Store(db, options.dataDir, null);
    }
    const lock = await acquireDataDirLock(options.dataDir);
    let db: SqliteDatabase | undefined;
    try {
      const path = join(options.dataDir, DATABASE_FILE);
      db = SqliteDatabase.open(path);
      await chmod(path, 0o600);
      await migrate(db);
      const store = new Store(db, options.dataDir, lock);
      await importLegacyFiles(store, options.dataDir);
      return store;
    } catch (e) {
      await db?.close();
      await lock.release();
      throw e;
    }
  }

  /** Runs `fn` over the tables as one serializable transaction (see SqlDatabase.transaction). */
  transaction<T>(fn: (tables: Tables) => Promise<T>): Promise<T> {
    return this.db.transaction((tx) => fn(tablesOver(tx)));
  }

  /** The schema version the database is at (SCHEMA_VERSION once open). */
  async schemaVersion(): Promise<number> {
    const [row] = await this.db.query<{ v: number | null }>(
      'SELECT MAX(version) AS v FROM schema_migrations',
    );
    return Number(row?.v ?? 0);
  }

  ping(): Promise<void> {
    return this.db.ping();
  }

  /** Closes the database and releases the data directory. Calling it again is a no-op. */
  close(): Promise<void> {
    this.closed ??= (async () => {
      await this.db.close();
      await this.lock?.release();
    })();
    return this.closed;
  }
}

async function ensureDataDir(dataDir: string): Promise<void> {
  const created = await mkdir(dataDir, { recursive: true, mode: 0o700 });
  // mkdir's mode is filtered by the umask; set it explicitly on the directory we created.
  if (created !== undefined) await chmod(dataDir, 0o700);
}
