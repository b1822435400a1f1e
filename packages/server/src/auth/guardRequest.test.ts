import { ROLES, type Role } from '@sluice/protocol';
import { SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createServer } from '../app/createServer.js';
import {
  addUser,
  call,
  login,
  patchUser,
  type Running,
  removeDir,
  startServer,
  TEST_SCRYPT,
  tempDir,
} from '../test-helpers.js';
import { isAllowed, OPERATIONS, type Operation, PERMISSIONS } from './permissions.js';

/** Operations whose own routes exist in this slice; the rest are probed through guarded stand-ins. */
const REAL_ROUTE: Partial<Record<Operation, { method: string; path: string }>> = {
  me: { method: 'GET', path: '/me' },
  'users.admin': { method: 'GET', path: '/users' },
};

let s: Running;
const tokens = {} as Record<Role, string>;
const ids = {} as Record<Role, string>;

beforeAll(async () => {
  s = await startServer({
    beforeListen: ({ app }) => {
      for (const operation of OPERATIONS) {
        if (REAL_ROUTE[operation] !== undefined) continue;
        app.get(`/probe/${operation}`, { config: { operation } }, async (request) => ({
          operation,
          user: request.user?.id,
        }));
      }
    },
  });
  for (const role of ROLES) {
    const email = `${role.toLowerCase()}@example.test`;
    ids[role] = (await addUser(s, email, role)).id;
    tokens[role] = (await login(s.url, email)).accessToken;
  }
});
afterAll(async () => {
  await s.close();
  await removeDir(s.dataDir);
});

describe('the role × operation table', () => {
  it('is the documented hierarchy: admins everything, uploaders upload, the rest read', () => {
    expect(PERMISSIONS['users.admin']).toEqual(['ApiAdmin', 'Admin']);
    expect(PERMISSIONS['resources.upload']).toEqual(['ApiAdmin', 'Admin', 'ResourceUploader']);
    for (const op of OPERATIONS) expect(isAllowed('ApiAdmin', op)).toBe(true);
    for (const role of ROLES) expect(isAllowed(role, 'resources.get')).toBe(true);
    expect(isAllowed('Operator', 'cdnConfig.write')).toBe(false);
  });
});

describe('guardRequest', () => {
  for (const role of ROLES) {
    for (const operation of OPERATIONS) {
      const allowed = PERMISSIONS[operation].includes(role);
      it(`${role} ${allowed ? 'may' : 'may not'} ${operation}`, async () => {
        const r = await s.server.guardRequest(tokens[role], operation);
        expect(r.isAuthenticated).toBe(true);
        expect(r.isAuthorized).toBe(allowed);
        expect(r.context).toMatchObject({ id: ids[role], role, disabled: false });
        if (allowed) expect(r.error).toBeNull();
        else expect(r.error).toMatchObject({ code: 'ERR_FORBIDDEN', status: 403 });
      });
    }
  }

  it('accepts an Authorization header value as well as a bare token', async () => {
    const r = await s.server.guardRequest(`Bearer ${tokens.Operator}`, 'me');
    expect(r.isAuthorized).toBe(true);
  });

  it('without a token: not authenticated, 401, no context', async () => {
    for (const jwt of [undefined, '', 'Bearer ', 'not.a.jwt']) {
      const r = await s.server.guardRequest(jwt, 'me');
      expect(r).toMatchObject({ isAuthenticated: false, isAuthorized: false, context: null });
      expect(r.error).toMatchObject({ code: 'ERR_UNAUTHORIZED', status: 401 });
    }
  });

  it('denies an operation that is not in the table', async () => {
    const r = await s.server.guardRequest(tokens.ApiAdmin, 'resources.burn' as Operation);
    expect(r).toMatchObject({ isAuthenticated: true, isAuthorized: false });
  });

  it('reads the role from the store, not from the token', async () => {
    const { id } = await addUser(s, 'changing@example.test', 'Operator');
    const { accessToken } = await login(s.url, 'changing@example.test');
    expect((await s.server.guardRequest(accessToken, 'resources.upload')).isAuthorized).toBe(false);
    await patchUser(s, id, { role: 'ResourceUploader' });
    const r = await s.server.guardRequest(accessToken, 'resources.upload');
    expect(r.isAuthorized).toBe(true);
    expect(r.context?.role).toBe('ResourceUploader');
  });

  it('a token forged with an elevated role claim gains nothing', async () => {
    const now = Math.floor(Date.now() / 1000);
    // Even a correctly signed token: the role claim is informational, the store decides.
    const token = await new SignJWT({
      nameid: ids.Operator,
      unique_name: 'operator@example.test',
      role: 'ApiAdmin',
      jti: 'x',
    })
      .setProtectedHeader({ alg: 'EdDSA', typ: 'at+jwt' })
      .setIssuer('sluice')
      .setAudience('sluice-api')
      .setIssuedAt(now)
      .setExpirationTime(now + 600)
      .sign(s.server.keys.privateKey);
    const r = await s.server.guardRequest(token, 'users.admin');
    expect(r).toMatchObject({ isAuthenticated: true, isAuthorized: false });
    expect(r.context?.role).toBe('Operator');
  });

  it('only an ApiAdmin may act on ApiAdmin accounts (targetRole)', async () => {
    expect(
      (await s.server.guardRequest(tokens.Admin, 'users.admin', { targetRole: 'ApiAdmin' }))
        .isAuthorized,
    ).toBe(false);
    expect(
      (await s.server.guardRequest(tokens.Admin, 'users.admin', { targetRole: 'Admin' }))
        .isAuthorized,
    ).toBe(true);
    expect(
      (await s.server.guardRequest(tokens.ApiAdmin, 'users.admin', { targetRole: 'ApiAdmin' }))
        .isAuthorized,
    ).toBe(true);
  });
});

describe('the same table through real HTTP routes', () => {
  for (const role of ROLES) {
    for (const operation of OPERATIONS) {
      const allowed = PERMISSIONS[operation].includes(role);
      const route = REAL_ROUTE[operation] ?? { method: 'GET', path: `/probe/${operation}` };
      it(`${route.method} ${route.path} as ${role} → ${allowed ? 200 : 403}`, async () => {
        const r = await call(s.url, route.method, route.path, { token: tokens[role] });
        expect(r.status).toBe(allowed ? 200 : 403);
        if (!allowed) expect(r.body).toMatchObject({ code: 'ERR_FORBIDDEN' });
      });
    }
  }

  it('without a token every guarded route answers 401 JSON', async () => {
    for (const operation of OPERATIONS) {
      const route = REAL_ROUTE[operation] ?? { method: 'GET', path: `/probe/${operation}` };
      const r = await call(s.url, route.method, route.path);
      expect(r.status).toBe(401);
      expect(r.body).toMatchObject({ code: 'ERR_UNAUTHORIZED' });
    }
  });

  it('every route of the server names an operation; one that does not fails to register', async () => {
    for (const r of s.server.routes) {
      expect(
        r.operation === 'public' || (OPERATIONS as readonly string[]).includes(r.operation),
      ).toBe(true);
    }
    const dataDir = await tempDir();
    const t = await createServer({ dataDir, scrypt: TEST_SCRYPT });
    try {
      expect(() => t.app.get('/unguarded', async () => 'open')).toThrow(/no guarded operation/);
    } finally {
      await t.close();
      await removeDir(dataDir);
    }
  });
});
