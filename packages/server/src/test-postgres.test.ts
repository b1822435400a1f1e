import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { postgresBinDir, startPostgres } from '../../../scripts/postgres/postgres.mjs';
import { freshDatabase, postgresTestEnv, uniqueDatabaseName } from './test-postgres.js';

const env = postgresTestEnv();
const cleanup: (() => Promise<void>)[] = [];
afterAll(async () => {
  for (const step of cleanup.splice(0).reverse()) await step();
});

async function query<R extends pg.QueryResultRow>(
  url: string,
  sql: string,
  values: unknown[] = [],
) {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query<R>(sql, values)).rows;
  } finally {
    await client.end();
  }
}

async function databaseExists(name: string): Promise<boolean> {
  if (!env.url) throw new Error('no server');
  const rows = await query(env.url, 'SELECT 1 FROM pg_database WHERE datname = $1', [name]);
  return rows.length === 1;
}

/** Relations anyone made in the database: none in an empty one. */
async function userRelations(url: string): Promise<string[]> {
  const rows = await query<{ relname: string }>(
    url,
    `SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast')`,
  );
  return rows.map((r) => r.relname);
}

describe('postgresTestEnv', () => {
  it('without a URL: skips with one line that says how to get a server', () => {
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => {});
    try {
      const r = postgresTestEnv({});
      expect(r.url).toBeUndefined();
      const reason = 'skipReason' in r ? r.skipReason : '';
      expect(reason).toMatch(/SLUICE_TEST_DATABASE_URL is not set/);
      expect(reason).toContain('scripts/postgres/postgres.mjs start');
      expect(warn).toHaveBeenCalledTimes(1);
      expect(warn).toHaveBeenCalledWith(reason);
    } finally {
      warn.mockRestore();
    }
  });

  it('without a URL and CI=true: throws, never skips', () => {
    expect(() => postgresTestEnv({ CI: 'true' })).toThrow(/never skip in CI/);
  });

  it('hands out a postgres:// URL and refuses anything else', () => {
    const url = 'postgres://sluice@127.0.0.1:5432/postgres';
    expect(postgresTestEnv({ SLUICE_TEST_DATABASE_URL: url, CI: 'true' })).toEqual({ url });
    expect(() => postgresTestEnv({ SLUICE_TEST_DATABASE_URL: 'localhost:5432' })).toThrow(
      /postgres:\/\/ URL/,
    );
    expect(() => postgresTestEnv({ SLUICE_TEST_DATABASE_URL: 'not a url' })).toThrow(/not a URL/);
  });

  it('database names are distinct valid identifiers', () => {
    const names = Array.from({ length: 1000 }, uniqueDatabaseName);
    expect(new Set(names).size).toBe(1000);
    for (const n of names) expect(n).toMatch(/^[a-z_][a-z0-9_]{0,62}$/);
  });
});

describe.skipIf(!env.url)('freshDatabase', () => {
  it('two fresh databases are distinct and empty', async () => {
    const a = await freshDatabase();
    cleanup.push(a.drop);
    const b = await freshDatabase();
    cleanup.push(b.drop);
    expect(a.name).not.toBe(b.name);
    expect(await query(a.url, 'SELECT current_database() AS db')).toEqual([{ db: a.name }]);
    expect(await query(b.url, 'SELECT current_database() AS db')).toEqual([{ db: b.name }]);
    expect(await userRelations(a.url)).toEqual([]);
    await query(a.url, 'CREATE TABLE only_in_a (id int)');
    expect(await userRelations(a.url)).toEqual(['only_in_a']);
    expect(await userRelations(b.url)).toEqual([]);
  });

  it('concurrent calls each get their own database', async () => {
    const dbs = await Promise.all(Array.from({ length: 8 }, () => freshDatabase()));
    cleanup.push(...dbs.map((d) => d.drop));
    expect(new Set(dbs.map((d) => d.name)).size).toBe(8);
    for (const d of dbs) expect(await databaseExists(d.name)).toBe(true);
  });

  it('a name taken meanwhile is skipped, not shared', async () => {
    const taken = await freshDatabase();
    cleanup.push(taken.drop);
    const names = [taken.name, uniqueDatabaseName()];
    const next = await freshDatabase({ nextName: () => names.shift() ?? uniqueDatabaseName() });
    cleanup.push(next.drop);
    expect(next.name).not.toBe(taken.name);
    expect(names).toEqual([]);
  });

  it('drop ends open sessions and removes the database', async () => {
    const db = await freshDatabase();
    cleanup.push(db.drop);
    const client = new pg.Client({ connectionString: db.url });
    await client.connect();
    const ended = new Promise<unknown>((resolve) => client.on('error', resolve));
    await db.drop();
    expect(await databaseExists(db.name)).toBe(false);
    expect(await ended).toMatchObject({ code: '57P01' }); // terminated by administrator command
    await client.end().catch(() => {});
    await expect(query(db.url, 'SELECT 1')).rejects.toMatchObject({ code: '3D000' });
    await db.drop(); // a second drop is harmless
  });
});

