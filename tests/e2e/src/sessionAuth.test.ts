import { unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { Forbidden, isSluiceError, Session, Unauthorized } from '@sluice/core';
import { SIGNING_KEY_FILE } from '@sluice/server';
import { describe, expect, it } from 'vitest';
import {
  ADMIN_EMAIL,
  type ApiServer,
  createUserViaApi,
  PASSWORD,
  rejection,
  removeDir,
  startForTest,
} from './apiServer.js';

const logins = (api: ApiServer) =>
  api.hitCount('POST /login') + api.hitCount('POST /token/refresh');

describe('Session login', () => {
  it('logs in, exposes the claims of the verified token and calls authenticated routes', async () => {
    const api = await startForTest();
    await createUserViaApi(api, 'op@example.com', 'Operator');
    api.hits.clear();
    const session = new Session({ apiUrl: api.url });
    expect(session.user).toBeNull();
    session.setCredentials('op@example.com', PASSWORD);
    const before = Math.floor(Date.now() / 1000);
    const user = await session.login();
    expect(user.email).toBe('op@example.com');
    expect(user.role).toBe('Operator');
    expect(user.id).toMatch(/.+/);
    expect(user.exp).toBeGreaterThanOrEqual(before + 15 * 60 - 2);
    expect(session.user).toEqual(user);
    const me = await session.request<{ user: { id: string; email: string } }>('GET', '/me');
    expect(me.user).toMatchObject({ id: user.id, email: 'op@example.com' });
    expect(api.hitCount('POST /login')).toBe(1);
    expect(api.hitCount('GET /.well-known/jwks.json')).toBe(1);
  });

  it('logs in on the first request when only credentials were given', async () => {
    const api = await startForTest();
    const session = new Session({ apiUrl: `${api.url}/` });
    session.setCredentials(ADMIN_EMAIL, PASSWORD);
    const me = await session.request<{ user: { role: string } }>('GET', '/me');
    expect(me.user.role).toBe('ApiAdmin');
    expect(api.hitCount('POST /login')).toBe(1);
  });

  it('wrong password: Unauthorized with status, method and URL, and never the password', async () => {
    const api = await startForTest();
    const session = new Session({ apiUrl: api.url });
    const wrong = 'Tr0ub4dor&3-not-it';
    session.setCredentials(ADMIN_EMAIL, wrong);
    const e = await rejection(session.login());
    expect(e).toBeInstanceOf(Unauthorized);
    expect(e.code).toBe('ERR_UNAUTHORIZED');
    const http = e as Unauthorized;
    expect(http.status).toBe(401);
    expect(http.method).toBe('POST');
    expect(http.url).toBe(`${api.url}/login`);
    expect(http.serverCode).toBe('ERR_UNAUTHORIZED');
    expect(http.serverMessage).toBe('invalid email or password');
    expect(e.message).toContain('401');
    expect(e.message).not.toContain(wrong);
    expect(JSON.stringify(e)).not.toContain(wrong);
    expect(session.user).toBeNull();
    // A refused login is not retried or re-authenticated.
    expect(api.hitCount('POST /login')).toBe(1);
  });

  it('a request without credentials or tokens fails with ERR_NOT_LOGGED_IN and sends nothing', async () => {
    const api = await startForTest();
    const session = new Session({ apiUrl: api.url });
    const e = await rejection(session.request('GET', '/me'));
    expect(e.code).toBe('ERR_NOT_LOGGED_IN');
    expect(api.hitCount('GET /me')).toBe(0);
  });

  it('renews a token about to expire before the next request (refresh, no new login)', async () => {
    const api = await startForTest({ accessTokenTtlSeconds: 3 });
    const session = new Session({ apiUrl: api.url, authExpiryThreshold: 1 });
    session.setCredentials(ADMIN_EMAIL, PASSWORD);
    const first = await session.login();
    expect(first.exp - first.iat).toBe(3);
    await session.request('GET', '/me');
    expect(api.hitCount('POST /token/refresh')).toBe(0);
    await new Promise((r) => setTimeout(r, 2200));
    await session.request('GET', '/me');
    expect(api.hitCount('POST /token/refresh')).toBe(1);
    expect(api.hitCount('POST /login')).toBe(1);
    expect(session.user?.jti).not.toBe(first.jti);
    expect(session.user?.exp).toBeGreaterThan(first.exp);
  });

  it('never renews on every request when the threshold exceeds the token lifetime', async () => {
    const api = await startForTest({ accessTokenTtlSeconds: 30 });
    const session = new Session({ apiUrl: api.url, authExpiryThreshold: 60 });
    session.setCredentials(ADMIN_EMAIL, PASSWORD);
    for (let i = 0; i < 5; i++) await session.request('GET', '/me');
    expect(logins(api)).toBe(1);
  });

  it('twenty concurrent requests refused with 401 after a server key change: one refresh for all', async () => {
    const api = await startForTest();
    const session = new Session({ apiUrl: api.url });
    session.setCredentials(ADMIN_EMAIL, PASSWORD);
    await session.login();
    const oldJti = session.user?.jti;
    // The server loses its signing key (README: issued tokens stop working, clients refresh).
    await api.close();
    await unlink(join(api.dataDir, SIGNING_KEY_FILE));
    const again = await startForTest({ dataDir: api.dataDir, port: api.port });
    const results = await Promise.all(
      Array.from({ length: 20 }, () => session.request<{ user: { email: string } }>('GET', '/me')),
    );
    expect(results.every((r) => r.user.email === ADMIN_EMAIL)).toBe(true);
    expect(again.hitCount('POST /token/refresh') + again.hitCount('POST /login')).toBe(1);
    expect(again.hitCount('POST /token/refresh')).toBe(1);
    // Every request was sent with the old token first (401), then once with the new one.
    expect(again.hitCount('GET /me')).toBe(40);
    // The new token is signed by a key the client did not know: the JWKS was fetched again.
    expect(again.hitCount('GET /.well-known/jwks.json')).toBe(1);
    expect(session.user?.jti).not.toBe(oldJti);
    await removeDir(api.dataDir);
  });

  it('twenty concurrent requests with an expiring token share one refresh', async () => {
    const api = await startForTest({ accessTokenTtlSeconds: 2 });
    const session = new Session({ apiUrl: api.url, authExpiryThreshold: 1 });
    session.setCredentials(ADMIN_EMAIL, PASSWORD);
    await session.login();
    await new Promise((r) => setTimeout(r, 1200));
    await Promise.all(Array.from({ length: 20 }, () => session.request('GET', '/me')));
    expect(api.hitCount('POST /token/refresh')).toBe(1);
    expect(api.hitCount('POST /login')).toBe(1);
    expect(api.hitCount('GET /me')).toBe(20);
  });

  it('falls back to a login with the credentials when the refresh token was revoked', async () => {
    const api = await startForTest({ accessTokenTtlSeconds: 2 });
    const session = new Session({ apiUrl: api.url, authExpiryThreshold: 1 });
    session.setCredentials(ADMIN_EMAIL, PASSWORD);
    await session.login();
    await api.server.store.db.query('UPDATE refresh_families SET revoked_at = $1', [
      new Date().toISOString(),
    ]);
    await new Promise((r) => setTimeout(r, 1200));
    const me = await session.request<{ user: { email: string } }>('GET', '/me');
    expect(me.user.email).toBe(ADMIN_EMAIL);
    expect(api.hitCount('POST /token/refresh')).toBe(1);
    expect(api.hitCount('POST /login')).toBe(2);
  });

  it('an explicit refresh the server refuses is Unauthorized and drops the tokens', async () => {
    const api = await startForTest({ accessTokenTtlSeconds: 2 });
    const session = new Session({ apiUrl: api.url, authExpiryThreshold: 1 });
    session.setCredentials(ADMIN_EMAIL, PASSWORD);
    await session.login();
    // Logging out elsewhere (another handle on the same refresh family) revokes it.
    await api.server.store.db.query('UPDATE refresh_families SET revoked_at = $1', [
      new Date().toISOString(),
    ]);
    const e = await rejection(session.refresh());
    expect(e).toBeInstanceOf(Unauthorized);
    expect((e as Unauthorized).url).toBe(`${api.url}/token/refresh`);
    expect(session.user).toBeNull();
  });

  it('explicit refresh without a login fails with ERR_NOT_LOGGED_IN', async () => {
    const api = await startForTest();
    const session = new Session({ apiUrl: api.url });
    const e = await rejection(session.refresh());
    expect(e.code).toBe('ERR_NOT_LOGGED_IN');
    expect(logins(api)).toBe(0);
  });

  it('a 403 re-authenticates once, then surfaces as Forbidden', async () => {
    const api = await startForTest();
    await createUserViaApi(api, 'op@example.com', 'Operator');
    const session = new Session({ apiUrl: api.url });
    session.setCredentials('op@example.com', PASSWORD);
    await session.login();
    const e = await rejection(session.request('GET', '/users'));
    expect(e).toBeInstanceOf(Forbidden);
    expect(e.code).toBe('ERR_FORBIDDEN');
    expect((e as Forbidden).status).toBe(403);
    expect(api.hitCount('GET /users')).toBe(2);
    expect(api.hitCount('POST /token/refresh')).toBe(1);
  });

  it('re-authenticates only once when the server keeps answering 401', async () => {
    const api = await startForTest({
      beforeListen: (server) => {
        server.app.get('/always-401', { config: { operation: 'me' } }, async (_req, reply) =>
          reply.status(401).send({ error: 'session revoked', code: 'ERR_UNAUTHORIZED' }),
        );
      },
    });
    const session = new Session({ apiUrl: api.url });
    session.setCredentials(ADMIN_EMAIL, PASSWORD);
    await session.login();
    const e = await rejection(session.request('GET', '/always-401'));
    expect(e).toBeInstanceOf(Unauthorized);
    expect((e as Unauthorized).serverMessage).toBe('session revoked');
    expect(api.hitCount('GET /always-401')).toBe(2);
    expect(api.hitCount('POST /token/refresh')).toBe(1);
  });

  it('logout while a refresh is under way revokes the refreshed login', async () => {
    const api = await startForTest();
    const session = new Session({ apiUrl: api.url });
    session.setCredentials(ADMIN_EMAIL, PASSWORD);
    await session.login();
    // The refresh itself may resolve or report that the session was logged out meanwhile.
    const refreshing = session.refresh().then(
      (user) => user.email,
      (e: { code?: string }) => e.code,
    );
    await session.logout();
    expect([ADMIN_EMAIL, 'ERR_NOT_LOGGED_IN']).toContain(await refreshing);
    expect(api.hitCount('POST /token/refresh')).toBe(1);
    const live = await api.server.store.db.query(
      'SELECT id FROM refresh_families WHERE revoked_at IS NULL',
    );
    expect(live).toHaveLength(0);
    expect(session.user).toBeNull();
  });

  it('403 ERR_DEVICE_NOT_BOUND is a Forbidden with that code and triggers no re-authentication', async () => {
    const api = await startForTest({
      beforeListen: (server) => {
        server.app.get('/device-check', { config: { operation: 'me' } }, async (_req, reply) =>
          reply.status(403).send({
            error: 'this account is bound to another device; ask an admin to reset the binding',
            code: 'ERR_DEVICE_NOT_BOUND',
          }),
        );
      },
    });
    const session = new Session({ apiUrl: api.url });
    session.setCredentials(ADMIN_EMAIL, PASSWORD);
    await session.login();
    const e = await rejection(session.request('GET', '/device-check'));
    expect(e).toBeInstanceOf(Forbidden);
    expect(e.code).toBe('ERR_DEVICE_NOT_BOUND');
    expect(isSluiceError(e, 'ERR_DEVICE_NOT_BOUND')).toBe(true);
    expect((e as Forbidden).serverMessage).toContain('reset the binding');
    expect(api.hitCount('GET /device-check')).toBe(1);
    expect(logins(api)).toBe(1);
  });

  it('logout revokes the refresh token on the server and forgets the credentials', async () => {
    const api = await startForTest();
    const session = new Session({ apiUrl: api.url });
    session.setCredentials(ADMIN_EMAIL, PASSWORD);
    await session.login();
    const families = () =>
      api.server.store.db.query('SELECT id FROM refresh_families WHERE revoked_at IS NULL');
    expect(await families()).toHaveLength(1);
    await session.logout();
    expect(api.hitCount('POST /logout')).toBe(1);
    expect(await families()).toHaveLength(0);
    expect(session.user).toBeNull();
    const e = await rejection(session.request('GET', '/me'));
    expect(e.code).toBe('ERR_NOT_LOGGED_IN');
    expect(api.hitCount('POST /login')).toBe(1);
  });
});
