import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  addUser,
  call,
  login,
  PASSWORD,
  patchUser,
  type Running,
  removeDir,
  startServer,
} from '../test-helpers.js';

let s: Running;
let apiAdmin: string;
let admin: string;
let apiAdminId: string;

beforeAll(async () => {
  s = await startServer();
  apiAdminId = (await addUser(s, 'root@example.test', 'ApiAdmin')).id;
  await addUser(s, 'admin@example.test', 'Admin');
  apiAdmin = (await login(s.url, 'root@example.test')).accessToken;
  admin = (await login(s.url, 'admin@example.test')).accessToken;
});
afterAll(async () => {
  await s.close();
  await removeDir(s.dataDir);
});

async function create(token: string, email: string, role: string, password = PASSWORD) {
  return call(s.url, 'POST', '/users', { token, json: { email, password, role } });
}

describe('user administration', () => {
  it('an Admin creates a user who can then log in; the answer never holds the hash', async () => {
    const r = await create(admin, 'New.Device@Example.test', 'Operator');
    expect(r.status).toBe(201);
    expect(r.body).toMatchObject({
      user: {
        email: 'new.device@example.test',
        role: 'Operator',
        disabled: false,
        deviceBound: false,
      },
    });
    expect(r.text).not.toContain('scrypt');
    const session = await login(s.url, 'new.device@example.test');
    const me = await call(s.url, 'GET', '/me', { token: session.accessToken });
    expect(me.body).toMatchObject({ user: { email: 'new.device@example.test', role: 'Operator' } });
    expect(me.text).not.toContain('passwordHash');
  });

  it('lists users without password hashes', async () => {
    const r = await call(s.url, 'GET', '/users', { token: admin });
    expect(r.status).toBe(200);
    const emails = (r.body as { users: { email: string }[] }).users.map((u) => u.email);
    expect(emails).toEqual(expect.arrayContaining(['root@example.test', 'admin@example.test']));
    expect(r.text).not.toContain('scrypt$');
    expect(r.text).not.toContain('passwordHash');
  });

  it('refuses a duplicate email (409), a short password, a bad email or role (400)', async () => {
    await create(admin, 'dup@example.test', 'Validator');
    const dup = await create(admin, 'DUP@example.test', 'Operator');
    expect(dup.status).toBe(409);
    expect(dup.body).toMatchObject({ code: 'ERR_CONFLICT' });
    const short = await create(admin, 'short@example.test', 'Operator', 'short');
    expect(short.status).toBe(400);
    expect(short.body).toMatchObject({ code: 'ERR_BAD_REQUEST' });
    expect((await create(admin, 'not-an-email', 'Operator')).status).toBe(400);
    expect((await create(admin, 'role@example.test', 'Superuser')).status).toBe(400);
    expect((await create(admin, 'role@example.test', 'None')).status).toBe(400);
  });

  it('an Admin cannot create, promote to, disable or change an ApiAdmin; an ApiAdmin can', async () => {
    const r = await create(admin, 'sneaky@example.test', 'ApiAdmin');
    expect(r.status).toBe(403);
    expect(r.body).toMatchObject({ code: 'ERR_FORBIDDEN' });
    expect(
      (await call(s.url, 'POST', `/users/${apiAdminId}/disable`, { token: admin })).status,
    ).toBe(403);
    expect(
      (
        await call(s.url, 'POST', `/users/${apiAdminId}/role`, {
          token: admin,
          json: { role: 'Operator' },
        })
      ).status,
    ).toBe(403);
    const target = (await create(admin, 'promote@example.test', 'Operator')).body as {
      user: { id: string };
    };
    const promote = await call(s.url, 'POST', `/users/${target.user.id}/role`, {
      token: admin,
      json: { role: 'ApiAdmin' },
    });
    expect(promote.status).toBe(403);
    const byRoot = await call(s.url, 'POST', `/users/${target.user.id}/role`, {
      token: apiAdmin,
      json: { role: 'ApiAdmin' },
    });
    expect(byRoot.status).toBe(200);
    expect(byRoot.body).toMatchObject({ user: { role: 'ApiAdmin' } });
  });

  it('a role change takes effect on the next request: the old token is refused, a new login has the new role', async () => {
    const { user } = (await create(admin, 'uploader@example.test', 'ResourceUploader')).body as {
      user: { id: string };
    };
    const t = (await login(s.url, 'uploader@example.test')).accessToken;
    expect((await call(s.url, 'GET', '/users', { token: t })).status).toBe(403);
    await call(s.url, 'POST', `/users/${user.id}/role`, { token: admin, json: { role: 'Admin' } });
    // The role change ends the sessions issued before it (tokensValidAfter, issue 11).
    expect((await call(s.url, 'GET', '/users', { token: t })).status).toBe(401);
    const again = (await login(s.url, 'uploader@example.test')).accessToken;
    expect((await call(s.url, 'GET', '/users', { token: again })).status).toBe(200);
  });

  it('a disabled user is refused immediately: access token, refresh token and login', async () => {
    const { user } = (await create(admin, 'leaver@example.test', 'Validator')).body as {
      user: { id: string };
    };
    const session = await login(s.url, 'leaver@example.test');
    expect((await call(s.url, 'GET', '/me', { token: session.accessToken })).status).toBe(200);
    const d = await call(s.url, 'POST', `/users/${user.id}/disable`, { token: admin });
    expect(d.status).toBe(200);
    expect(d.body).toMatchObject({ user: { disabled: true } });
    const me = await call(s.url, 'GET', '/me', { token: session.accessToken });
    expect(me.status).toBe(401);
    expect(me.body).toEqual({ error: 'account disabled', code: 'ERR_UNAUTHORIZED' });
    const refresh = await call(s.url, 'POST', '/token/refresh', {
      json: { refreshToken: session.refreshToken },
    });
    expect(refresh.status).toBe(401);
    const again = await call(s.url, 'POST', '/login', {
      json: { email: 'leaver@example.test', password: PASSWORD },
    });
    expect(again.status).toBe(401);
    expect(again.body).toEqual({ error: 'invalid email or password', code: 'ERR_UNAUTHORIZED' });
    // Enabling restores logins, but the old refresh family stays revoked.
    expect((await call(s.url, 'POST', `/users/${user.id}/enable`, { token: admin })).status).toBe(
      200,
    );
    expect((await login(s.url, 'leaver@example.test')).accessToken).toBeTruthy();
    expect(
      (
        await call(s.url, 'POST', '/token/refresh', {
          json: { refreshToken: session.refreshToken },
        })
      ).status,
    ).toBe(401);
  });

  it('reset-device clears the binding', async () => {
    const { user } = (await create(admin, 'bound@example.test', 'Operator')).body as {
      user: { id: string };
    };
    await patchUser(s, user.id, { boundHardwareHash: 'a'.repeat(64) });
    const before = await call(s.url, 'GET', '/users', { token: admin });
    expect(
      (before.body as { users: { id: string; deviceBound: boolean }[] }).users.find(
        (u) => u.id === user.id,
      )?.deviceBound,
    ).toBe(true);
    const r = await call(s.url, 'POST', `/users/${user.id}/reset-device`, { token: admin });
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ user: { deviceBound: false } });
    expect((await s.server.store.users.get(user.id))?.boundHardwareHash).toBeNull();
  });

  it('unknown user ids answer 404 JSON, inherited property names included', async () => {
    for (const id of ['no-such-id', '__proto__', 'constructor', 'toString']) {
      for (const action of ['disable', 'enable', 'reset-device']) {
        const r = await call(s.url, 'POST', `/users/${id}/${action}`, { token: admin });
        expect(r.status).toBe(404);
        expect(r.body).toMatchObject({ code: 'ERR_NOT_FOUND' });
      }
    }
    expect(({} as { disabled?: unknown }).disabled).toBeUndefined();
  });

  it('checks the token before reading the body: strangers get 401, never 400 or 413', async () => {
    for (const json of [{}, { email: 'x', password: 'y'.repeat(100 * 1024), role: 'Operator' }]) {
      const r = await call(s.url, 'POST', '/users', { json });
      expect(r.status).toBe(401);
      expect(r.body).toMatchObject({ code: 'ERR_UNAUTHORIZED' });
    }
    const r = await call(s.url, 'POST', '/users', {
      body: '{not json',
      headers: { 'content-type': 'application/json', authorization: 'Bearer nope' },
    });
    expect(r.status).toBe(401);
  });

  it('bodiless POSTs accept no body or an empty JSON object', async () => {
    const { user } = (await create(admin, 'bodiless@example.test', 'Operator')).body as {
      user: { id: string };
    };
    const none = await call(s.url, 'POST', `/users/${user.id}/reset-device`, { token: admin });
    expect(none.status).toBe(200);
    const empty = await call(s.url, 'POST', `/users/${user.id}/reset-device`, {
      token: admin,
      json: {},
    });
    expect(empty.status).toBe(200);
  });

  it('the last active ApiAdmin can be neither disabled nor demoted', async () => {
    const t = await startServer();
    try {
      const { id } = await addUser(t, 'only@example.test', 'ApiAdmin');
      const token = (await login(t.url, 'only@example.test')).accessToken;
      const d = await call(t.url, 'POST', `/users/${id}/disable`, { token });
      expect(d.status).toBe(409);
      expect(d.body).toMatchObject({ code: 'ERR_CONFLICT' });
      const r = await call(t.url, 'POST', `/users/${id}/role`, { token, json: { role: 'Admin' } });
      expect(r.status).toBe(409);
      expect(await t.server.store.users.get(id)).toMatchObject({
        role: 'ApiAdmin',
        disabled: false,
      });
      await addUser(t, 'second@example.test', 'ApiAdmin');
      expect(
        (await call(t.url, 'POST', `/users/${id}/role`, { token, json: { role: 'Admin' } })).status,
      ).toBe(200);
    } finally {
      await t.close();
      await removeDir(t.dataDir);
    }
  });

  it('Operators, Validators and uploaders cannot administer users', async () => {
    for (const role of ['Operator', 'Validator', 'ResourceUploader']) {
      const email = `nonadmin-${role.toLowerCase()}@example.test`;
      await create(admin, email, role);
      const token = (await login(s.url, email)).accessToken;
      const r = await create(token, `x-${email}`, 'Operator');
      expect(r.status).toBe(403);
      expect(await s.server.store.users.byEmail(`x-${email}`)).toBeUndefined();
    }
  });
});

