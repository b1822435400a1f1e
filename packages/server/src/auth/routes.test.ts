import { createPublicKey } from 'node:crypto';
import {
  createLocalJWKSet,
  createRemoteJWKSet,
  decodeJwt,
  decodeProtectedHeader,
  generateKeyPair,
  jwtVerify,
  SignJWT,
} from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  addUser,
  call,
  login,
  ON_POSTGRES,
  PASSWORD,
  type Running,
  removeDir,
  startServer,
} from '../test-helpers.js';
import { createUser } from '../users/service.js';
import { DEFAULT_SCRYPT_PARAMS } from './passwordHash.js';
import { MAX_FAMILIES_PER_USER, PREVIOUS_HASHES_KEPT } from './tokens.js';

let s: Running;
let adminId: string;
beforeAll(async () => {
  s = await startServer();
  adminId = (await addUser(s, 'admin@example.test', 'ApiAdmin')).id;
  await addUser(s, 'op@example.test', 'Operator');
});
afterAll(async () => {
  await s.close();
  await removeDir(s.dataDir);
});

describe('POST /login', () => {
  it('returns an access token, a refresh token and expiresIn', async () => {
    const r = await call(s.url, 'POST', '/login', {
      json: { email: 'Admin@Example.test ', password: PASSWORD },
    });
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ tokenType: 'Bearer', expiresIn: 900 });
    const body = r.body as { accessToken: string; refreshToken: string };
    expect(body.accessToken.split('.')).toHaveLength(3);
    expect(body.refreshToken).toMatch(/^[A-Za-z0-9_-]{22}\.[A-Za-z0-9_-]{43}$/);
  });

  it('carries nameid, unique_name, role, exp, iat, jti, iss and aud, signed EdDSA with kid', async () => {
    const { accessToken } = await login(s.url, 'admin@example.test');
    const claims = decodeJwt(accessToken);
    const now = Math.floor(Date.now() / 1000);
    expect(claims).toMatchObject({
      nameid: adminId,
      unique_name: 'admin@example.test',
      role: 'ApiAdmin',
      iss: 'sluice',
      aud: 'sluice-api',
    });
    expect(typeof claims.jti).toBe('string');
    expect(Math.abs((claims.iat ?? 0) - now)).toBeLessThanOrEqual(5);
    expect((claims.exp ?? 0) - (claims.iat ?? 0)).toBe(900);
    expect(decodeProtectedHeader(accessToken)).toEqual({
      alg: 'EdDSA',
      kid: s.server.keys.kid,
      typ: 'at+jwt',
    });
    const second = await login(s.url, 'admin@example.test');
    expect(decodeJwt(second.accessToken).jti).not.toBe(claims.jti);
  });

  it('answers wrong password and unknown user identically', async () => {
    const wrong = await call(s.url, 'POST', '/login', {
      json: { email: 'op@example.test', password: 'not the password at all' },
    });
    const unknown = await call(s.url, 'POST', '/login', {
      json: { email: 'nobody@example.test', password: 'not the password at all' },
    });
    expect(wrong.status).toBe(401);
    expect(unknown.status).toBe(401);
    expect(wrong.text).toBe(unknown.text);
    expect(wrong.body).toEqual({ error: 'invalid email or password', code: 'ERR_UNAUTHORIZED' });
    expect(wrong.headers.get('content-type')).toBe(unknown.headers.get('content-type'));
  });

  it('spends as long on an unknown user as on a wrong password (scrypt on a dummy hash)', async () => {
    const t = await startServer({ scrypt: DEFAULT_SCRYPT_PARAMS });
    try {
      await createUser(
        t.server.store,
        { email: 'slow@example.test', password: PASSWORD, role: 'Operator' },
        { scrypt: DEFAULT_SCRYPT_PARAMS },
      );
      const attempt = async (email: string) => {
        const start = performance.now();
        const r = await call(t.url, 'POST', '/login', {
          json: { email, password: 'not the password at all' },
        });
        expect(r.status).toBe(401);
        return performance.now() - start;
      };
      // Interleaved, so a burst of load from other test processes hits both series alike.
      const wrongTimes: number[] = [];
      const unknownTimes: number[] = [];
      for (let i = 0; i < 5; i++) {
        wrongTimes.push(await attempt('slow@example.test'));
        unknownTimes.push(await attempt(`ghost${i}@example.test`));
      }
      const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[2] ?? 0;
      const wrong = median(wrongTimes);
      const unknown = median(unknownTimes);
      // Without the dummy hash an unknown user answers in about 1 ms against ~150 ms.
      expect(unknown).toBeGreaterThan(wrong * 0.25);
      expect(wrong).toBeGreaterThan(unknown * 0.25);
    } finally {
      await t.close();
      await removeDir(t.dataDir);
    }
  });

  it('refuses bodies without email or password with a JSON 400', async () => {
    const r = await call(s.url, 'POST', '/login', { json: { email: 'op@example.test' } });
    expect(r.status).toBe(400);
    expect(r.body).toMatchObject({ code: 'ERR_BAD_REQUEST' });
  });
});

