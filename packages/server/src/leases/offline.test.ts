// Offline leases end to end through @sluice/core against the real server on loopback: a pull
// with `offline: 'auto'` keeps the lease; with the server stopped the cached resource opens from
// it, byte for byte; expiry, clock rollback, a wrong password or another device are refused; a
// disabled user, a reset device or a deleted version lose their leases at the next contact.

import { randomBytes } from 'node:crypto';
import { readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { isSluiceError, type PullOptions, pull, push, Session } from '@sluice/core';
import type { SluiceErrorCode } from '@sluice/protocol';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  addUser,
  call,
  login,
  PASSWORD,
  type Running,
  removeDir,
  runCleanup,
  startServer,
  tempDir,
} from '../test-helpers.js';

const UPLOADER = 'uploader@example.test';
const HW = 'd4'.repeat(32);
const HW_OTHER = 'e5'.repeat(32);
const cleanup: (() => Promise<void>)[] = [];
afterAll(() => runCleanup(cleanup));

async function server(options: Parameters<typeof startServer>[0] = {}): Promise<Running> {
  const s = await startServer(options);
  cleanup.push(async () => {
    await s.close();
    await removeDir(s.dataDir);
  });
  await addUser(s, UPLOADER, 'ResourceUploader');
  return s;
}

async function upload(s: Running, name: string, data: Buffer): Promise<void> {
  const uploader = new Session({ apiUrl: s.url });
  uploader.setCredentials(UPLOADER, PASSWORD);
  await push(uploader, 'models', name, data, { chunkSize: 64 * 1024, smallSizeKB: 16 });
}

/** A device session of `email` (credentials only: nothing is asked of the server yet). */
function device(url: string, email: string, password = PASSWORD): Session {
  const session = new Session({ apiUrl: url, retries: 0 });
  session.setCredentials(email, password);
  return session;
}

async function refused(p: Promise<unknown>, code: SluiceErrorCode): Promise<Error> {
  const e = await p.then(
    () => new Error(`expected ${code}, the pull succeeded`),
    (err: unknown) => err as Error,
  );
  expect(isSluiceError(e, code), String(e)).toBe(true);
  return e;
}

const leaseFiles = async (cache: string) => {
  const accounts = await readdir(join(cache, 'leases')).catch((): string[] => []);
  const all: string[] = [];
  for (const a of accounts) {
    for (const f of await readdir(join(cache, 'leases', a))) if (f.endsWith('.lease')) all.push(f);
  }
  return all;
};

