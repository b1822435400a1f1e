// Hostile-input suite (docs/SECURITY.md): forged, foreign, stale and misused tokens against the
// privileged routes, login enumeration and the login rate limits, on the real server.
import { createPublicKey } from 'node:crypto';
import { decodeJwt, exportJWK, generateKeyPair, SignJWT } from 'jose';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_SCRYPT_PARAMS } from '../auth/passwordHash.js';
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
import { createUser } from '../users/service.js';
import { expectError, expectHealthy, type Hostile, raw, startHostile } from './test-hostile.js';

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

const enc = (o: unknown) => Buffer.from(JSON.stringify(o)).toString('base64url');
const now = () => Math.floor(Date.now() / 1000);

/** Claims that would make the Operator an ApiAdmin, if the server believed them. */
function escalated(over: Record<string, unknown> = {}) {
  return {
    nameid: h.ids.Operator,
    unique_name: h.emails.Operator,
    role: 'ApiAdmin',
    jti: 'forged',
    iss: 'sluice',
    aud: 'sluice-api',
    iat: now(),
    exp: now() + 600,
    ...over,
  };
}

/** Tries to create an ApiAdmin with `token`; no such user may appear. */
async function tryCreateAdmin(token: string) {
  const email = `intruder-${Math.random().toString(36).slice(2)}@example.test`;
  const r = await call(h.url, 'POST', '/users', {
    token,
    json: { email, password: PASSWORD, role: 'ApiAdmin' },
  });
  expect(await h.server.store.users.byEmail(email)).toBeUndefined();
  return r;
}

function signWith(
  key: Parameters<SignJWT['sign']>[0],
  header: Record<string, unknown>,
  claims = escalated(),
) {
  return new SignJWT(claims)
    .setProtectedHeader({ alg: 'EdDSA', typ: 'at+jwt', ...header } as never)
    .sign(key);
}

