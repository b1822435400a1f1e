// The backup and restore of docs/OPERATIONS.md, done as written there: the embedded default's
// data directory copied while the server is stopped, and PostgreSQL through pg_dump/pg_restore.
import { execFileSync } from 'node:child_process';
import { cp } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  addUser,
  call,
  login,
  ON_POSTGRES,
  removeDir,
  s3TestEnv,
  startServer,
  tempDir,
  uniqueBucket,
} from '../test-helpers.js';
import { freshDatabase, postgresTestEnv } from '../test-postgres.js';

const cleanup: (() => Promise<void>)[] = [];
afterAll(async () => {
  for (const step of cleanup.reverse()) await step();
});

/** What must survive a restore: an account, its login, its refresh token and its binding. */
async function seed(url: string, running: Parameters<typeof addUser>[0]) {
  const user = await addUser(running, 'kept@example.test', 'Operator');
  await running.server.store.users.bindIfUnbound(user.id, 'h'.repeat(64), new Date().toISOString());
  return login(url, 'kept@example.test');
}

async function expectRestored(url: string, refreshToken: string) {
  const again = await login(url, 'kept@example.test');
  const me = await call(url, 'GET', '/me', { token: again.accessToken });
  expect(me.body).toMatchObject({ user: { email: 'kept@example.test', deviceBound: true } });
  const refreshed = await call(url, 'POST', '/token/refresh', { json: { refreshToken } });
  expect(refreshed.status).toBe(200);
}

describe.skipIf(ON_POSTGRES)('backup and restore of the embedded default', () => {
  it('a copy of the stopped data directory serves the same accounts and logins', async () => {
    const dataDir = await tempDir();
    const restored = join(await tempDir(), 'restored');
    cleanup.push(() => removeDir(dataDir));
    cleanup.push(() => removeDir(restored));
    const s = await startServer({ dataDir });
    const session = await seed(s.url, s);
    await s.close();
    await cp(dataDir, restored, { recursive: true });
    await removeDir(dataDir);
    const back = await startServer({ dataDir: restored });
    cleanup.push(() => back.close());
    await expectRestored(back.url, session.refreshToken);
  });
});

const pg = postgresTestEnv();
const s3 = s3TestEnv();

/** pg_dump / pg_restore of the installed PostgreSQL (off PATH on Debian). */
async function pgTool(name: string): Promise<string> {
  const { postgresBinDir } = (await import('../../../../scripts/postgres/postgres.mjs')) as {
    postgresBinDir(): string | null;
  };
  const dir = postgresBinDir();
  if (dir === null) throw new Error('PostgreSQL is not installed');
  return join(dir, name);
}

describe.skipIf(pg.url === undefined || s3 === undefined)(
  'backup and restore on PostgreSQL',
  () => {
    it('pg_dump, then pg_restore into a new database: an instance over it serves the same accounts', async () => {
      const env = s3 ?? (undefined as never);
      const storage = {
        kind: 's3' as const,
        endpoint: env.endpoint,
        region: env.region,
        bucket: uniqueBucket('backup'),
        credentials: { accessKeyId: env.accessKeyId, secretAccessKey: env.secretAccessKey },
      };
      const [source, target] = [await freshDatabase(), await freshDatabase()];
      const dataDir = await tempDir();
      cleanup.push(async () => {
        await source.drop();
        await target.drop();
        await removeDir(dataDir);
      });
      const s = await startServer({ dataDir, databaseUrl: source.url, storage });
      const session = await seed(s.url, s);
      const dump = join(dataDir, 'sluice.dump');
      execFileSync(await pgTool('pg_dump'), ['-Fc', '-f', dump, '-d', source.url]);
      await s.close();
      execFileSync(await pgTool('pg_restore'), ['--no-owner', '-d', target.url, dump]);
      const back = await startServer({ dataDir, databaseUrl: target.url, storage });
      cleanup.push(() => back.close());
      await expectRestored(back.url, session.refreshToken);
    });
  },
);