describe('offline use from a lease', () => {
  let s: Running;
  let url: string;
  let work: string;
  let cache: string;
  const email = 'drone@example.test';
  const plain = randomBytes(700_000);
  const small = randomBytes(3_000);
  let online: PullOptions;

  beforeAll(async () => {
    s = await server();
    url = s.url;
    work = await tempDir('sluice-lease-');
    cleanup.push(() => removeDir(work));
    cache = join(work, 'cache');
    await addUser(s, email, 'Operator');
    await upload(s, 'm.bin', plain);
    await upload(s, 'tiny.bin', small);
    online = { to: 'buffer', password: PASSWORD, hardware: HW, cacheDir: cache, offline: 'auto' };
    const first = await pull(device(url, email), 'models', 'm.bin', online);
    expect(first.offline).toBe(false);
    expect(Date.parse(first.leaseNotAfter ?? '') - Date.now()).toBeGreaterThan(6.9 * 86400_000);
    await pull(device(url, email), 'models', 'tiny.bin', online);
    await s.close();
  });

  it('keeps the lease sealed: mode 0600, no name, key or plaintext readable on disk', async () => {
    const accounts = await readdir(join(cache, 'leases'));
    expect(accounts).toHaveLength(1);
    const dir = join(cache, 'leases', accounts[0] ?? '');
    expect((await stat(dir)).mode & 0o777).toBe(0o700);
    for (const f of await readdir(dir)) {
      expect(f).toMatch(/^[0-9a-f]{32}\.lease$|^state\.sealed$/);
      expect((await stat(join(dir, f))).mode & 0o777).toBe(0o600);
      const text = await readFile(join(dir, f), 'utf8');
      expect(text).not.toContain('m.bin');
      expect(text).not.toContain(email);
      expect(text).not.toContain(HW);
      expect(Buffer.from(text).includes(small.subarray(0, 64))).toBe(false);
    }
  });

  it('opens the cached resource with the server stopped, byte for byte', async () => {
    const r = await pull(device(url, email), 'models', 'm.bin', { ...online, offline: 'only' });
    expect(r.offline).toBe(true);
    expect(r.fromCache).toBe(true);
    expect(r.data?.equals(plain)).toBe(true);
    const file = join(work, 'm.out');
    await pull(device(url, email), 'models', 'm.bin', { ...online, to: file, offline: 'only' });
    expect((await readFile(file)).equals(plain)).toBe(true);
    const t = await pull(device(url, email), 'models', 'tiny.bin', { ...online, offline: 'only' });
    expect(t.data?.equals(small)).toBe(true);
  });

  it('falls back to the lease when the server cannot be reached, saying so once', async () => {
    const seen: Error[] = [];
    const r = await pull(device(url, email), 'models', 'm.bin', {
      ...online,
      onOffline: (e) => seen.push(e),
    });
    expect(r.offline).toBe(true);
    expect(r.data?.equals(plain)).toBe(true);
    expect(seen).toHaveLength(1);
    expect(isSluiceError(seen[0], 'ERR_NETWORK')).toBe(true);
  });

  it('refuses past notAfter, and a clock turned back behind the server time seen', async () => {
    const only = { ...online, offline: 'only' as const };
    const late = () => Date.now() + 7 * 86400_000 + 60_000;
    await refused(
      pull(device(url, email), 'models', 'm.bin', { ...only, now: late }),
      'ERR_LEASE_EXPIRED',
    );
    const back = () => Date.now() - 3600_000;
    await refused(
      pull(device(url, email), 'models', 'm.bin', { ...only, now: back }),
      'ERR_CLOCK_ROLLBACK',
    );
    // Within the tolerance a slightly slow clock still opens.
    const slow = () => Date.now() - 60_000;
    await pull(device(url, email), 'models', 'm.bin', { ...only, now: slow });
  });

  it('refuses a wrong password, another device, another account, and a resource never leased', async () => {
    const only = { ...online, offline: 'only' as const, to: join(work, 'never') };
    await refused(
      pull(device(url, email, 'wrong password here'), 'models', 'm.bin', {
        ...only,
        password: 'wrong password here',
      }),
      'ERR_LEASE_LOCKED',
    );
    await refused(
      pull(device(url, email), 'models', 'm.bin', { ...only, hardware: HW_OTHER }),
      'ERR_LEASE_LOCKED',
    );
    await refused(pull(device(url, 'other@example.test'), 'models', 'm.bin', only), 'ERR_NO_LEASE');
    await refused(pull(device(url, email), 'models', 'absent.bin', only), 'ERR_NO_LEASE');
    await expect(stat(only.to)).rejects.toThrow();
    expect((await readdir(work)).filter((n) => n.includes('.sluice-'))).toEqual([]);
  });

  it('with the server stopped and no lease, reports the network failure', async () => {
    const fresh = join(work, 'empty-cache');
    await refused(
      pull(device(url, email), 'models', 'm.bin', { ...online, cacheDir: fresh }),
      'ERR_NETWORK',
    );
  });
});