describe('GET /.well-known/jwks.json', () => {
  it('verifies issued tokens with jose and exposes no private key', async () => {
    const { accessToken } = await login(s.url, 'op@example.test');
    const jwks = createRemoteJWKSet(new URL(`${s.url}/.well-known/jwks.json`));
    const { payload } = await jwtVerify(accessToken, jwks, {
      issuer: 'sluice',
      audience: 'sluice-api',
      algorithms: ['EdDSA'],
    });
    expect(payload.unique_name).toBe('op@example.test');
    const r = await call(s.url, 'GET', '/.well-known/jwks.json');
    expect(r.text).not.toContain('"d"');
  });
});

describe('access token verification', () => {
  const claimsFor = (over: Record<string, unknown> = {}) => ({
    nameid: adminId,
    unique_name: 'admin@example.test',
    role: 'ApiAdmin',
    jti: 'test-jti',
    ...over,
  });
  const sign = (
    key: Parameters<SignJWT['sign']>[0],
    opts: { alg?: string; iat?: number; exp?: number; iss?: string; aud?: string; typ?: string },
  ) => {
    const now = Math.floor(Date.now() / 1000);
    return new SignJWT(claimsFor())
      .setProtectedHeader({ alg: opts.alg ?? 'EdDSA', typ: opts.typ ?? 'at+jwt' })
      .setIssuer(opts.iss ?? 'sluice')
      .setAudience(opts.aud ?? 'sluice-api')
      .setIssuedAt(opts.iat ?? now)
      .setExpirationTime(opts.exp ?? now + 600)
      .sign(key);
  };
  const me = async (token: string) => call(s.url, 'GET', '/me', { token });

  it('accepts a token made the same way with the server key (the negative cases are meaningful)', async () => {
    const r = await me(await sign(s.server.keys.privateKey, {}));
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ user: { id: adminId, role: 'ApiAdmin' } });
  });

  it('refuses a missing, garbage or non-Bearer token', async () => {
    const cases: Record<string, string>[] = [
      {},
      { authorization: 'Bearer ' },
      { authorization: 'Bearer a.b.c' },
      { authorization: 'Basic b3A6cGFzcw==' },
    ];
    for (const headers of cases) {
      const r = await call(s.url, 'GET', '/me', { headers });
      expect(r.status).toBe(401);
      expect(r.body).toMatchObject({ code: 'ERR_UNAUTHORIZED' });
    }
  });

  it('refuses an expired token', async () => {
    const now = Math.floor(Date.now() / 1000);
    const r = await me(await sign(s.server.keys.privateKey, { iat: now - 1000, exp: now - 100 }));
    expect(r.status).toBe(401);
    expect(r.body).toEqual({ error: 'access token expired', code: 'ERR_UNAUTHORIZED' });
  });

  it('refuses an iat more than 60 s in the future', async () => {
    const now = Math.floor(Date.now() / 1000);
    const r = await me(await sign(s.server.keys.privateKey, { iat: now + 120, exp: now + 900 }));
    expect(r.status).toBe(401);
  });

  it('refuses alg none', async () => {
    const enc = (o: unknown) => Buffer.from(JSON.stringify(o)).toString('base64url');
    const now = Math.floor(Date.now() / 1000);
    const payload = { ...claimsFor(), iss: 'sluice', aud: 'sluice-api', iat: now, exp: now + 600 };
    for (const alg of ['none', 'None']) {
      const token = `${enc({ alg, typ: 'at+jwt' })}.${enc(payload)}.`;
      expect((await me(token)).status).toBe(401);
    }
  });

  it('refuses HS256 signed with the public key (algorithm confusion)', async () => {
    const publicJwk = s.server.keys.jwks.keys[0];
    const pem = createPublicKey({ key: publicJwk as never, format: 'jwk' }).export({
      type: 'spki',
      format: 'pem',
    });
    for (const secret of [
      new TextEncoder().encode(String(pem)),
      new TextEncoder().encode(JSON.stringify(publicJwk)),
      Buffer.from(String(publicJwk?.x), 'base64url'),
    ]) {
      const token = await sign(secret, { alg: 'HS256' });
      expect((await me(token)).status).toBe(401);
    }
  });

  it('refuses a token signed by another Ed25519 key, even with our kid', async () => {
    const { privateKey } = await generateKeyPair('EdDSA', { crv: 'Ed25519' });
    const now = Math.floor(Date.now() / 1000);
    const token = await new SignJWT(claimsFor())
      .setProtectedHeader({ alg: 'EdDSA', typ: 'at+jwt', kid: s.server.keys.kid })
      .setIssuer('sluice')
      .setAudience('sluice-api')
      .setIssuedAt(now)
      .setExpirationTime(now + 600)
      .sign(privateKey);
    expect((await me(token)).status).toBe(401);
  });

  it('refuses the wrong issuer, audience or token type', async () => {
    const key = s.server.keys.privateKey;
    expect((await me(await sign(key, { iss: 'someone-else' }))).status).toBe(401);
    expect((await me(await sign(key, { aud: 'another-api' }))).status).toBe(401);
    expect((await me(await sign(key, { typ: 'JWT' }))).status).toBe(401);
  });

  it('a verifier with the JWKS agrees with the server on which tokens are ours', async () => {
    const jwks = createLocalJWKSet(s.server.keys.jwks);
    const { privateKey } = await generateKeyPair('EdDSA', { crv: 'Ed25519' });
    await expect(jwtVerify(await sign(privateKey, {}), jwks)).rejects.toThrow();
    await expect(jwtVerify(await sign(s.server.keys.privateKey, {}), jwks)).resolves.toBeDefined();
  });
});

