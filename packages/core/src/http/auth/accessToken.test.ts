import { generateKeyPairSync, type KeyObject, sign } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { decodeToken, importJwks, unverifiedClaims, verifyDecoded } from './accessToken.js';

const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');
const NOW = 1_800_000_000;
const EXPECT = {
  issuer: 'sluice',
  audience: 'sluice-api',
  clockToleranceSeconds: 60,
  now: NOW * 1000,
};

function claims(extra: Record<string, unknown> = {}) {
  return {
    nameid: 'u1',
    unique_name: 'a@b.c',
    role: 'Operator',
    iss: 'sluice',
    aud: 'sluice-api',
    iat: NOW - 10,
    exp: NOW + 890,
    jti: 'j1',
    ...extra,
  };
}

function signToken(
  alg: 'EdDSA' | 'ES256',
  key: KeyObject,
  payload: unknown,
  header: Record<string, unknown> = {},
): string {
  const input = `${b64({ alg, typ: 'at+jwt', kid: 'k1', ...header })}.${b64(payload)}`;
  const sig =
    alg === 'EdDSA'
      ? sign(null, Buffer.from(input), key)
      : sign('sha256', Buffer.from(input), { key, dsaEncoding: 'ieee-p1363' });
  return `${input}.${sig.toString('base64url')}`;
}

function keyPair(alg: 'EdDSA' | 'ES256') {
  const { privateKey, publicKey } =
    alg === 'EdDSA'
      ? generateKeyPairSync('ed25519')
      : generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const jwks = { keys: [{ ...publicKey.export({ format: 'jwk' }), kid: 'k1', use: 'sig' }] };
  const key = importJwks(jwks).get('k1');
  if (key === undefined) throw new Error('key not imported');
  return { privateKey, key };
}

describe('access token verification', () => {
  for (const alg of ['EdDSA', 'ES256'] as const) {
    it(`${alg}: accepts a good token and returns its claims`, async () => {
      const { privateKey, key } = keyPair(alg);
      const token = signToken(alg, privateKey, claims());
      await expect(verifyDecoded(decodeToken(token), key, EXPECT)).resolves.toEqual({
        id: 'u1',
        email: 'a@b.c',
        role: 'Operator',
        iat: NOW - 10,
        exp: NOW + 890,
        jti: 'j1',
      });
    });
  }

  it('refuses a wrong signature, typ, alg, issuer, audience, expiry and missing claims', async () => {
    const { privateKey, key } = keyPair('EdDSA');
    const other = keyPair('EdDSA').privateKey;
    const cases: Array<[string, RegExp]> = [
      [signToken('EdDSA', other, claims()), /signature/],
      [signToken('EdDSA', privateKey, claims(), { typ: 'JWT' }), /typ/],
      [signToken('EdDSA', privateKey, claims(), { alg: 'none' }), /algorithm/],
      [signToken('EdDSA', privateKey, claims({ iss: 'x' })), /issuer/],
      [signToken('EdDSA', privateKey, claims({ aud: ['x', 'y'] })), /aud/],
      [signToken('EdDSA', privateKey, claims({ exp: NOW - 61, iat: NOW - 900 })), /expired/],
      [signToken('EdDSA', privateKey, claims({ exp: NOW - 20 })), /exp\/iat/],
      [signToken('EdDSA', privateKey, claims({ role: 7 })), /role/],
      [signToken('EdDSA', privateKey, claims({ jti: undefined })), /jti/],
    ];
    for (const [token, message] of cases) {
      const verified = verifyDecoded(decodeToken(token), key, EXPECT);
      await expect(verified).rejects.toThrow(message);
      await expect(verified).rejects.toMatchObject({ code: 'ERR_TOKEN_INVALID' });
    }
    // Within the clock tolerance an expired-looking token still passes (a slow local clock).
    const late = signToken('EdDSA', privateKey, claims({ exp: NOW - 30, iat: NOW - 900 }));
    expect((await verifyDecoded(decodeToken(late), key, EXPECT)).exp).toBe(NOW - 30);
  });

  it('refuses a token with a critical header parameter it does not know (crit), signature valid', async () => {
    const { privateKey, key } = keyPair('EdDSA');
    const token = signToken('EdDSA', privateKey, claims(), { crit: ['exp-ext'], 'exp-ext': 1 });
    const verified = verifyDecoded(decodeToken(token), key, EXPECT);
    await expect(verified).rejects.toThrow(/critical header parameters \(crit\)/);
    await expect(verified).rejects.toMatchObject({ code: 'ERR_TOKEN_INVALID' });
    // The same token without crit passes: crit alone was refused.
    const plain = signToken('EdDSA', privateKey, claims(), { 'exp-ext': 1 });
    await expect(verifyDecoded(decodeToken(plain), key, EXPECT)).resolves.toMatchObject({
      id: 'u1',
    });
  });

  it('refuses malformed tokens without quoting them', () => {
    for (const bad of ['', 'a.b', 'a.b.c.d', 'a.b.c', '!!.e30.e30', `${b64([1])}.${b64({})}.AA`]) {
      expect(() => decodeToken(bad)).toThrow(/access token/);
    }
    try {
      decodeToken('secret-looking-token');
    } catch (e) {
      expect((e as Error).message).not.toContain('secret-looking-token');
    }
  });

  it('imports only public signing keys of supported types', () => {
    const { publicKey, privateKey } = generateKeyPairSync('ed25519');
    const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 }).publicKey;
    const keys = importJwks({
      keys: [
        { ...publicKey.export({ format: 'jwk' }), kid: 'ok' },
        { ...privateKey.export({ format: 'jwk' }), kid: 'private' },
        { ...publicKey.export({ format: 'jwk' }), kid: 'enc', use: 'enc' },
        { ...publicKey.export({ format: 'jwk' }), kid: 'mislabelled', alg: 'ES256' },
        { ...rsa.export({ format: 'jwk' }), kid: 'rsa' },
        { kty: 'OKP', crv: 'Ed25519', x: '!!', kid: 'broken' },
        { kty: 'OKP', crv: 'Ed25519' },
      ],
    });
    expect([...keys.keys()]).toEqual(['ok']);
    expect(() => importJwks({})).toThrow(/keys/);
  });

  it('unverifiedClaims reads claims for verifyTokens: false', () => {
    const { privateKey } = keyPair('EdDSA');
    expect(unverifiedClaims(signToken('EdDSA', privateKey, claims())).email).toBe('a@b.c');
  });
});