describe('GET /users pages', () => {
  it('walks every user once by cursor, finds one by email, refuses bad limits and cursors', async () => {
    for (let i = 0; i < 5; i++) await create(admin, `paged${i}@example.test`, 'Operator');
    const all = (
      (await call(s.url, 'GET', '/users?limit=1000', { token: admin })).body as {
        users: { email: string }[];
      }
    ).users.map((u) => u.email);
    const seen: string[] = [];
    let cursor: string | undefined;
    let pages = 0;
    do {
      const q = cursor === undefined ? '' : `&cursor=${encodeURIComponent(cursor)}`;
      const r = await call(s.url, 'GET', `/users?limit=2${q}`, { token: admin });
      expect(r.status).toBe(200);
      const page = r.body as { users: { email: string }[]; nextCursor?: string };
      expect(page.users.length).toBeLessThanOrEqual(2);
      seen.push(...page.users.map((u) => u.email));
      cursor = page.nextCursor;
      pages += 1;
    } while (cursor !== undefined);
    expect(seen).toEqual(all);
    expect(pages).toBe(Math.ceil(all.length / 2));
    const one = await call(s.url, 'GET', '/users?email=PAGED3@example.test', { token: admin });
    expect((one.body as { users: { email: string }[] }).users.map((u) => u.email)).toEqual([
      'paged3@example.test',
    ]);
    for (const q of ['limit=0', 'limit=1001', 'limit=x', 'cursor=bm90LWEtY3Vyc29y']) {
      const r = await call(s.url, 'GET', `/users?${q}`, { token: admin });
      expect(r.status, q).toBe(400);
    }
  });
});
