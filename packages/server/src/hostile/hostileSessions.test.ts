// Hostile-input suite (docs/SECURITY.md): tokens that should be dead — expired ones, and ones
// issued before the account was disabled, its role changed, its device reset or its password
// changed — and the password routes, on the real server.
import { setTimeout as sleep } from 'node:timers/promises';
import { decodeJwt } from 'jose';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  addUser,
  call,
  type LoginBody,
  login,
  PASSWORD,
  type Running,
  removeDir,
  startServer,
} from '../test-helpers.js';
import {
  expectError,
  expectHealthy,
  fieldsOf,
  formOf,
  type Hostile,
  sealRandom,
  startHostile,
  upload,
} from './test-hostile.js';

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
    // Log in just after a second begins: `iat` is whole seconds, so the token then lives ~1 s.
    await sleep(1000 - (Date.now() % 1000) + 20);
    const { accessToken } = await login(o.url, 'short-lived@example.test');
    const { exp } = decodeJwt(accessToken);
    // Control: the same requests pass while the token is live.
    expect((await call(o.url, 'GET', '/me', { token: accessToken })).status).toBe(200);
    await sleep(Math.max(0, (exp ?? 0) * 1000 - Date.now()) + 50);
    const r = await privileged(o.url, accessToken);
    expectError(r.me, 401, 'ERR_UNAUTHORIZED');
    expectError(r.users, 401, 'ERR_UNAUTHORIZED');
    expectError(r.create, 401, 'ERR_UNAUTHORIZED');
    expect(await o.server.store.users.byEmail(r.email)).toBeUndefined();
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

