import { copyFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Session } from '@sluice/core';
import { SIGNING_KEY_FILE } from '@sluice/server';
import { describe, expect, it } from 'vitest';
import {
  ADMIN_EMAIL,
  type ApiServer,
  countingFetch,
  initDataDir,
  PASSWORD,
  rejection,
  startForTest,
} from './apiServer.js';

/** A man in the middle: logins meant for the real API are answered by `other`. */
function loginsAnsweredBy(other: ApiServer, calls: string[] = []): typeof fetch {
  return countingFetch(calls, (input, init) => {
    const url = new URL(String(input));
    if (url.pathname === '/login') return fetch(`${other.url}/login`, init);
    return fetch(input, init);
  });
}

describe('Session token verification', () => {
  it('refuses a token signed by another server: ERR_TOKEN_INVALID after one JWKS refetch', async () => {
    const api = await startForTest();
    const impostor = await startForTest();
    const calls: string[] = [];
    const session = new Session({ apiUrl: api.url, fetch: loginsAnsweredBy(impostor, calls) });
    session.setCredentials(ADMIN_EMAIL, PASSWORD);
    const e = await rejection(session.request('GET', '/me'));
    expect(e.code).toBe('ERR_TOKEN_INVALID');
    expect(e.message).toMatch(/key/);
    expect(session.user).toBeNull();
    // Fetched once, refetched once for the unknown kid, and the token was never sent anywhere.
    expect(api.hitCount('GET /.well-known/jwks.json')).toBe(2);
    expect(api.hitCount('GET /me')).toBe(0);
    expect(calls.filter((c) => c === 'GET /me')).toHaveLength(0);
  });

  it('refuses a token whose payload was altered after signing', async () => {
    const api = await startForTest();
    const tamper: typeof fetch = async (input, init) => {
      const res = await fetch(input, init);
      if (new URL(String(input)).pathname !== '/login') return res;
      const body = (await res.json()) as { accessToken: string };
      const [h, p, s] = body.accessToken.split('.') as [string, string, string];
      const claims = JSON.parse(Buffer.from(p, 'base64url').toString('utf8'));
      claims.exp += 3600;
      const forged = `${h}.${Buffer.from(JSON.stringify(claims)).toString('base64url')}.${s}`;
      return Response.json({ ...body, accessToken: forged }, { status: res.status });
    };
    const session = new Session({ apiUrl: api.url, fetch: tamper });
    session.setCredentials(ADMIN_EMAIL, PASSWORD);
    const e = await rejection(session.login());
    expect(e.code).toBe('ERR_TOKEN_INVALID');
    expect(e.message).toMatch(/signature/);
    expect(session.user).toBeNull();
  });

  it('checks iss and aud even when the signature is good', async () => {
    const api = await startForTest();
    // Same signing key, different issuer (a staging server sharing the key file, say).
    const dataDir = await initDataDir();
    await copyFile(join(api.dataDir, SIGNING_KEY_FILE), join(dataDir, SIGNING_KEY_FILE));
    const staging = await startForTest({ dataDir, issuer: 'sluice-staging' });
    const session = new Session({ apiUrl: api.url, fetch: loginsAnsweredBy(staging) });
    session.setCredentials(ADMIN_EMAIL, PASSWORD);
    const e = await rejection(session.login());
    expect(e.code).toBe('ERR_TOKEN_INVALID');
    expect(e.message).toMatch(/issuer/);

    // The same token is accepted by a session that expects that issuer: the check is the issuer.
    const trusting = new Session({
      apiUrl: api.url,
      issuer: 'sluice-staging',
      fetch: loginsAnsweredBy(staging),
    });
    trusting.setCredentials(ADMIN_EMAIL, PASSWORD);
    expect((await trusting.login()).email).toBe(ADMIN_EMAIL);

    const otherAudience = new Session({ apiUrl: api.url, audience: 'another-api' });
    otherAudience.setCredentials(ADMIN_EMAIL, PASSWORD);
    const e2 = await rejection(otherAudience.login());
    expect(e2.code).toBe('ERR_TOKEN_INVALID');
    expect(e2.message).toMatch(/aud/);
  });

  it('refuses tokens when the server publishes no JWKS, unless verification is turned off', async () => {
    const api = await startForTest();
    const noJwks: typeof fetch = (input, init) => {
      const url = new URL(String(input));
      if (url.pathname === '/.well-known/jwks.json') url.pathname = '/no-such-jwks';
      return fetch(url, init);
    };
    const strict = new Session({ apiUrl: api.url, fetch: noJwks });
    strict.setCredentials(ADMIN_EMAIL, PASSWORD);
    const e = await rejection(strict.login());
    expect(e.code).toBe('ERR_TOKEN_INVALID');
    expect(e.message).toMatch(/JWKS/);

    const lax = new Session({ apiUrl: api.url, fetch: noJwks, verifyTokens: false });
    lax.setCredentials(ADMIN_EMAIL, PASSWORD);
    expect((await lax.login()).role).toBe('ApiAdmin');
    await lax.request('GET', '/me');
  });
});
