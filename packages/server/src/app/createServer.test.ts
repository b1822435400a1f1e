import { readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { SIGNING_KEY_FILE } from '../auth/keys.js';
import { isApiError } from '../errors.js';
import { BLOBS_DIR } from '../stores/blobStore.js';
import { LOCK_FILE } from '../stores/dataDirLock.js';
import { MASTER_KEY_FILE } from '../stores/masterKey.js';
import { DATABASE_FILE, Store } from '../stores/store.js';
import {
  addUser,
  call,
  login,
  ON_POSTGRES,
  PASSWORD,
  type Running,
  removeDir,
  startServer,
  TEST_SCRYPT,
  tempDir,
} from '../test-helpers.js';
import { initAdmin } from '../users/initAdmin.js';

const cleanup: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const fn of cleanup.splice(0).reverse()) await fn();
});
async function start(options: Parameters<typeof startServer>[0] = {}): Promise<Running> {
  const s = await startServer(options);
  cleanup.push(async () => {
    await s.close();
    await removeDir(s.dataDir);
  });
  return s;
}

describe('login rate limit', () => {
  it('per account: after the allowed failures even the right password gets 429 with Retry-After', async () => {
    const s = await start({
      loginLimits: {
        perAccount: { limit: 3, windowSeconds: 60 },
        perAddress: { limit: 100, windowSeconds: 60 },
      },
    });
    await addUser(s, 'target@example.test', 'Operator');
    await addUser(s, 'bystander@example.test', 'Operator');
    for (let i = 0; i < 3; i++) {
      const r = await call(s.url, 'POST', '/login', {
        json: { email: 'target@example.test', password: `guess number ${i}` },
      });
      expect(r.status).toBe(401);
    }
    const limited = await call(s.url, 'POST', '/login', {
      json: { email: 'target@example.test', password: PASSWORD },
    });
    expect(limited.status).toBe(429);
    expect(limited.body).toMatchObject({ code: 'ERR_RATE_LIMITED' });
    const retry = Number(limited.headers.get('retry-after'));
    expect(retry).toBeGreaterThan(0);
    expect(retry).toBeLessThanOrEqual(60);
    // Another account from the same address is unaffected.
    expect((await login(s.url, 'bystander@example.test')).accessToken).toBeTruthy();
    // Unknown emails are limited the same way, so a 429 says nothing about existence.
    for (let i = 0; i < 3; i++) {
      await call(s.url, 'POST', '/login', {
        json: { email: 'ghost@example.test', password: `guess number ${i}` },
      });
    }
    const ghost = await call(s.url, 'POST', '/login', {
      json: { email: 'ghost@example.test', password: 'x' },
    });
    expect(ghost.status).toBe(429);
  });

  it('per address: failed attempts count, across accounts; successful logins take theirs back', async () => {
    const s = await start({
      loginLimits: {
        perAccount: { limit: 100, windowSeconds: 60 },
        perAddress: { limit: 4, windowSeconds: 60 },
      },
    });
    await addUser(s, 'a@example.test', 'Operator');
    for (let i = 0; i < 4; i++) {
      const r = await call(s.url, 'POST', '/login', {
        json: { email: i % 2 ? 'a@example.test' : `other${i}@example.test`, password: PASSWORD },
      });
      expect([200, 401]).toContain(r.status);
    }
    // Two of the four failed: devices behind one NAT logging in fine do not use the budget up.
    expect((await login(s.url, 'a@example.test')).accessToken).toBeTruthy();
    for (let i = 0; i < 2; i++) {
      const r = await call(s.url, 'POST', '/login', {
        json: { email: `more${i}@example.test`, password: PASSWORD },
      });
      expect(r.status).toBe(401);
    }
    const r = await call(s.url, 'POST', '/login', {
      json: { email: 'a@example.test', password: PASSWORD },
    });
    expect(r.status).toBe(429);
    expect(r.body).toMatchObject({ code: 'ERR_RATE_LIMITED' });
  });
});

