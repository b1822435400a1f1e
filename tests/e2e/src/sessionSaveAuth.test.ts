import { chmod, mkdir, readdir, readFile, stat, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Session } from '@sluice/core';
import { describe, expect, it } from 'vitest';
import {
  ADMIN_EMAIL,
  type ApiServer,
  onCleanup,
  PASSWORD,
  rejection,
  removeDir,
  startForTest,
  tempDir,
} from './apiServer.js';

async function setup(ttl = 900): Promise<{ api: ApiServer; file: string; dir: string }> {
  const api = await startForTest({ accessTokenTtlSeconds: ttl });
  const dir = await tempDir('sluice-auth-');
  onCleanup(() => removeDir(dir));
  return { api, file: join(dir, 'config', 'auth.json'), dir };
}

describe('Session saveAuth', () => {
  it('writes the tokens 0600 after login, reloads them without a login, deletes them on logout', async () => {
    const { api, file, dir } = await setup();
    const first = new Session({ apiUrl: api.url, saveAuth: file });
    first.setCredentials(ADMIN_EMAIL, PASSWORD);
    const user = await first.login();
    const info = await stat(file);
    expect(info.mode & 0o777).toBe(0o600);
    expect((await stat(join(dir, 'config'))).mode & 0o777).toBe(0o700);
    const saved = JSON.parse(await readFile(file, 'utf8'));
    expect(typeof saved.accessToken).toBe('string');
    expect(typeof saved.refreshToken).toBe('string');
    expect(await readFile(file, 'utf8')).not.toContain(PASSWORD);
    // No temp files left beside it.
    expect(await readdir(join(dir, 'config'))).toEqual(['auth.json']);

    // A new process: no credentials, no login, yet authenticated.
    const second = new Session({ apiUrl: api.url, saveAuth: file });
    expect(second.user).toBeNull();
    const me = await second.request<{ user: { email: string } }>('GET', '/me');
    expect(me.user.email).toBe(ADMIN_EMAIL);
    expect(second.user?.jti).toBe(user.jti);
    expect(api.hitCount('POST /login')).toBe(1);
    expect(api.hitCount('POST /token/refresh')).toBe(0);

    await second.logout();
    await expect(stat(file)).rejects.toMatchObject({ code: 'ENOENT' });
    // The refresh token that was in the file no longer works anywhere.
    const res = await fetch(`${api.url}/token/refresh`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ refreshToken: saved.refreshToken }),
    });
    expect(res.status).toBe(401);
    const third = new Session({ apiUrl: api.url, saveAuth: file });
    expect((await rejection(third.request('GET', '/me'))).code).toBe('ERR_NOT_LOGGED_IN');
  });

  it('a refresh rewrites the file with the rotated tokens', async () => {
    const { api, file } = await setup();
    const session = new Session({ apiUrl: api.url, saveAuth: file });
    session.setCredentials(ADMIN_EMAIL, PASSWORD);
    await session.login();
    const before = JSON.parse(await readFile(file, 'utf8'));
    await session.refresh();
    const after = JSON.parse(await readFile(file, 'utf8'));
    expect(after.refreshToken).not.toBe(before.refreshToken);
    expect(after.accessToken).not.toBe(before.accessToken);
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    // The rotated-in token works from a fresh session; the old one would revoke the family.
    const next = new Session({ apiUrl: api.url, saveAuth: file, authExpiryThreshold: 0 });
    await next.refresh();
    expect(api.hitCount('POST /token/refresh')).toBe(2);
  });

  it('an expired saved access token is renewed with the saved refresh token, no login', async () => {
    const { api, file } = await setup(1);
    const session = new Session({ apiUrl: api.url, saveAuth: file });
    session.setCredentials(ADMIN_EMAIL, PASSWORD);
    const first = await session.login();
    await new Promise((r) => setTimeout(r, 1500));
    const reloaded = new Session({ apiUrl: api.url, saveAuth: file, authExpiryThreshold: 0 });
    await reloaded.request('GET', '/me');
    expect(api.hitCount('POST /login')).toBe(1);
    expect(api.hitCount('POST /token/refresh')).toBe(1);
    expect(reloaded.user?.exp).toBeGreaterThan(first.exp);
  });

  it('a reloaded token that fails verification is not used; its refresh token is', async () => {
    const { api, file } = await setup();
    const session = new Session({ apiUrl: api.url, saveAuth: file });
    session.setCredentials(ADMIN_EMAIL, PASSWORD);
    await session.login();
    const saved = JSON.parse(await readFile(file, 'utf8'));
    const [h, p] = saved.accessToken.split('.');
    saved.accessToken = `${h}.${p}.${Buffer.alloc(64).toString('base64url')}`;
    await writeFile(file, JSON.stringify(saved), { mode: 0o600 });
    api.hits.clear();
    const reloaded = new Session({ apiUrl: api.url, saveAuth: file });
    await reloaded.request('GET', '/me');
    expect(api.hitCount('POST /token/refresh')).toBe(1);
    expect(api.hitCount('GET /me')).toBe(1);
    expect(JSON.parse(await readFile(file, 'utf8')).accessToken).not.toBe(saved.accessToken);
  });

  it('ignores a corrupt file and overwrites it after the next login', async () => {
    const { api, file, dir } = await setup();
    await mkdir(join(dir, 'config'), { mode: 0o700 });
    await writeFile(file, '{"version":1,"accessTok', { mode: 0o600 });
    const session = new Session({ apiUrl: api.url, saveAuth: file });
    session.setCredentials(ADMIN_EMAIL, PASSWORD);
    await session.request('GET', '/me');
    expect(api.hitCount('POST /login')).toBe(1);
    expect(typeof JSON.parse(await readFile(file, 'utf8')).refreshToken).toBe('string');
  });

  it('refuses a file that group or others can read, and a symlink', async () => {
    const { api, file, dir } = await setup();
    const session = new Session({ apiUrl: api.url, saveAuth: file });
    session.setCredentials(ADMIN_EMAIL, PASSWORD);
    await session.login();
    await chmod(file, 0o644);
    let e: unknown;
    try {
      new Session({ apiUrl: api.url, saveAuth: file });
    } catch (caught) {
      e = caught;
    }
    expect(e).toMatchObject({ code: 'ERR_INSECURE_FILE', path: file });
    expect(String((e as Error).message)).toMatch(/chmod 600/);
    // It was not silently fixed.
    expect((await stat(file)).mode & 0o777).toBe(0o644);

    await chmod(file, 0o600);
    const link = join(dir, 'link.json');
    await symlink(file, link);
    expect(() => new Session({ apiUrl: api.url, saveAuth: link })).toThrow(/not a regular file/);
  });
});