// The script itself, where the suite has a server and this machine has the binaries.
const script = new URL('../../../scripts/postgres/postgres.mjs', import.meta.url).pathname;
const run = promisify(execFile);

/** Gone or a zombie: a SIGKILL is delivered, not yet acted on, when process.kill returns. */
async function waitUntilDead(pid: number): Promise<void> {
  for (;;) {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => 'gone');
    if (stat === 'gone' || / Z /.test(stat)) return;
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe.skipIf(!env.url || postgresBinDir() === null)('scripts/postgres/postgres.mjs', () => {
  async function tempDir(): Promise<string> {
    const dir = await mkdtemp(join(tmpdir(), 'sluice-pg-own-'));
    cleanup.push(() => rm(dir, { recursive: true, force: true }));
    return dir;
  }

  it('`start --json` serves SQL with fsync off, repeats, and `stop` leaves nothing', async () => {
    const dir = await tempDir();
    const { stdout } = await run(process.execPath, [script, 'start', '--dir', dir, '--json']);
    const started = JSON.parse(stdout) as { SLUICE_TEST_DATABASE_URL: string; pid: number };
    cleanup.push(() => run(process.execPath, [script, 'stop', '--dir', dir]).then(() => {}));
    const url = started.SLUICE_TEST_DATABASE_URL;
    expect(url).toMatch(/^postgres:\/\/sluice@127\.0\.0\.1:\d+\/postgres$/);
    expect(await query(url, 'SHOW fsync')).toEqual([{ fsync: 'off' }]);
    const port = new URL(url).port;
    expect(await readdir(dir)).toContain(`.s.PGSQL.${port}`);
    const again = await run(process.execPath, [script, 'start', '--dir', dir, '--json']);
    expect(JSON.parse(again.stdout)).toEqual(started);
    await run(process.execPath, [script, 'stop', '--dir', dir]);
    expect(existsSync(dir)).toBe(false);
    const stat = await readFile(`/proc/${started.pid}/stat`, 'utf8').catch(() => 'gone');
    expect(stat === 'gone' || / Z /.test(stat)).toBe(true);
    await expect(query(url, 'SELECT 1')).rejects.toMatchObject({ code: 'ECONNREFUSED' });
  });

  it('starts over the remains of a crashed cluster', async () => {
    const dir = await tempDir();
    const first = await startPostgres({ dir });
    cleanup.push(() => first.stop());
    process.kill(first.pid, 'SIGKILL');
    await waitUntilDead(first.pid);
    const second = await startPostgres({ dir });
    expect(second.pid).not.toBe(first.pid);
    expect(await query(second.url, 'SELECT 1 AS one')).toEqual([{ one: 1 }]);
    await second.stop();
    expect(existsSync(dir)).toBe(false);
  });

  it('refuses a directory that is not one of its clusters, and keeps it', async () => {
    const dir = await tempDir();
    await writeFile(join(dir, 'keep.txt'), 'mine');
    await expect(startPostgres({ dir })).rejects.toThrow(/not empty/);
    await expect(run(process.execPath, [script, 'stop', '--dir', dir])).rejects.toThrow(
      /holds no sluice PostgreSQL cluster/,
    );
    expect(await readFile(join(dir, 'keep.txt'), 'utf8')).toBe('mine');
  });
});
