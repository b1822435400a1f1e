// `sluice serve` with PostgreSQL, as the built binary: the database URL's sources, the password
// kept out of the flag, --migrate-only, and the refusal to keep parts in one instance's directory.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SCHEMA_VERSION } from '@sluice/server';
import { afterAll, describe, expect, it } from 'vitest';
import { run } from './test-cli.js';

// The server package's test helper, outside this package's sources (loaded, not compiled here).
const helperPath = new URL('../../server/src/test-postgres.ts', import.meta.url).href;
const { freshDatabase, postgresTestEnv } = (await import(/* @vite-ignore */ helperPath)) as {
  freshDatabase(): Promise<{ url: string; drop(): Promise<void> }>;
  postgresTestEnv(): { url: string | undefined };
};

const dir = mkdtempSync(join(tmpdir(), 'sluice-cli-db-test-'));
const cleanup: (() => Promise<void>)[] = [];
afterAll(async () => {
  for (const step of cleanup.reverse()) await step();
  rmSync(dir, { recursive: true, force: true });
});

describe('sluice serve --database', () => {
  it('refuses a password in the flag, without printing it, and names where it belongs', async () => {
    const r = await run([
      'serve',
      '--data',
      join(dir, 'flag'),
      '--database',
      'postgres://sluice:pw-in-the-flag@127.0.0.1:1/sluice',
    ]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('SLUICE_DATABASE_URL');
    expect(r.stderr).not.toContain('pw-in-the-flag');
  });
});

const pg = postgresTestEnv();

describe.skipIf(pg.url === undefined)('sluice serve over PostgreSQL', () => {
  it('--migrate-only brings a new database to the current schema and exits 0, again a no-op', async () => {
    const db = await freshDatabase();
    cleanup.push(() => db.drop());
    const env = { SLUICE_DATABASE_URL: db.url };
    for (let i = 0; i < 2; i++) {
      const r = await run(['serve', '--data', join(dir, 'keys'), '--migrate-only'], { env });
      expect(r.code, r.stderr).toBe(0);
      expect(r.stderr).toContain(
        `schema at version ${SCHEMA_VERSION} (${SCHEMA_VERSION} is current)`,
      );
      expect(r.stderr).not.toContain(db.url.split('@')[0] ?? db.url);
    }
  });

  it('refuses to serve with a database but parts in the data directory, saying why', async () => {
    const db = await freshDatabase();
    cleanup.push(() => db.drop());
    const r = await run(['serve', '--data', join(dir, 'nos3'), '--port', '0'], {
      env: { SLUICE_DATABASE_URL: db.url },
    });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/a database needs S3 storage/);
  });
});