describe('request bodies and errors', () => {
  it('a body over the limit gets 413 JSON', async () => {
    const s = await start({ bodyLimit: 1024 });
    const r = await call(s.url, 'POST', '/login', {
      json: { email: 'a@example.test', password: 'x'.repeat(2000) },
    });
    expect(r.status).toBe(413);
    expect(r.body).toEqual({ error: 'request body exceeds 1024 bytes', code: 'ERR_TOO_LARGE' });
  });

  it('the default limit is 64 KiB', async () => {
    const s = await start();
    const r = await call(s.url, 'POST', '/login', {
      json: { email: 'a@example.test', password: 'x'.repeat(70 * 1024) },
    });
    expect(r.status).toBe(413);
    expect(r.body).toMatchObject({ code: 'ERR_TOO_LARGE' });
  });

  it('malformed or empty JSON gets 400 JSON that does not echo the body', async () => {
    const s = await start();
    for (const body of ['{"email": "a@example.test", "password": "hunter2-secret', '', '[1,']) {
      const r = await call(s.url, 'POST', '/login', {
        body,
        headers: { 'content-type': 'application/json' },
      });
      expect(r.status).toBe(400);
      expect(r.body).toEqual({ error: 'request body is not valid JSON', code: 'ERR_BAD_REQUEST' });
    }
  });

  it('a non-JSON content type gets 415 JSON, an unknown route 404 JSON', async () => {
    const s = await start();
    const r = await call(s.url, 'POST', '/login', {
      body: 'email=a&password=b',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
    });
    expect(r.status).toBe(415);
    expect(r.body).toMatchObject({ code: 'ERR_UNSUPPORTED_MEDIA_TYPE' });
    const nf = await call(s.url, 'GET', '/nope?token=abc');
    expect(nf.status).toBe(404);
    expect(nf.body).toEqual({ error: 'no route GET /nope', code: 'ERR_NOT_FOUND' });
  });
});

describe('restart on the same data directory', () => {
  // Looks into the data directory's own files (blobs, database): the embedded backend's.
  it.skipIf(ON_POSTGRES)(
    'keeps users, keys and sessions: tokens issued before still verify',
    async () => {
      const dataDir = await tempDir();
      cleanup.push(() => removeDir(dataDir));
      const first = await startServer({ dataDir });
      await addUser(first, 'persist@example.test', 'Validator');
      const session = await login(first.url, 'persist@example.test');
      const kid = first.server.keys.kid;
      await first.close();

      const second = await startServer({ dataDir });
      cleanup.push(() => second.close());
      expect(second.server.keys.kid).toBe(kid);
      const me = await call(second.url, 'GET', '/me', { token: session.accessToken });
      expect(me.status).toBe(200);
      expect(me.body).toMatchObject({ user: { email: 'persist@example.test', role: 'Validator' } });
      const refreshed = await call(second.url, 'POST', '/token/refresh', {
        json: { refreshToken: session.refreshToken },
      });
      expect(refreshed.status).toBe(200);
      expect((await login(second.url, 'persist@example.test')).accessToken).toBeTruthy();
      // The database's -wal/-shm files come and go with its connection.
      const files = (await readdir(dataDir)).filter((n) => !n.startsWith(`${DATABASE_FILE}-`));
      expect(files.sort()).toEqual(
        [SIGNING_KEY_FILE, DATABASE_FILE, LOCK_FILE, MASTER_KEY_FILE, BLOBS_DIR].sort(),
      );
      expect((await stat(dataDir)).mode & 0o777).toBe(0o700);
    },
  );
});

