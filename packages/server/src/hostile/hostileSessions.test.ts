// Hostile-input suite (docs/SECURITY.md): tokens that should be dead — expired ones, and ones
// issued before the account was disabled, its role changed or its device reset — on the real
// server.
import { setTimeout as sleep } from 'node:timers/promises';
import { decodeJwt } from 'jose';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  addUser,
  call,
  login,
  PASSWORD,
  type Running,
  removeDir,
  startServer,
} from '../test-helpers.js';
import { expectError, expectHealthy, type Hostile, startHostile } from './test-hostile.js';

let h: Hostile;
const others: Running[] = [];
beforeAll(async () => {
  h = await startHostile();
});
afterAll(async () => {
  for (const o of others) {
    await o.close();
    await removeDir(o.dataDir);
  }
  await h.close();
  await removeDir(h.dataDir);
});
afterEach(async () => {
  await expectHealthy(h);
});

/** Another real server, closed and removed after the file. */
async function another(options: Parameters<typeof startServer>[0] = {}): Promise<Running> {
  const o = await startServer(options);
  others.push(o);
  return o;
}

/** The three privileged requests the attack run used, each with `token`. */
async function privileged(url: string, token: string) {
  const email = `expired-${Math.random().toString(36).slice(2)}@example.test`;
  return {
    me: await call(url, 'GET', '/me', { token }),
    users: await call(url, 'GET', '/users', { token }),
    create: await call(url, 'POST', '/users', {
      token,
      json: { email, password: PASSWORD, role: 'ApiAdmin' },
    }),
    email,
  };
}

describe('expired access tokens', () => {
  it('an expired access token is refused at once on GET /me, GET /users and POST /users, not 60 s later', async () => {
    const o = await another({ accessTokenTtlSeconds: 1 });
    await addUser(o, 'short-lived@example.test', 'ApiAdmin');
    const { accessToken } = await login(o.url, 'short-lived@example.test');
    const { exp } = decodeJwt(accessToken);
    // Control: the same requests pass while the token is live.
    expect((await call(o.url, 'GET', '/me', { token: accessToken })).status).toBe(200);
    await sleep(Math.max(0, (exp ?? 0) * 1000 - Date.now()) + 50);
    const r = await privileged(o.url, accessToken);
    expectError(r.me, 401, 'ERR_UNAUTHORIZED');
    expectError(r.users, 401, 'ERR_UNAUTHORIZED');
    expectError(r.create, 401, 'ERR_UNAUTHORIZED');
    expect(o.server.store.findUserByEmail(r.email)).toBeUndefined();
  });
});

describe('tokens issued before a cut-off', () => {
  it('re-enabling a user does not revive the access and refresh tokens issued before it was disabled', async () => {
    const victim = await addUser(h, 'reenabled@example.test', 'Admin');
    const before = await login(h.url, 'reenabled@example.test');
    const admin = { token: h.tokens.ApiAdmin };
    expect((await call(h.url, 'POST', `/users/${victim.id}/disable`, admin)).status).toBe(200);
    expect((await call(h.url, 'POST', `/users/${victim.id}/enable`, admin)).status).toBe(200);
    const r = await privileged(h.url, before.accessToken);
    expectError(r.me, 401, 'ERR_UNAUTHORIZED');
    expectError(r.users, 401, 'ERR_UNAUTHORIZED');
    expectError(r.create, 401, 'ERR_UNAUTHORIZED');
    const refresh = await call(h.url, 'POST', '/token/refresh', {
      json: { refreshToken: before.refreshToken },
    });
    expectError(refresh, 401, 'ERR_UNAUTHORIZED');
    // A login after the re-enable works.
    const after = await login(h.url, 'reenabled@example.test');
    expect((await call(h.url, 'GET', '/users', { token: after.accessToken })).status).toBe(200);
  });

  it('a role change and a device reset end the sessions issued before them', async () => {
    for (const [i, path, body] of [
      [0, 'role', { role: 'Validator' }],
      [1, 'reset-device', {}],
    ] as const) {
      const email = `cut-${i}@example.test`;
      const user = await addUser(h, email, 'Operator');
      const before = await login(h.url, email);
      const r = await call(h.url, 'POST', `/users/${user.id}/${path}`, {
        token: h.tokens.ApiAdmin,
        json: body,
      });
      expect(r.status, path).toBe(200);
      expectError(
        await call(h.url, 'GET', '/me', { token: before.accessToken }),
        401,
        'ERR_UNAUTHORIZED',
      );
      const refresh = await call(h.url, 'POST', '/token/refresh', {
        json: { refreshToken: before.refreshToken },
      });
      expectError(refresh, 401, 'ERR_UNAUTHORIZED');
      const after = await login(h.url, email);
      expect((await call(h.url, 'GET', '/me', { token: after.accessToken })).status).toBe(200);
    }
  });

  it('setting the role a user already has cuts nothing off', async () => {
    const user = await addUser(h, 'same-role@example.test', 'Operator');
    const { accessToken } = await login(h.url, 'same-role@example.test');
    const r = await call(h.url, 'POST', `/users/${user.id}/role`, {
      token: h.tokens.ApiAdmin,
      json: { role: 'Operator' },
    });
    expect(r.status).toBe(200);
    expect((await call(h.url, 'GET', '/me', { token: accessToken })).status).toBe(200);
  });
});
