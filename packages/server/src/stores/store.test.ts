import { readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { removeDir, tempDir } from '../test-helpers.js';
import { freshDatabase, postgresTestEnv } from '../test-postgres.js';
import { BACKUP_SUFFIX, LEGACY_METADATA_FILE, LEGACY_PARCELS_FILE } from './legacyImport.js';
import type { UserRecord } from './records.js';
import { SqlUniqueViolation } from './sql/database.js';
import { MIGRATIONS, SCHEMA_VERSION } from './sql/migrations.js';
import { DATABASE_FILE, Store } from './store.js';

const cleanup: (() => Promise<void>)[] = [];
afterAll(async () => {
  for (const step of cleanup.reverse()) await step();
});

function user(n: number, over: Partial<UserRecord> = {}): UserRecord {
  const at = new Date(Date.UTC(2026, 0, 1, 0, 0, n)).toISOString();
  return {
    id: `user-${String(n).padStart(4, '0')}`,
    email: `u${n}@example.test`,
    role: 'Operator',
    disabled: false,
    passwordHash: `scrypt$12$8$1$salt${n}$hash${n}`,
    boundHardwareHash: null,
    orgId: 'default',
    createdAt: at,
    updatedAt: at,
    ...over,
  };
}

const pg = postgresTestEnv();

/** One store per backend: the embedded default in a temp dir, and a fresh PostgreSQL database. */
const backends: { name: string; open: () => Promise<Store>; skip: boolean }[] = [
  {
    name: 'embedded (SQLite)',
    skip: false,
    open: async () => {
      const dataDir = await tempDir();
      const store = await Store.open({ dataDir });
      cleanup.push(async () => {
        await store.close();
        await removeDir(dataDir);
      });
      return store;
    },
  },
  {
    name: 'PostgreSQL',
    skip: pg.url === undefined,
    open: async () => {
      const db = await freshDatabase();
      const dataDir = await tempDir();
      const store = await Store.open({ dataDir, databaseUrl: db.url });
      cleanup.push(async () => {
        await store.close();
        await db.drop();
        await removeDir(dataDir);
      });
      return store;
    },
  },
];

describe.each(backends)('the store on $name', ({ open, skip }) => {
  it.skipIf(skip)('applies the schema once and reports its version', async () => {
    const store = await open();
    expect(await store.schemaVersion()).toBe(SCHEMA_VERSION);
    // Versions only grow; a gap is allowed (branches take numbers ahead of merging).
    const versions = MIGRATIONS.map((m) => m.version);
    expect(versions).toEqual([...versions].sort((a, b) => a - b));
    expect(new Set(versions).size).toBe(versions.length);
    expect(SCHEMA_VERSION).toBe(versions.at(-1));
  });

  it.skipIf(skip)(
    'keeps users: unique emails, lookups, updates, creation-order pages',
    async () => {
      const store = await open();
      for (let n = 1; n <= 25; n++) await store.users.insert(user(n));
      await expect(
        store.users.insert(user(26, { email: 'u3@example.test' })),
      ).rejects.toBeInstanceOf(SqlUniqueViolation);
      expect(await store.users.byEmail('  U7@Example.TEST ')).toEqual(user(7));
      const changed = {
        ...user(7),
        role: 'Admin' as const,
        tokensValidAfter: '2026-02-01T00:00:00.000Z',
        boundHardwareHash: 'e'.repeat(64),
        boundAt: '2026-02-02T00:00:00.000Z',
      };
      await store.users.update(changed);
      expect(await store.users.get(changed.id)).toEqual(changed);
      const seen: string[] = [];
      let cursor: string | undefined;
      do {
        const page = await store.users.page(10, cursor);
        expect(page.users.length).toBeLessThanOrEqual(10);
        seen.push(...page.users.map((u) => u.id));
        cursor = page.next;
      } while (cursor !== undefined);
      expect(seen).toEqual(Array.from({ length: 25 }, (_, i) => user(i + 1).id));
      await expect(store.users.page(10, 'not a cursor')).rejects.toBeInstanceOf(RangeError);
    },
  );

  it.skipIf(skip)('a transaction that throws leaves nothing behind', async () => {
    const store = await open();
    await expect(
      store.transaction(async (t) => {
        await t.users.insert(user(1));
        throw new Error('refused half way');
      }),
    ).rejects.toThrow('refused half way');
    expect(await store.users.count()).toBe(0);
  });

  it.skipIf(skip)('of concurrent first binds of one account exactly one wins', async () => {
    const store = await open();
    await store.users.insert(user(1));
    const now = new Date().toISOString();
    const won = await Promise.all(
      ['a', 'b', 'c', 'd'].map((h) => store.users.bindIfUnbound(user(1).id, h.repeat(64), now)),
    );
    expect(won.filter(Boolean)).toHaveLength(1);
    expect((await store.users.get(user(1).id))?.boundAt).toBe(now);
  });

  it.skipIf(skip)('read-then-write transactions racing each other lose no update', async () => {
    const store = await open();
    await store.users.insert(user(1));
    // Twenty increments of a counter kept in the hash, each read and written in a transaction.
    await Promise.all(
      Array.from({ length: 20 }, () =>
        store.transaction(async (t) => {
          const u = await t.users.get(user(1).id);
          if (u === undefined) throw new Error('gone');
          const n = Number(u.passwordHash.split('#')[1] ?? 0);
          await t.users.update({ ...u, passwordHash: `${u.passwordHash.split('#')[0]}#${n + 1}` });
        }),
      ),
    );
    expect((await store.users.get(user(1).id))?.passwordHash.endsWith('#20')).toBe(true);
  });

  it.skipIf(skip)(
    'uses a parcel token once, whoever asks first, and forgets expired ones',
    async () => {
      const store = await open();
      const tries = await Promise.all(
        Array.from({ length: 8 }, () => store.parcels.consumeToken('jti-1', 1000)),
      );
      expect(tries.filter(Boolean)).toHaveLength(1);
      await store.parcels.consumeToken('jti-2', 5000);
      // Epoch seconds as Date.now() / 1000 gives them: with a fraction.
      expect(await store.parcels.forgetTokens(2000.606)).toBe(1);
      expect(await store.parcels.tokenUsed('jti-1')).toBe(false);
      expect(await store.parcels.tokenUsed('jti-2')).toBe(true);
    },
  );

  it.skipIf(skip)(
    'numbers versions per resource and deletes a resource with its versions',
    async () => {
      const store = await open();
      const manifest = { version: 1, chunks: [] } as never;
      const id = await store.resources.ensure('models', 'a.bin', 'res-1');
      expect(await store.resources.ensure('models', 'a.bin', 'res-other')).toBe(id);
      for (const version of [1, 2]) {
        await store.resources.addVersion(id, {
          version,
          manifest,
          smallBlobId: `small-${version}`,
          bigBlobId: version === 1 ? `big-${version}` : null,
          cdnKey: version === 2 ? 'cdn/key' : null,
          wrappedDataKey: 'wrapped',
          createdAt: new Date().toISOString(),
          uploadedBy: 'user-1',
        });
      }
      expect(await store.resources.latestVersion(id)).toBe(2);
      const [listed] = await store.resources.listLatest('models');
      expect(listed?.count).toBe(2);
      expect(listed?.resource.versions.map((v) => v.version)).toEqual([2]);
      expect([...(await store.resources.referencedBlobIds())].sort()).toEqual([
        'big-1',
        'small-1',
        'small-2',
      ]);
      expect(await store.resources.cdnKeyClaimedElsewhere('cdn/key', 'models', 'a.bin')).toBe(
        false,
      );
      expect(await store.resources.cdnKeyClaimedElsewhere('cdn/key', 'models', 'b.bin')).toBe(true);
      // The release pointer, and the highest number surviving the deletion of that version.
      expect((await store.resources.get('models', 'a.bin'))?.currentVersion).toBeNull();
      await store.resources.setCurrent(id, 1);
      await store.resources.removeVersion(id, 2);
      const after = await store.resources.get('models', 'a.bin');
      expect(after?.currentVersion).toBe(1);
      expect(after?.versions.map((v) => v.version)).toEqual([1]);
      expect(await store.resources.latestVersion(id)).toBe(2);
      expect((await store.resources.listLatest('models'))[0]).toMatchObject({ count: 1, top: 2 });
      await store.resources.remove(id);
      expect(await store.resources.get('models', 'a.bin')).toBeUndefined();
      expect(await store.resources.referencedBlobIds()).toEqual(new Set());
    },
  );
});

describe('the embedded store', () => {
  it('lives in one 0600 file of a 0700 data directory that one process holds', async () => {
    const dataDir = join(await tempDir(), 'fresh');
    cleanup.push(() => removeDir(dataDir));
    const store = await Store.open({ dataDir });
    await store.users.insert(user(1));
    expect((await stat(dataDir)).mode & 0o777).toBe(0o700);
    expect((await stat(join(dataDir, DATABASE_FILE))).mode & 0o777).toBe(0o600);
    await expect(Store.open({ dataDir })).rejects.toThrow(/in use by process/);
    await store.close();
    const again = await Store.open({ dataDir });
    expect(await again.users.get(user(1).id)).toEqual(user(1));
    await again.close();
  });

  it('imports an older metadata.json and parcels.json once and keeps them as backups', async () => {
    const dataDir = await tempDir();
    cleanup.push(() => removeDir(dataDir));
    const u = {
      ...user(1),
      publisherKeys: [{ publicKey: 'k'.repeat(44), addedAt: user(1).createdAt }],
    };
    const legacy = {
      version: 1,
      users: { [u.id]: u },
      refreshFamilies: {
        fam: {
          id: 'fam',
          userId: u.id,
          currentHash: 'c'.repeat(64),
          previousHashes: ['p'.repeat(32)],
          createdAt: u.createdAt,
          rotatedAt: u.createdAt,
          expiresAt: '2099-01-01T00:00:00.000Z',
          revokedAt: null,
          revokedReason: null,
        },
      },
      resources: {
        'models/a.bin': {
          id: 'res-1',
          folder: 'models',
          name: 'a.bin',
          versions: [
            {
              version: 1,
              manifest: { version: 1 },
              smallBlobId: 's1',
              bigBlobId: 'b1',
              cdnKey: null,
              wrappedDataKey: 'w',
              createdAt: u.createdAt,
              uploadedBy: u.id,
            },
          ],
        },
      },
      usedParcelTokens: { 'jti-9': 4_000_000_000 },
    };
    const parcel = {
      id: 'ab'.repeat(32),
      owner: 'cd'.repeat(20),
      sha256: 'ef'.repeat(32),
      size: 5,
      blobId: 'pb',
      createdAt: u.createdAt,
      removedAt: null,
    };
    await writeFile(join(dataDir, LEGACY_METADATA_FILE), JSON.stringify(legacy));
    await writeFile(
      join(dataDir, LEGACY_PARCELS_FILE),
      JSON.stringify({ version: 1, parcels: { [parcel.id]: parcel } }),
    );
    const store = await Store.open({ dataDir });
    const { publisherKeys: _k, ...plain } = u;
    expect(await store.users.get(u.id)).toEqual(plain);
    expect(await store.users.publisherKeys(u.id)).toEqual(u.publisherKeys);
    expect(await store.families.get('fam')).toEqual(legacy.refreshFamilies.fam);
    // Records from before the release pointer: none set, the latest is released.
    expect(await store.resources.get('models', 'a.bin')).toEqual({
      ...legacy.resources['models/a.bin'],
      currentVersion: null,
    });
    expect(await store.parcels.tokenUsed('jti-9')).toBe(true);
    expect(await store.parcels.get(parcel.id)).toEqual(parcel);
    await store.close();
    const files = await readdir(dataDir);
    expect(files).toContain(`${LEGACY_METADATA_FILE}${BACKUP_SUFFIX}`);
    expect(files).toContain(`${LEGACY_PARCELS_FILE}${BACKUP_SUFFIX}`);
    expect(files).not.toContain(LEGACY_METADATA_FILE);
    const backup = await readFile(join(dataDir, `${LEGACY_METADATA_FILE}${BACKUP_SUFFIX}`), 'utf8');
    expect(JSON.parse(backup)).toEqual(legacy);
    // Reopened: nothing imported twice.
    const again = await Store.open({ dataDir });
    expect(await again.users.count()).toBe(1);
    await again.close();
  });

  it('refuses a metadata.json it cannot read, importing nothing', async () => {
    const dataDir = await tempDir();
    cleanup.push(() => removeDir(dataDir));
    await writeFile(join(dataDir, LEGACY_METADATA_FILE), '{"version": 1, "users": [');
    await expect(Store.open({ dataDir })).rejects.toThrow(/not valid JSON/);
    await writeFile(join(dataDir, LEGACY_METADATA_FILE), '{"version": 2, "users": {}}');
    await expect(Store.open({ dataDir })).rejects.toThrow(/not a version 1/);
    await writeFile(
      join(dataDir, LEGACY_METADATA_FILE),
      '{"version": 1, "users": {}, "refreshFamilies": {}}',
    );
    await writeFile(join(dataDir, LEGACY_PARCELS_FILE), '{"version": 1, "parcels": [');
    await expect(Store.open({ dataDir })).rejects.toThrow(/not valid JSON/);
    expect(await readdir(dataDir)).toContain(LEGACY_METADATA_FILE);
  });
});

describe.skipIf(pg.url === undefined)('the PostgreSQL store', () => {
  it('two instances migrating one database at once apply each migration once', async () => {
    const db = await freshDatabase();
    cleanup.push(() => db.drop());
    const dirs = [await tempDir(), await tempDir()];
    const stores = await Promise.all(
      dirs.map((dataDir) => Store.open({ dataDir, databaseUrl: db.url })),
    );
    for (const s of stores) expect(await s.schemaVersion()).toBe(SCHEMA_VERSION);
    const rows = await stores[0]?.db.query('SELECT version FROM schema_migrations');
    expect(rows).toHaveLength(MIGRATIONS.length);
    for (const s of stores) await s.close();
    for (const d of dirs) await removeDir(d);
  });

  it('a wrong database says where it could not connect, without the password', async () => {
    const dataDir = await tempDir();
    cleanup.push(() => removeDir(dataDir));
    const url = new URL(pg.url ?? '');
    url.password = 'sekrit-pw';
    url.port = '1';
    const e = await Store.open({ dataDir, databaseUrl: url.toString() }).catch((x: unknown) => x);
    expect(String((e as Error).message)).toMatch(
      /cannot reach PostgreSQL at postgres:\/\/127\.0\.0\.1:1\//,
    );
    expect(String((e as Error).message)).not.toContain('sekrit-pw');
  });
});

describe('pruning expired records', () => {
  it('drops expired logins, limiter entries and used token ids, and keeps live ones', async () => {
    const { pruneRecords } = await import('../app/createServer.js');
    const dataDir = await tempDir();
    const store = await Store.open({ dataDir });
    cleanup.push(async () => {
      await store.close();
      await removeDir(dataDir);
    });
    await store.users.insert(user(1));
    const family = (id: string, expiresAt: string) => ({
      id,
      userId: user(1).id,
      currentHash: 'c'.repeat(64),
      previousHashes: [],
      createdAt: user(1).createdAt,
      rotatedAt: user(1).createdAt,
      expiresAt,
      revokedAt: null,
      revokedReason: null,
    });
    await store.families.insert(family('old', '2026-01-02T00:00:00.000Z'));
    await store.families.insert(family('live', '2099-01-01T00:00:00.000Z'));
    const now = Date.parse('2026-06-01T00:00:00.000Z');
    await store.limiter.put('gone', '{}', now - 1);
    await store.limiter.put('kept', '{}', now + 1000);
    await store.parcels.consumeToken('jti-old', now / 1000 - 10);
    await store.parcels.consumeToken('jti-live', now / 1000 + 10);
    expect(await pruneRecords(store, now)).toBe(3);
    expect((await store.families.ofUser(user(1).id)).map((f) => f.id)).toEqual(['live']);
    expect([...(await store.limiter.load(['gone', 'kept'])).keys()]).toEqual(['kept']);
    expect(await store.parcels.tokenUsed('jti-live')).toBe(true);
  });
});

describe('migration 3 (drift-tolerant binding) on an existing embedded store', () => {
  it('keeps a binding made at schema 1: its hash, no factor digests', async () => {
    const dataDir = await tempDir();
    cleanup.push(() => removeDir(dataDir));
    const { SqliteDatabase } = await import('./sql/sqliteDatabase.js');
    const old = SqliteDatabase.open(join(dataDir, DATABASE_FILE));
    const first = MIGRATIONS[0];
    if (first === undefined) throw new Error('no migrations');
    await old.transaction(async (tx) => {
      await tx.query(
        'CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)',
      );
      for (const statement of first.statements) await tx.query(statement);
      await tx.query('INSERT INTO schema_migrations VALUES (1, $1, $2)', [first.name, 'then']);
      const u = user(1, { boundHardwareHash: 'ab'.repeat(32) });
      await tx.query(
        `INSERT INTO users (id, email, role, disabled, password_hash, bound_hardware_hash,
           tokens_valid_after, created_at, updated_at) VALUES ($1, $2, $3, 0, $4, $5, NULL, $6, $7)`,
        [u.id, u.email, u.role, u.passwordHash, u.boundHardwareHash, u.createdAt, u.updatedAt],
      );
    });
    await old.close();
    const store = await Store.open({ dataDir });
    cleanup.push(() => store.close());
    expect(await store.schemaVersion()).toBe(SCHEMA_VERSION);
    const kept = await store.users.get(user(1).id);
    expect(kept?.boundHardwareHash).toBe('ab'.repeat(32));
    expect(kept?.boundHardwareFactors).toBeUndefined();
    expect(kept?.deviceDriftedAt).toBeUndefined();
  });
});