describe('token lifetimes', () => {
  it('a refresh token dies with its family at refreshTokenTtlSeconds, however often refreshed', async () => {
    const s = await start({ refreshTokenTtlSeconds: 2, accessTokenTtlSeconds: 60 });
    await addUser(s, 'short@example.test', 'Operator');
    const session = await login(s.url, 'short@example.test');
    expect(session.expiresIn).toBe(60);
    const r = await call(s.url, 'POST', '/token/refresh', {
      json: { refreshToken: session.refreshToken },
    });
    expect(r.status).toBe(200);
    const next = r.body as { refreshToken: string; refreshExpiresAt: string };
    expect(next.refreshExpiresAt).toBe(session.refreshExpiresAt);
    await new Promise((resolve) => setTimeout(resolve, 2100));
    const late = await call(s.url, 'POST', '/token/refresh', {
      json: { refreshToken: next.refreshToken },
    });
    expect(late.status).toBe(401);
    expect(late.body).toEqual({ error: 'refresh token expired', code: 'ERR_UNAUTHORIZED' });
  });
});

describe('metadata written through the API', () => {
  // Looks into the data directory's own files (blobs, database): the embedded backend's.
  it.skipIf(ON_POSTGRES)('20 concurrent POST /users are all persisted, atomically', async () => {
    const dataDir = await tempDir();
    cleanup.push(() => removeDir(dataDir));
    const first = await startServer({ dataDir });
    await addUser(first, 'boss@example.test', 'Admin');
    const { accessToken } = await login(first.url, 'boss@example.test');
    const emails = Array.from({ length: 20 }, (_, i) => `device${i}@example.test`);
    const results = await Promise.all(
      emails.map((email) =>
        call(first.url, 'POST', '/users', {
          token: accessToken,
          json: { email, password: PASSWORD, role: 'Operator' },
        }),
      ),
    );
    expect(results.map((r) => r.status)).toEqual(emails.map(() => 201));
    await first.close();
    expect((await readdir(dataDir)).filter((n) => n.endsWith('.tmp'))).toEqual([]);
    const reopened = await Store.open({ dataDir });
    const stored = (await reopened.users.page(100)).users.map((u) => u.email);
    await reopened.close();
    expect(stored.sort()).toEqual(['boss@example.test', ...emails].sort());
    expect((await stat(join(dataDir, DATABASE_FILE))).mode & 0o777).toBe(0o600);
  });
});

describe('logs', () => {
  it('never contain passwords, tokens, hashes or key material', async () => {
    const lines: string[] = [];
    const s = await start({
      logger: { level: 'trace', stream: { write: (line: string) => lines.push(line) } },
    });
    const adminPassword = 'admin password that must not leak';
    const userPassword = 'user password that must not leak';
    await addUser(s, 'logadmin@example.test', 'Admin', adminPassword);
    const session = await login(s.url, 'logadmin@example.test', adminPassword);
    const created = await call(s.url, 'POST', '/users', {
      token: session.accessToken,
      json: { email: 'loguser@example.test', password: userPassword, role: 'Operator' },
    });
    expect(created.status).toBe(201);
    await call(s.url, 'POST', '/login', {
      json: { email: 'loguser@example.test', password: 'wrong password that must not leak' },
    });
    await call(s.url, 'POST', '/login', {
      body: `{"email":"loguser@example.test","password":"${userPassword}`,
      headers: { 'content-type': 'application/json' },
    });
    const refreshed = await call(s.url, 'POST', '/token/refresh', {
      json: { refreshToken: session.refreshToken },
    });
    const next = refreshed.body as { accessToken: string; refreshToken: string };
    await call(s.url, 'POST', '/token/refresh', { json: { refreshToken: session.refreshToken } });
    await call(s.url, 'GET', '/me', { token: next.accessToken });
    await call(s.url, 'POST', '/logout', { json: { refreshToken: next.refreshToken } });
    const log = lines.join('');
    // The test only means something if the events were logged at all.
    for (const event of ['login.ok', 'login.failed', 'token.refreshed', 'user.created', 'logout']) {
      expect(log).toContain(event);
    }
    const stored = (await s.server.store.users.page(100)).users;
    const families = (
      await Promise.all(stored.map((u) => s.server.store.families.ofUser(u.id)))
    ).flat();
    const keyFile = JSON.parse(await readFile(join(s.dataDir, SIGNING_KEY_FILE), 'utf8'));
    const secrets = [
      adminPassword,
      userPassword,
      'wrong password that must not leak',
      session.accessToken,
      session.accessToken.split('.')[2],
      session.refreshToken,
      next.accessToken,
      next.refreshToken,
      keyFile.privateJwk.d,
      ...stored.map((u) => u.passwordHash),
      ...families.map((f) => f.currentHash),
    ];
    for (const secret of secrets) {
      expect(typeof secret).toBe('string');
      expect(log).not.toContain(secret);
    }
    expect(log).not.toContain('scrypt$');
  });
});

