// Test-only: the real PostgreSQL the PostgreSQL tests run against (started by
// scripts/postgres/postgres.mjs, or any server named by SLUICE_TEST_DATABASE_URL), and one empty
// database per test or suite on it, so suites in parallel workers never see each other's tables.
import { randomBytes } from 'node:crypto';
import pg from 'pg';

export type PostgresTestEnv = { url: string } | { url: undefined; skipReason: string };

const ENABLE =
  'to run them: eval "$(node scripts/postgres/postgres.mjs start --dir /tmp/sluice-pg)" (or set SLUICE_TEST_DATABASE_URL=postgres://USER@HOST:PORT/DB for an existing server)';

/**
 * SLUICE_TEST_DATABASE_URL, or `{url: undefined, skipReason}` when it is absent: the caller skips
 * its PostgreSQL tests and this prints the reason in one line. With CI=true it throws instead, and
 * a URL that is not a postgres:// URL always throws (a typo must not turn into a skip).
 */
export function postgresTestEnv(env: NodeJS.ProcessEnv = process.env): PostgresTestEnv {
  const url = env.SLUICE_TEST_DATABASE_URL;
  if (!url) {
    if (env.CI === 'true') {
      throw new Error(
        `SLUICE_TEST_DATABASE_URL is not set and CI=true: PostgreSQL tests never skip in CI; ${ENABLE}`,
      );
    }
    const skipReason = `PostgreSQL tests skipped: SLUICE_TEST_DATABASE_URL is not set; ${ENABLE}`;
    console.warn(skipReason);
    return { url: undefined, skipReason };
  }
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new Error(`SLUICE_TEST_DATABASE_URL is not a URL: ${url}`);
  }
  if (parsed.protocol !== 'postgres:' && parsed.protocol !== 'postgresql:') {
    throw new Error(`SLUICE_TEST_DATABASE_URL must be a postgres:// URL, not ${url}`);
  }
  return { url };
}

export interface FreshDatabase {
  /** The server's URL with this database as its path. */
  url: string;
  name: string;
  /** Ends every connection to the database and drops it; a second call does nothing. */
  drop(): Promise<void>;
}

let counter = 0;

/**
 * A database name no other call, worker or run uses: pid and a per-process counter tell calls on
 * this machine apart, 64 random bits the rest. Lower case (no quoting surprises), ≤ 63 bytes.
 */
export function uniqueDatabaseName(): string {
  counter += 1;
  return `sluice_test_${process.pid}_${counter}_${randomBytes(8).toString('hex')}`;
}

function quoteIdent(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}

async function withAdmin<T>(url: string, fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

const DUPLICATE_DATABASE = '42P04';

/**
 * Creates an empty database (from template0: nothing anyone added to template1 comes along) on the
 * server at `url` (SLUICE_TEST_DATABASE_URL by default) and resolves with its URL and `drop()`.
 * CREATE DATABASE is atomic, so a name taken in the meantime fails and another is tried: two calls
 * never share a database. `nextName` exists for the helper's own test.
 */
export async function freshDatabase(
  options: { url?: string; nextName?: () => string } = {},
): Promise<FreshDatabase> {
  const serverUrl = options.url ?? process.env.SLUICE_TEST_DATABASE_URL;
  if (!serverUrl) throw new Error('freshDatabase: SLUICE_TEST_DATABASE_URL is not set');
  const nextName = options.nextName ?? uniqueDatabaseName;
  const name = await withAdmin(serverUrl, async (client) => {
    for (let attempt = 1; ; attempt++) {
      const candidate = nextName();
      try {
        await client.query(
          `CREATE DATABASE ${quoteIdent(candidate)} TEMPLATE template0 ENCODING 'UTF8'`,
        );
        return candidate;
      } catch (e) {
        if ((e as { code?: string }).code !== DUPLICATE_DATABASE || attempt >= 5) throw e;
      }
    }
  });
  const url = new URL(serverUrl);
  url.pathname = `/${encodeURIComponent(name)}`;
  return {
    url: url.toString(),
    name,
    // WITH (FORCE) (PostgreSQL 13+) terminates the database's sessions, then drops it, atomically
    drop: () =>
      withAdmin(serverUrl, async (client) => {
        await client.query(`DROP DATABASE IF EXISTS ${quoteIdent(name)} WITH (FORCE)`);
      }),
  };
}
