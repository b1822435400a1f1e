import { spawnSync } from 'node:child_process';
import { readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { SluiceError } from '@sluice/protocol';
import { afterEach, describe, expect, it } from 'vitest';
import { removeDir, TEST_SCRYPT, tempDir } from '../test-helpers.js';
import { createUser } from '../users/service.js';
import { LOCK_FILE } from './dataDirLock.js';
import { METADATA_FILE, MetadataStore } from './metadataStore.js';

const dirs: string[] = [];
async function newDir(): Promise<string> {
  const d = await tempDir();
  dirs.push(d);
  return join(d, 'data');
}
const cleanupStores: MetadataStore[] = [];
afterEach(async () => {
  await Promise.all(cleanupStores.splice(0).map((s) => s.close()));
  await Promise.all(dirs.splice(0).map(removeDir));
});

describe('MetadataStore', () => {
  it('creates the data directory 0700 and the metadata file 0600', async () => {
    const dir = await newDir();
    const store = await MetadataStore.open(dir);
    cleanupStores.push(store);
    expect((await stat(dir)).mode & 0o777).toBe(0o700);
    expect((await stat(join(dir, METADATA_FILE))).mode & 0o777).toBe(0o600);
    const saved = JSON.parse(await readFile(join(dir, METADATA_FILE), 'utf8'));
    expect(saved).toEqual({ version: 1, users: {}, refreshFamilies: {}, resources: {} });
  });

  it('persists every one of 50 concurrent creates and leaves no temp file', async () => {
    const dir = await newDir();
    const store = await MetadataStore.open(dir);
    const emails = Array.from({ length: 50 }, (_, i) => `user${i}@example.test`);
    await Promise.all(
      emails.map((email) =>
        createUser(
          store,
          { email, password: 'a long enough password', role: 'Operator' },
          { scrypt: TEST_SCRYPT },
        ),
      ),
    );
    await store.close();
    expect(await readdir(dir)).toEqual([METADATA_FILE]);
    const reopened = await MetadataStore.open(dir);
    expect(
      reopened
        .listUsers()
        .map((u) => u.email)
        .sort(),
    ).toEqual([...emails].sort());
  });

  it('serialises read-modify-write mutations so no update is lost', async () => {
    const dir = await newDir();
    const store = await MetadataStore.open(dir);
    await store.mutate((d) => {
      d.refreshFamilies.counter = {
        id: 'counter',
        userId: 'u',
        currentHash: '0',
        previousHashes: [],
        createdAt: '',
        rotatedAt: '',
        expiresAt: '9999-01-01T00:00:00.000Z',
        revokedAt: null,
        revokedReason: null,
      };
    });
    await Promise.all(
      Array.from({ length: 40 }, () =>
        store.mutate(async (d) => {
          const f = d.refreshFamilies.counter;
          if (f === undefined) throw new Error('missing');
          const n = Number(f.currentHash);
          await new Promise((r) => setTimeout(r, 1));
          f.currentHash = String(n + 1);
        }),
      ),
    );
    await store.close();
    const reopened = await MetadataStore.open(dir);
    expect(reopened.getRefreshFamily('counter')?.currentHash).toBe('40');
  });

  it('a mutation that throws changes neither memory nor disk, and later ones still run', async () => {
    const dir = await newDir();
    const store = await MetadataStore.open(dir);
    const before = await readFile(join(dir, METADATA_FILE), 'utf8');
    await expect(
      store.mutate((d) => {
        d.users.x = {} as never;
        throw new SluiceError('ERR_CONFLICT', 'no');
      }),
    ).rejects.toThrow('no');
    expect(store.getUser('x')).toBeUndefined();
    expect(await readFile(join(dir, METADATA_FILE), 'utf8')).toBe(before);
    await createUser(
      store,
      { email: 'after@example.test', password: 'a long enough password', role: 'Validator' },
      { scrypt: TEST_SCRYPT },
    );
    expect(store.findUserByEmail('AFTER@example.test ')?.role).toBe('Validator');
  });

  it('removes temp files a crash left behind and keeps the committed content', async () => {
    const dir = await newDir();
    const store = await MetadataStore.open(dir);
    await createUser(
      store,
      { email: 'kept@example.test', password: 'a long enough password', role: 'Admin' },
      { scrypt: TEST_SCRYPT },
    );
    await store.close();
    await writeFile(join(dir, `.${METADATA_FILE}.deadbeef.tmp`), '{"half":');
    const reopened = await MetadataStore.open(dir);
    expect(reopened.findUserByEmail('kept@example.test')?.role).toBe('Admin');
    expect((await readdir(dir)).sort()).toEqual([METADATA_FILE, LOCK_FILE].sort());
  });

  it('refuses to start over a corrupt metadata file instead of silently emptying it', async () => {
    const dir = await newDir();
    await (await MetadataStore.open(dir)).close();
    await writeFile(join(dir, METADATA_FILE), '{"version": 1, "users": ');
    await expect(MetadataStore.open(dir)).rejects.toThrow(/not valid JSON/);
    await writeFile(join(dir, METADATA_FILE), '{"version": 2}');
    await expect(MetadataStore.open(dir)).rejects.toThrow(/not a version 1/);
  });

  it('reads users without a cut-off, and refuses one whose tokensValidAfter does not parse', async () => {
    const dir = await newDir();
    const store = await MetadataStore.open(dir);
    const user = await createUser(
      store,
      { email: 'old@example.test', password: 'correct horse battery', role: 'Operator' },
      { scrypt: TEST_SCRYPT },
    );
    await store.close();
    const saved = JSON.parse(await readFile(join(dir, METADATA_FILE), 'utf8'));
    expect(saved.users[user.id].tokensValidAfter).toBeUndefined();
    const reopened = await MetadataStore.open(dir);
    expect(reopened.getUser(user.id)?.tokensValidAfter).toBeUndefined();
    await reopened.close();
    saved.users[user.id].tokensValidAfter = 'yesterday';
    await writeFile(join(dir, METADATA_FILE), JSON.stringify(saved));
    await expect(MetadataStore.open(dir)).rejects.toThrow(/malformed tokensValidAfter/);
  });

  it('holds the data directory: a second open fails until the first store closes', async () => {
    const dir = await newDir();
    const first = await MetadataStore.open(dir);
    await expect(MetadataStore.open(dir)).rejects.toThrow(/in use by process/);
    await first.close();
    await expect(first.mutate(() => {})).rejects.toThrow(/closed/);
    const second = await MetadataStore.open(dir);
    cleanupStores.push(second);
    expect(JSON.parse(await readFile(join(dir, LOCK_FILE), 'utf8')).pid).toBe(process.pid);
  });

  it('takes over a lock left by a process that has exited', async () => {
    const dir = await newDir();
    await (await MetadataStore.open(dir)).close();
    const gone = spawnSync(process.execPath, ['-e', '']).pid;
    await writeFile(
      join(dir, LOCK_FILE),
      JSON.stringify({ pid: gone, hostname: hostname(), startedAt: new Date(0).toISOString() }),
    );
    const store = await MetadataStore.open(dir);
    cleanupStores.push(store);
    expect(JSON.parse(await readFile(join(dir, LOCK_FILE), 'utf8')).pid).toBe(process.pid);
  });
});