describe('initAdmin', () => {
  // Looks into the data directory's own files (blobs, database): the embedded backend's.
  it.skipIf(ON_POSTGRES)(
    'creates the first ApiAdmin, who can log in; refuses a second one',
    async () => {
      const dataDir = await tempDir();
      cleanup.push(() => removeDir(dataDir));
      const admin = await initAdmin(dataDir, 'Root@Example.test', PASSWORD, {
        scrypt: TEST_SCRYPT,
      });
      expect(admin).toMatchObject({
        email: 'root@example.test',
        role: 'ApiAdmin',
        disabled: false,
      });
      expect(admin).not.toHaveProperty('passwordHash');
      const again = await initAdmin(dataDir, 'other@example.test', PASSWORD, {
        scrypt: TEST_SCRYPT,
      }).catch((e: unknown) => e);
      expect(isApiError(again, 'ERR_CONFLICT')).toBe(true);

      const s = await startServer({ dataDir });
      cleanup.push(() => s.close());
      const { accessToken } = await login(s.url, 'root@example.test');
      const users = await call(s.url, 'GET', '/users', { token: accessToken });
      expect((users.body as { users: unknown[] }).users).toHaveLength(1);
    },
  );

  // Looks into the data directory's own files (blobs, database): the embedded backend's.
  it.skipIf(ON_POSTGRES)(
    'refuses while a server holds the data directory, and a second server cannot start',
    async () => {
      const s = await start();
      await expect(initAdmin(s.dataDir, 'late@example.test', PASSWORD)).rejects.toThrow(
        /in use by process/,
      );
      await expect(startServer({ dataDir: s.dataDir })).rejects.toThrow(/in use by process/);
      expect(await s.server.store.users.count()).toBe(0);
    },
  );

  it('has no default password: a weak one is refused and nothing is created', async () => {
    const dataDir = await tempDir();
    cleanup.push(() => removeDir(dataDir));
    await expect(initAdmin(dataDir, 'root@example.test', 'admin')).rejects.toThrow(/password/);
    const store = await Store.open({ dataDir });
    expect(await store.users.count()).toBe(0);
    await store.close();
  });
});

describe('settings', () => {
  it('refuses bad timeouts, login limits and trustProxy before opening anything, naming the field', async () => {
    const dataDir = await tempDir();
    cleanup.push(() => removeDir(dataDir));
    const cases: [Parameters<typeof startServer>[0], string][] = [
      [{ timeouts: { headersMs: 0 } }, 'timeouts.headersMs'],
      [{ timeouts: { bodyMinBytesPerSecond: 1.5 } }, 'timeouts.bodyMinBytesPerSecond'],
      [{ timeouts: { idleMs: '60000' as never } }, 'timeouts.idleMs'],
      [
        { loginLimits: { perAddress: { limit: -1, windowSeconds: 60 } } },
        'loginLimits.perAddress.limit',
      ],
      [{ trustProxy: 'nonsense' }, 'trustProxy'],
    ];
    for (const [options, field] of cases) {
      const e = await startServer({ ...options, dataDir }).then(
        (s) => s.close().then(() => undefined),
        (err: unknown) => err,
      );
      expect(e, field).toMatchObject({ code: 'ERR_INVALID_ARG', field });
    }
    expect(await readdir(dataDir)).toEqual([]);
  });
});