describe('forged and foreign access tokens on an admin route', () => {
  it('the same claims signed with the server key are accepted (control)', async () => {
    const token = await signWith(
      h.server.keys.privateKey,
      { kid: h.server.keys.kid },
      escalated({ nameid: h.ids.ApiAdmin }),
    );
    expect((await call(h.url, 'GET', '/users', { token })).status).toBe(200);
  });

  it('alg none claiming ApiAdmin is 401 and creates no user', async () => {
    for (const alg of ['none', 'None', 'NONE']) {
      const token = `${enc({ alg, typ: 'at+jwt' })}.${enc(escalated())}.`;
      expectError(await tryCreateAdmin(token), 401, 'ERR_UNAUTHORIZED');
    }
  });

  it('HS256 signed with the server public key (algorithm confusion) is 401', async () => {
    const jwk = h.server.keys.jwks.keys[0];
    const pem = String(
      createPublicKey({ key: jwk as never, format: 'jwk' }).export({ type: 'spki', format: 'pem' }),
    );
    for (const secret of [
      new TextEncoder().encode(pem),
      Buffer.from(String(jwk?.x), 'base64url'),
    ]) {
      const token = await new SignJWT(escalated())
        .setProtectedHeader({ alg: 'HS256', typ: 'at+jwt', kid: h.server.keys.kid })
        .sign(secret);
      expectError(await tryCreateAdmin(token), 401, 'ERR_UNAUTHORIZED');
    }
  });

  it('a real access token from another sluice server (same iss and aud) is 401', async () => {
    const o = await another();
    const user = await addUser(o, h.emails.ApiAdmin, 'ApiAdmin');
    const foreign = (await login(o.url, h.emails.ApiAdmin)).accessToken;
    expect(decodeJwt(foreign)).toMatchObject({ iss: 'sluice', aud: 'sluice-api', nameid: user.id });
    expectError(await tryCreateAdmin(foreign), 401, 'ERR_UNAUTHORIZED');
    // Even forged to name a user of this server, with this server's kid.
    const { privateKey } = await generateKeyPair('EdDSA', { crv: 'Ed25519' });
    const token = await signWith(privateKey, { kid: h.server.keys.kid });
    expectError(await tryCreateAdmin(token), 401, 'ERR_UNAUTHORIZED');
  });

  it('a genuine token whose payload was edited after signing (role raised) is 401', async () => {
    const [head, , sig] = h.tokens.Operator.split('.');
    const claims = decodeJwt(h.tokens.Operator);
    const edited = `${head}.${enc({ ...claims, role: 'ApiAdmin' })}.${sig}`;
    expectError(await tryCreateAdmin(edited), 401, 'ERR_UNAUTHORIZED');
    const swapped = `${head}.${enc({ ...claims, nameid: h.ids.ApiAdmin })}.${sig}`;
    expectError(await tryCreateAdmin(swapped), 401, 'ERR_UNAUTHORIZED');
  });

  it('a token that brings its own key in the header (jwk, jku, x5u) is 401', async () => {
    const { privateKey, publicKey } = await generateKeyPair('EdDSA', { crv: 'Ed25519' });
    const jwk = await exportJWK(publicKey);
    for (const header of [
      { jwk },
      { jku: `${h.url}/.well-known/jwks.json` },
      { x5u: 'http://127.0.0.1:1/cert.pem' },
      { kid: '../../../../dev/null' },
    ]) {
      expectError(
        await tryCreateAdmin(await signWith(privateKey, header)),
        401,
        'ERR_UNAUTHORIZED',
      );
    }
  });

  it('an expired token of the real admin is 401', async () => {
    const token = await signWith(
      h.server.keys.privateKey,
      { kid: h.server.keys.kid },
      escalated({ nameid: h.ids.ApiAdmin, iat: now() - 1000, exp: now() - 5 }),
    );
    expectError(await tryCreateAdmin(token), 401, 'ERR_UNAUTHORIZED');
  });

  it('an iat 120 s in the future is 401; 30 s (within the 60 s skew) is accepted', async () => {
    const at = (iat: number) =>
      signWith(
        h.server.keys.privateKey,
        { kid: h.server.keys.kid },
        escalated({ nameid: h.ids.ApiAdmin, iat, exp: iat + 600 }),
      );
    expectError(await tryCreateAdmin(await at(now() + 120)), 401, 'ERR_UNAUTHORIZED');
    expect((await call(h.url, 'GET', '/me', { token: await at(now() + 30) })).status).toBe(200);
  });

  it('the wrong audience, issuer or token type with the server key is 401', async () => {
    const key = h.server.keys.privateKey;
    const admin = { nameid: h.ids.ApiAdmin };
    for (const [header, claims] of [
      [{}, escalated({ ...admin, aud: 'another-api' })],
      [{}, escalated({ ...admin, aud: ['another-api', 'x'] })],
      [{}, escalated({ ...admin, iss: 'evil' })],
      [{ typ: 'JWT' }, escalated(admin)],
      [{ typ: 'refresh+jwt' }, escalated(admin)],
    ] as const) {
      const token = await signWith(key, { kid: h.server.keys.kid, ...header }, claims);
      expectError(await tryCreateAdmin(token), 401, 'ERR_UNAUTHORIZED');
    }
  });

  it('garbage bearer values (8 KiB, many dots, not base64, two tokens) are 401', async () => {
    for (const value of [
      'A'.repeat(8192),
      '.'.repeat(500),
      'a.b.c.d.e',
      '%%%.%%%.%%%',
      `${h.tokens.ApiAdmin} ${h.tokens.ApiAdmin}`,
      `${h.tokens.ApiAdmin},${h.tokens.ApiAdmin}`,
    ]) {
      const r = await raw(h.url, 'POST', '/users', {
        headers: { authorization: `Bearer ${value}`, 'content-type': 'application/json' },
        body: JSON.stringify({ email: 'g@example.test', password: PASSWORD, role: 'ApiAdmin' }),
      });
      expectError(r, 401, 'ERR_UNAUTHORIZED');
    }
  });

  it('a valid token of a lower role cannot escalate: Operator 403, Admin making an ApiAdmin 403', async () => {
    expectError(await tryCreateAdmin(h.tokens.Operator), 403, 'ERR_FORBIDDEN');
    expectError(await tryCreateAdmin(h.tokens.Admin), 403, 'ERR_FORBIDDEN');
    const self = await call(h.url, 'POST', `/users/${h.ids.Operator}/role`, {
      token: h.tokens.Operator,
      json: { role: 'ApiAdmin' },
    });
    expectError(self, 403, 'ERR_FORBIDDEN');
    expect((await h.server.store.users.get(h.ids.Operator))?.role).toBe('Operator');
  });
});

