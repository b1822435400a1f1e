import { copyFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { SIGNING_KEY_FILE } from '../auth/keys.js';
import { MASTER_KEY_FILE } from '../stores/masterKey.js';
import { removeDir, s3TestEnv, startServer, tempDir, uniqueBucket } from '../test-helpers.js';
import { freshDatabase, postgresTestEnv } from '../test-postgres.js';

const pg = postgresTestEnv();
const s3 = s3TestEnv();
const cleanup: (() => Promise<void>)[] = [];
afterAll(async () => {
  for (const step of cleanup.reverse()) await step();
});

describe.skipIf(pg.url === undefined || s3 === undefined)('instances over one database', () => {
  it("start with the first instance's key files, and refuse other keys, naming the file", async () => {
    const db = await freshDatabase();
    cleanup.push(() => db.drop());
    const env = s3 ?? (undefined as never);
    const storage = {
      kind: 's3' as const,
      endpoint: env.endpoint,
      region: env.region,
      bucket: uniqueBucket('keys'),
      credentials: { accessKeyId: env.accessKeyId, secretAccessKey: env.secretAccessKey },
    };
    const dirs = await Promise.all([tempDir(), tempDir(), tempDir()]);
    cleanup.push(async () => {
      for (const d of dirs) await removeDir(d);
    });
    const [first, copied, own] = dirs as [string, string, string];
    const a = await startServer({ dataDir: first, databaseUrl: db.url, storage });
    cleanup.push(() => a.close());
    for (const f of [MASTER_KEY_FILE, SIGNING_KEY_FILE])
      await copyFile(join(first, f), join(copied, f));
    const b = await startServer({ dataDir: copied, databaseUrl: db.url, storage });
    await b.close();
    // Its own, new keys: a token of A would be refused on it, A's data keys not unwrapped.
    await copyFile(join(first, SIGNING_KEY_FILE), join(own, SIGNING_KEY_FILE));
    await expect(startServer({ dataDir: own, databaseUrl: db.url, storage })).rejects.toThrow(
      /master\.key is not the one the other instances over this database use/,
    );
  });
});