describe('a server with offline use off (offlineLeaseSeconds: 0)', () => {
  it('sends no lease, and the device keeps none', async () => {
    const s = await server({ offlineLeaseSeconds: 0 });
    const email = 'nolease@example.test';
    await addUser(s, email, 'Operator');
    await upload(s, 'm.bin', randomBytes(100_000));
    const cache = join(await tempDir('sluice-lease-'), 'cache');
    cleanup.push(() => removeDir(join(cache, '..')));
    const opts = {
      to: 'buffer',
      password: PASSWORD,
      hardware: HW,
      cacheDir: cache,
      offline: 'auto' as const,
    };
    const r = await pull(device(s.url, email), 'models', 'm.bin', opts);
    expect(r.leaseNotAfter).toBeUndefined();
    expect(await leaseFiles(cache)).toEqual([]);
    const raw = await call(s.url, 'POST', '/resources/get/models', {
      token: (await login(s.url, email)).accessToken,
      json: { fileName: 'm.bin', password: PASSWORD, hardware: HW },
    });
    expect((raw.body as { lease: unknown }).lease).toBeNull();
    await refused(
      pull(device(s.url, email), 'models', 'm.bin', { ...opts, offline: 'only' }),
      'ERR_NO_LEASE',
    );
  });
});

describe('revocation at the next contact', () => {
  let s: Running;
  let admin: string;

  beforeAll(async () => {
    s = await server();
    await addUser(s, 'admin@example.test', 'Admin');
    admin = (await login(s.url, 'admin@example.test')).accessToken;
    await upload(s, 'a.bin', randomBytes(200_000));
    await upload(s, 'b.bin', randomBytes(200_000));
  });

  /** A fresh user whose device has pulled (and leased) a.bin, with its cache. */
  async function leased(email: string) {
    const { id } = await addUser(s, email, 'Operator');
    const cache = join(await tempDir('sluice-lease-'), 'cache');
    cleanup.push(() => removeDir(join(cache, '..')));
    const opts = {
      to: 'buffer',
      password: PASSWORD,
      hardware: HW,
      cacheDir: cache,
      offline: 'auto' as const,
    };
    await pull(device(s.url, email), 'models', 'a.bin', opts);
    expect(await leaseFiles(cache)).toHaveLength(1);
    return { id, cache, opts };
  }

  it('a disabled user: the refused login deletes the leases', async () => {
    const email = 'disabled@example.test';
    const { id, cache, opts } = await leased(email);
    const r = await call(s.url, 'POST', `/users/${id}/disable`, { token: admin });
    expect(r.status).toBe(200);
    await refused(pull(device(s.url, email), 'models', 'b.bin', opts), 'ERR_UNAUTHORIZED');
    expect(await leaseFiles(cache)).toEqual([]);
    await refused(
      pull(device(s.url, email), 'models', 'a.bin', { ...opts, offline: 'only' }),
      'ERR_NO_LEASE',
    );
  });

  it('a mistyped password deletes nothing', async () => {
    const email = 'typo@example.test';
    const { cache, opts } = await leased(email);
    const typo = 'not the password at all';
    await refused(
      pull(device(s.url, email, typo), 'models', 'b.bin', { ...opts, password: typo }),
      'ERR_UNAUTHORIZED',
    );
    expect(await leaseFiles(cache)).toHaveLength(1);
  });

  it('a reset device: the next pull (of anything) revokes the older lease', async () => {
    const email = 'reset@example.test';
    const { id, cache, opts } = await leased(email);
    expect((await call(s.url, 'POST', `/users/${id}/reset-device`, { token: admin })).status).toBe(
      200,
    );
    await pull(device(s.url, email), 'models', 'b.bin', opts);
    const left = await leaseFiles(cache);
    expect(left).toHaveLength(1);
    // What is left is b.bin's fresh lease: a.bin no longer opens offline.
    await refused(
      pull(device(s.url, email), 'models', 'a.bin', { ...opts, offline: 'only' }),
      'ERR_NO_LEASE',
    );
    await pull(device(s.url, email), 'models', 'b.bin', { ...opts, offline: 'only' });
  });

  it('another device bound meanwhile: 403 ERR_DEVICE_NOT_BOUND deletes the leases', async () => {
    const email = 'moved@example.test';
    const { id, cache, opts } = await leased(email);
    expect((await call(s.url, 'POST', `/users/${id}/reset-device`, { token: admin })).status).toBe(
      200,
    );
    await pull(device(s.url, email), 'models', 'a.bin', {
      ...opts,
      cacheDir: undefined,
      hardware: HW_OTHER,
    });
    await refused(pull(device(s.url, email), 'models', 'b.bin', opts), 'ERR_DEVICE_NOT_BOUND');
    expect(await leaseFiles(cache)).toEqual([]);
  });

  it('a deleted version: the next contact revokes its lease', async () => {
    const email = 'deleted@example.test';
    await upload(s, 'gone.bin', randomBytes(50_000));
    const { cache, opts } = await leased(email);
    await pull(device(s.url, email), 'models', 'gone.bin', opts);
    expect(await leaseFiles(cache)).toHaveLength(2);
    const up = (await login(s.url, UPLOADER)).accessToken;
    expect((await call(s.url, 'DELETE', '/resources/models/gone.bin', { token: up })).status).toBe(
      204,
    );
    await pull(device(s.url, email), 'models', 'b.bin', opts);
    expect(await leaseFiles(cache)).toHaveLength(2); // a.bin's and b.bin's
    await refused(
      pull(device(s.url, email), 'models', 'gone.bin', { ...opts, offline: 'only' }),
      'ERR_NO_LEASE',
    );
  });
});