describe('tokens used for what they are not', () => {
  it('a refresh token presented as an access token is 401', async () => {
    const { refreshToken } = await login(h.url, 'health@example.test');
    expectError(await call(h.url, 'GET', '/me', { token: refreshToken }), 401, 'ERR_UNAUTHORIZED');
  });

  it('an access token presented as a refresh token is refused (400 by shape) and starts nothing', async () => {
    const { accessToken } = await login(h.url, h.emails.Validator);
    const r = await call(h.url, 'POST', '/token/refresh', { json: { refreshToken: accessToken } });
    expectError(r, 400, 'ERR_BAD_REQUEST');
    const short = accessToken.split('.')[2] ?? '';
    const r2 = await call(h.url, 'POST', '/token/refresh', { json: { refreshToken: short } });
    expectError(r2, 401, 'ERR_UNAUTHORIZED');
  });

  it('a stolen refresh token replayed after the owner rotated it revokes the family for both', async () => {
    const stolen = (await login(h.url, h.emails.Validator)).refreshToken;
    const owner = await call(h.url, 'POST', '/token/refresh', { json: { refreshToken: stolen } });
    expect(owner.status).toBe(200);
    const replay = await call(h.url, 'POST', '/token/refresh', { json: { refreshToken: stolen } });
    expectError(replay, 401, 'ERR_UNAUTHORIZED');
    const ownerNext = (owner.body as { refreshToken: string }).refreshToken;
    const after = await call(h.url, 'POST', '/token/refresh', {
      json: { refreshToken: ownerNext },
    });
    expectError(after, 401, 'ERR_UNAUTHORIZED');
  });

  it('after logout the refresh token is dead', async () => {
    const { refreshToken } = await login(h.url, h.emails.Validator);
    expect((await call(h.url, 'POST', '/logout', { json: { refreshToken } })).status).toBe(204);
    const r = await call(h.url, 'POST', '/token/refresh', { json: { refreshToken } });
    expectError(r, 401, 'ERR_UNAUTHORIZED');
  });

  it('the tokens of a disabled user stop working at once', async () => {
    const victim = await addUser(h, 'to-disable@example.test', 'Admin');
    const { accessToken, refreshToken } = await login(h.url, 'to-disable@example.test');
    expect((await call(h.url, 'GET', '/users', { token: accessToken })).status).toBe(200);
    const off = await call(h.url, 'POST', `/users/${victim.id}/disable`, {
      token: h.tokens.ApiAdmin,
    });
    expect(off.status).toBe(200);
    expectError(
      await call(h.url, 'GET', '/users', { token: accessToken }),
      401,
      'ERR_UNAUTHORIZED',
    );
    expectError(
      await call(h.url, 'POST', '/token/refresh', { json: { refreshToken } }),
      401,
      'ERR_UNAUTHORIZED',
    );
  });
});