describe('refresh tokens', () => {
  it('rotate: each refresh returns a new pair and the new refresh token works', async () => {
    const first = await login(s.url, 'op@example.test');
    const r1 = await call(s.url, 'POST', '/token/refresh', {
      json: { refreshToken: first.refreshToken },
    });
    expect(r1.status).toBe(200);
    const second = r1.body as { accessToken: string; refreshToken: string; expiresIn: number };
    expect(second.refreshToken).not.toBe(first.refreshToken);
    expect(second.expiresIn).toBe(900);
    expect((await call(s.url, 'GET', '/me', { token: second.accessToken })).status).toBe(200);
    const r2 = await call(s.url, 'POST', '/token/refresh', {
      json: { refreshToken: second.refreshToken },
    });
    expect(r2.status).toBe(200);
  });

  it('reusing a rotated-out token revokes the whole family', async () => {
    const first = await login(s.url, 'op@example.test');
    const rotated = await call(s.url, 'POST', '/token/refresh', {
      json: { refreshToken: first.refreshToken },
    });
    const current = (rotated.body as { refreshToken: string }).refreshToken;
    const reuse = await call(s.url, 'POST', '/token/refresh', {
      json: { refreshToken: first.refreshToken },
    });
    expect(reuse.status).toBe(401);
    expect(reuse.body).toMatchObject({ code: 'ERR_UNAUTHORIZED' });
    // The legitimate holder's current token is dead too: the family is revoked.
    const after = await call(s.url, 'POST', '/token/refresh', { json: { refreshToken: current } });
    expect(after.status).toBe(401);
    expect(after.body).toMatchObject({ error: 'refresh token revoked' });
    // Other logins of the same user are separate families and keep working.
    const other = await login(s.url, 'op@example.test');
    expect(
      (await call(s.url, 'POST', '/token/refresh', { json: { refreshToken: other.refreshToken } }))
        .status,
    ).toBe(200);
  });

  it(`detects reuse of any of the last ${PREVIOUS_HASHES_KEPT} rotated-out tokens`, async () => {
    const first = await login(s.url, 'op@example.test');
    let current = first.refreshToken;
    for (let i = 0; i < PREVIOUS_HASHES_KEPT; i++) {
      const r = await call(s.url, 'POST', '/token/refresh', { json: { refreshToken: current } });
      expect(r.status).toBe(200);
      current = (r.body as { refreshToken: string }).refreshToken;
    }
    const reuse = await call(s.url, 'POST', '/token/refresh', {
      json: { refreshToken: first.refreshToken },
    });
    expect(reuse.status).toBe(401);
    expect(reuse.body).toMatchObject({ error: expect.stringContaining('reused') });
    const after = await call(s.url, 'POST', '/token/refresh', { json: { refreshToken: current } });
    expect(after.status).toBe(401);
  });

  it(`keeps at most ${MAX_FAMILIES_PER_USER} logins per user, dropping the oldest`, async () => {
    const user = await addUser(s, 'many-logins@example.test', 'Operator');
    const sessions = [];
    for (let i = 0; i < MAX_FAMILIES_PER_USER + 1; i++) {
      sessions.push(await s.server.tokens.startSession(user));
    }
    const families = await s.server.store.families.ofUser(user.id);
    expect(families).toHaveLength(MAX_FAMILIES_PER_USER);
    const oldest = sessions[0]?.refreshToken;
    const newest = sessions.at(-1)?.refreshToken;
    expect(
      (await call(s.url, 'POST', '/token/refresh', { json: { refreshToken: oldest } })).status,
    ).toBe(401);
    expect(
      (await call(s.url, 'POST', '/token/refresh', { json: { refreshToken: newest } })).status,
    ).toBe(200);
  });

  it('two concurrent refreshes with the same token: exactly one succeeds', async () => {
    const { refreshToken } = await login(s.url, 'op@example.test');
    const results = await Promise.all(
      [1, 2].map(() => call(s.url, 'POST', '/token/refresh', { json: { refreshToken } })),
    );
    expect(results.map((r) => r.status).sort()).toEqual([200, 401]);
  });

  it('refuses unknown and malformed refresh tokens', async () => {
    const { refreshToken } = await login(s.url, 'op@example.test');
    const forged = `${refreshToken.slice(0, 23)}${'A'.repeat(43)}`;
    for (const t of [forged, 'x', `${'A'.repeat(22)}.${'B'.repeat(43)}`]) {
      const r = await call(s.url, 'POST', '/token/refresh', { json: { refreshToken: t } });
      expect(r.status).toBe(401);
    }
    // A forged secret for a known family does not revoke it.
    expect((await call(s.url, 'POST', '/token/refresh', { json: { refreshToken } })).status).toBe(
      200,
    );
  });

  // Looks into the data directory's own files (blobs, database): the embedded backend's.
  it.skipIf(ON_POSTGRES)('stores only hashes of refresh tokens', async () => {
    const { refreshToken } = await login(s.url, 'op@example.test');
    const { readFile } = await import('node:fs/promises');
    const { DATABASE_FILE } = await import('../stores/store.js');
    // The database file and its write-ahead log: whatever holds the committed rows.
    const file = (
      await Promise.all(
        ['', '-wal'].map((x) =>
          readFile(`${s.dataDir}/${DATABASE_FILE}${x}`, 'latin1').catch(() => ''),
        ),
      )
    ).join('');
    expect(file).toContain(
      (
        await s.server.store.families.ofUser(
          (await s.server.store.users.byEmail('op@example.test'))?.id ?? '',
        )
      )[0]?.currentHash ?? 'missing',
    );
    expect(file).not.toContain(refreshToken);
    expect(file).not.toContain(refreshToken.split('.')[1]);
  });
});

describe('POST /logout', () => {
  it('revokes the refresh family', async () => {
    const first = await login(s.url, 'op@example.test');
    const rotated = await call(s.url, 'POST', '/token/refresh', {
      json: { refreshToken: first.refreshToken },
    });
    const current = (rotated.body as { refreshToken: string }).refreshToken;
    const out = await call(s.url, 'POST', '/logout', { json: { refreshToken: current } });
    expect(out.status).toBe(204);
    const r = await call(s.url, 'POST', '/token/refresh', { json: { refreshToken: current } });
    expect(r.status).toBe(401);
    // Logging out twice, or with garbage, still answers 204.
    expect((await call(s.url, 'POST', '/logout', { json: { refreshToken: current } })).status).toBe(
      204,
    );
    expect((await call(s.url, 'POST', '/logout', { json: { refreshToken: 'x' } })).status).toBe(
      204,
    );
  });
});