describe('POST /leases/check', () => {
  it('answers from the store: altered and foreign leases are revoked, good ones are not', async () => {
    const s = await server();
    await upload(s, 'a.bin', randomBytes(20_000));
    await addUser(s, 'one@example.test', 'Operator');
    await addUser(s, 'two@example.test', 'Operator');
    const envelope = async (email: string, hardware: string) => {
      const token = (await login(s.url, email)).accessToken;
      const r = await call(s.url, 'POST', '/resources/get/models', {
        token,
        json: { fileName: 'a.bin', password: PASSWORD, hardware },
      });
      expect(r.status).toBe(200);
      return {
        token,
        body: r.body as {
          lease: { kid: string; payload: string; signature: string };
          serverTime: string;
        },
      };
    };
    const one = await envelope('one@example.test', HW);
    const two = await envelope('two@example.test', HW_OTHER);
    expect(Math.abs(Date.parse(one.body.serverTime) - Date.now())).toBeLessThan(60_000);
    const good = one.body.lease;
    const payload = JSON.parse(Buffer.from(good.payload, 'base64').toString('utf8')) as Record<
      string,
      unknown
    >;
    expect(payload).toMatchObject({
      v: 1,
      email: 'one@example.test',
      hardware: HW,
      folder: 'models',
      name: 'a.bin',
      version: 1,
    });
    const forged = Buffer.from(
      JSON.stringify({ ...payload, notAfter: '2099-01-01T00:00:00.000Z' }),
    ).toString('base64');
    const r = await call(s.url, 'POST', '/leases/check', {
      token: one.token,
      json: { leases: [good, { ...good, payload: forged }, two.body.lease] },
    });
    expect(r.status).toBe(200);
    const twoId = JSON.parse(Buffer.from(two.body.lease.payload, 'base64').toString('utf8')).id;
    expect((r.body as { revoked: unknown[] }).revoked).toEqual([
      { id: payload.id, reason: 'bad-signature' },
      { id: twoId, reason: 'other-user' },
    ]);
    const bad = await call(s.url, 'POST', '/leases/check', {
      token: one.token,
      json: { leases: 'x' },
    });
    expect([bad.status, (bad.body as { code: string }).code]).toEqual([400, 'ERR_BAD_REQUEST']);
    const anon = await call(s.url, 'POST', '/leases/check', { json: { leases: [] } });
    expect(anon.status).toBe(401);
  });
});

describe('offlineLeaseSeconds', () => {
  it('is whole seconds from 0 to 10 years, default 7 days', async () => {
    const { resolveSettings } = await import('../app/settings.js');
    expect(resolveSettings({ dataDir: '/x' }, {}).offlineLeaseSeconds).toBe(7 * 86400);
    for (const bad of [-1, 1.5, 11 * 366 * 86400]) {
      expect(() => resolveSettings({ dataDir: '/x', offlineLeaseSeconds: bad }, {})).toThrow(
        /offlineLeaseSeconds/,
      );
    }
  });
});