describe('login enumeration and limits', () => {
  it('unknown user, wrong password and disabled account answer identically', async () => {
    const disabled = await addUser(h, 'disabled-enum@example.test', 'Operator');
    await patchUser(h, disabled.id, { disabled: true });
    const attempt = (email: string, password: string) =>
      call(h.url, 'POST', '/login', { json: { email, password } });
    const replies = [
      await attempt(h.emails.Operator, 'not the password at all'),
      await attempt('nobody-at-all@example.test', 'not the password at all'),
      await attempt('disabled-enum@example.test', PASSWORD),
    ];
    for (const r of replies) {
      expectError(r, 401, 'ERR_UNAUTHORIZED');
      expect(r.text).toBe(replies[0]?.text);
      expect([...r.headers.keys()].sort()).toEqual([...(replies[0]?.headers.keys() ?? [])].sort());
    }
  });

  it('unknown user and wrong password take similar time (medians of 9 within a factor of 3)', async () => {
    const t = await another({ scrypt: DEFAULT_SCRYPT_PARAMS });
    await createUser(
      t.server.store,
      { email: 'timed@example.test', password: PASSWORD, role: 'Operator' },
      { scrypt: DEFAULT_SCRYPT_PARAMS },
    );
    const time = async (email: string) => {
      const start = performance.now();
      const r = await call(t.url, 'POST', '/login', {
        json: { email, password: 'not the password at all' },
      });
      expect(r.status).toBe(401);
      return performance.now() - start;
    };
    const known: number[] = [];
    const unknown: number[] = [];
    // Interleaved, so load from other processes hits both series alike.
    for (let i = 0; i < 9; i++) {
      known.push(await time('timed@example.test'));
      unknown.push(await time(`ghost-${i}@example.test`));
    }
    const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[4] ?? 0;
    const ratio = median(unknown) / median(known);
    expect(ratio).toBeGreaterThan(1 / 3);
    expect(ratio).toBeLessThan(3);
  });

  it('login is limited per account: the 11th failure is 429 with Retry-After, even with the right password', async () => {
    const t = await another();
    await addUser(t, 'target@example.test', 'Operator');
    for (let i = 0; i < 10; i++) {
      const r = await call(t.url, 'POST', '/login', {
        json: { email: 'target@example.test', password: `guess number ${i} xx` },
      });
      expect(r.status).toBe(401);
    }
    const right = await call(t.url, 'POST', '/login', {
      json: { email: 'target@example.test', password: PASSWORD },
    });
    expectError(right, 429, 'ERR_RATE_LIMITED');
    expect(Number(right.headers.get('retry-after'))).toBeGreaterThan(0);
    // Another account from the same address is not affected.
    await addUser(t, 'bystander@example.test', 'Operator');
    expect((await login(t.url, 'bystander@example.test')).accessToken).toBeTruthy();
    expect((await call(t.url, 'GET', '/.well-known/jwks.json')).status).toBe(200);
  });

  it('an unknown account is limited like a known one (the 429 reveals nothing)', async () => {
    const t = await another();
    const statuses: number[] = [];
    for (let i = 0; i < 11; i++) {
      const r = await call(t.url, 'POST', '/login', {
        json: { email: 'ghost@example.test', password: `guess number ${i} xx` },
      });
      statuses.push(r.status);
    }
    expect(statuses).toEqual([...Array(10).fill(401), 429]);
  });

  it('login is limited per address: past the limit every email is 429, X-Forwarded-For does not help', async () => {
    const t = await another({
      loginLimits: {
        perAddress: { limit: 5, windowSeconds: 60 },
        perAccount: { limit: 100, windowSeconds: 60 },
      },
    });
    for (let i = 0; i < 5; i++) {
      const r = await call(t.url, 'POST', '/login', {
        json: { email: `spray-${i}@example.test`, password: 'not the password at all' },
      });
      expect(r.status).toBe(401);
    }
    const spoofed: Record<string, string>[] = [
      {},
      { 'x-forwarded-for': '203.0.113.9' },
      { 'x-real-ip': '198.51.100.1' },
    ];
    for (const headers of spoofed) {
      const r = await call(t.url, 'POST', '/login', {
        headers,
        json: { email: 'fresh@example.test', password: 'not the password at all' },
      });
      expectError(r, 429, 'ERR_RATE_LIMITED');
    }
    expect((await call(t.url, 'GET', '/.well-known/jwks.json')).status).toBe(200);
  });
});