describe('password change and reset', () => {
  const HW = 'd4'.repeat(32);
  let uploaded = false;
  /** A resource the users here can fetch envelopes of (uploaded once). */
  async function resource(): Promise<void> {
    if (uploaded) return;
    const r = await upload(h, 'pw', formOf(fieldsOf(await sealRandom(20_000), 'p.bin')));
    expect(r.status).toBe(201);
    uploaded = true;
  }
  const envelope = (token: string, password: string) =>
    call(h.url, 'POST', '/resources/get/pw', {
      token,
      json: { fileName: 'p.bin', password, hardware: HW },
    });
  const change = (token: string, password: string, newPassword: string) =>
    call(h.url, 'POST', '/me/password', { token, json: { password, newPassword } });

  it('POST /me/password needs the current password and ends every other login, cached envelope keys included', async () => {
    await resource();
    const user = await addUser(h, 'changer@example.test', 'Operator');
    const here = await login(h.url, 'changer@example.test');
    const elsewhere = await login(h.url, 'changer@example.test');
    expect((await envelope(elsewhere.accessToken, PASSWORD)).status).toBe(200);
    expect(h.server.envelopeCache?.devicesOf(user.id)).toBe(1);
    const NEW = 'a brand new passphrase 42';
    expectError(
      await change(here.accessToken, 'not the current one at all', NEW),
      401,
      'ERR_UNAUTHORIZED',
    );
    expectError(await change(here.accessToken, PASSWORD, 'short'), 400, 'ERR_BAD_REQUEST');
    expectError(await change(here.accessToken, PASSWORD, PASSWORD), 400, 'ERR_BAD_REQUEST');
    expect((await h.server.store.users.get(user.id))?.passwordHash).toBe(user.passwordHash);
    const r = await change(here.accessToken, PASSWORD, NEW);
    expect(r.status).toBe(200);
    const fresh = r.body as LoginBody;
    expect(fresh.tokenType).toBe('Bearer');
    expect((await call(h.url, 'GET', '/me', { token: fresh.accessToken })).status).toBe(200);
    // Every login from before is over, the one that made the change included.
    for (const old of [here, elsewhere]) {
      const me = await call(h.url, 'GET', '/me', { token: old.accessToken });
      expectError(me, 401, 'ERR_UNAUTHORIZED');
      const refresh = await call(h.url, 'POST', '/token/refresh', {
        json: { refreshToken: old.refreshToken },
      });
      expectError(refresh, 401, 'ERR_UNAUTHORIZED');
    }
    expect(h.server.envelopeCache?.devicesOf(user.id)).toBe(0);
    expectError(await envelope(fresh.accessToken, PASSWORD), 401, 'ERR_UNAUTHORIZED');
    expect((await envelope(fresh.accessToken, NEW)).status).toBe(200);
    const oldLogin = await call(h.url, 'POST', '/login', {
      json: { email: 'changer@example.test', password: PASSWORD },
    });
    expectError(oldLogin, 401, 'ERR_UNAUTHORIZED');
    expect((await login(h.url, 'changer@example.test', NEW)).accessToken).toBeTruthy();
    // The new refresh token is live.
    const refreshed = await call(h.url, 'POST', '/token/refresh', {
      json: { refreshToken: fresh.refreshToken },
    });
    expect(refreshed.status).toBe(200);
  });

  it('guessing the current password through POST /me/password is limited like envelope passwords', async () => {
    const o = await another({
      loginLimits: {
        withToken: { limit: 3, lockSeconds: 60, maxLockSeconds: 60, forgetSeconds: 60 },
      },
    });
    await addUser(o, 'guessed@example.test', 'Operator');
    const { accessToken } = await login(o.url, 'guessed@example.test');
    const attempt = (password: string) =>
      call(o.url, 'POST', '/me/password', {
        token: accessToken,
        json: { password, newPassword: 'a brand new passphrase 42' },
      });
    for (let i = 0; i < 3; i++) {
      expectError(await attempt(`stolen token guess ${i}`), 401, 'ERR_UNAUTHORIZED');
    }
    const locked = await attempt(PASSWORD);
    expectError(locked, 429, 'ERR_RATE_LIMITED');
    expect(Number(locked.headers.get('retry-after'))).toBeGreaterThan(0);
  });

  it('an admin reset sets the password by the creation rules and ends the sessions; only an ApiAdmin resets an ApiAdmin', async () => {
    const target = await addUser(h, 'reset-me@example.test', 'Operator');
    const before = await login(h.url, 'reset-me@example.test');
    const reset = (token: string, id: string, password: string) =>
      call(h.url, 'POST', `/users/${id}/password`, { token, json: { password } });
    const NEW = 'set by the administrator 7';
    expectError(await reset(h.tokens.Admin, target.id, 'short'), 400, 'ERR_BAD_REQUEST');
    expectError(await reset(h.tokens.Operator, target.id, NEW), 403, 'ERR_FORBIDDEN');
    expectError(await reset(h.tokens.Admin, 'no-such-user', NEW), 404, 'ERR_NOT_FOUND');
    const r = await reset(h.tokens.Admin, target.id, NEW);
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ user: { id: target.id, email: 'reset-me@example.test' } });
    expect(r.text).not.toContain(NEW);
    expectError(
      await call(h.url, 'GET', '/me', { token: before.accessToken }),
      401,
      'ERR_UNAUTHORIZED',
    );
    expectError(
      await call(h.url, 'POST', '/token/refresh', { json: { refreshToken: before.refreshToken } }),
      401,
      'ERR_UNAUTHORIZED',
    );
    expect((await login(h.url, 'reset-me@example.test', NEW)).accessToken).toBeTruthy();
    // An ApiAdmin's password is an ApiAdmin's business.
    const admin = await addUser(h, 'second-apiadmin@example.test', 'ApiAdmin');
    expectError(await reset(h.tokens.Admin, admin.id, NEW), 403, 'ERR_FORBIDDEN');
    expect((await h.server.store.users.get(admin.id))?.passwordHash).toBe(admin.passwordHash);
    expect((await reset(h.tokens.ApiAdmin, admin.id, NEW)).status).toBe(200);
  });

  it('passwords never reach a log line or an answer on the password routes (trace level)', async () => {
    await addUser(h, 'quiet@example.test', 'Operator');
    const from = h.lines.length;
    const { accessToken } = await login(h.url, 'quiet@example.test');
    const SECRET = 'a secret new passphrase 99';
    const answers = [
      await change(accessToken, 'a wrong current passphrase', SECRET),
      await change(accessToken, PASSWORD, SECRET),
    ];
    const id = (await h.server.store.users.byEmail('quiet@example.test'))?.id ?? '';
    const ANOTHER = 'another secret passphrase 98';
    answers.push(
      await call(h.url, 'POST', `/users/${id}/password`, {
        token: h.tokens.Admin,
        json: { password: ANOTHER },
      }),
    );
    const logged = h.lines.slice(from).join('\n');
    for (const secret of [PASSWORD, SECRET, ANOTHER, 'a wrong current passphrase']) {
      expect(logged).not.toContain(secret);
      for (const a of answers) expect(a.text).not.toContain(secret);
    }
    expect(logged).toContain('password.changed');
    expect(logged).toContain('user.passwordReset');
  });
});
