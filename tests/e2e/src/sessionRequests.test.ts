import {
  BadRequest,
  Conflict,
  isHttpError,
  NetworkError,
  NotFound,
  RateLimited,
  ServerError,
  Session,
  TooLarge,
} from '@sluice/core';
import type { SluiceServer } from '@sluice/server';
import { describe, expect, it } from 'vitest';
import {
  ADMIN_EMAIL,
  type ApiServer,
  countingFetch,
  PASSWORD,
  rejection,
  startForTest,
} from './apiServer.js';

/** Public test routes: `/flaky` fails with 503 `failures` times, `/broken` always with 500. */
function testRoutes(failures: number) {
  return (server: SluiceServer) => {
    let left = failures;
    const config = { operation: 'public' } as const;
    const flaky = async (
      _req: unknown,
      reply: { status(n: number): { send(b: unknown): void } },
    ) => {
      if (left > 0) {
        left -= 1;
        return reply.status(503).send({ error: 'warming up', code: 'ERR_INTERNAL' });
      }
      return reply.status(200).send({ ok: true });
    };
    server.app.get('/flaky', { config }, flaky);
    server.app.post('/flaky', { config }, flaky);
    server.app.put('/flaky', { config }, flaky);
    server.app.get('/broken', { config }, async () => {
      throw new Error('database on fire');
    });
    server.app.get('/slow', { config }, async (request) => {
      // Answers after 5 s unless the client goes away first.
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, 5000);
        request.raw.socket.once('close', () => {
          clearTimeout(timer);
          resolve();
        });
      });
      return { late: true };
    });
  };
}

const adminSession = (
  api: ApiServer,
  extra: Partial<ConstructorParameters<typeof Session>[0]> = {},
) => {
  const session = new Session({ apiUrl: api.url, retryBaseMs: 20, ...extra });
  session.setCredentials(ADMIN_EMAIL, PASSWORD);
  return session;
};

describe('Session retries', () => {
  it('retries an idempotent GET on 5xx until it succeeds', async () => {
    const api = await startForTest({ beforeListen: testRoutes(2) });
    const session = adminSession(api);
    expect(await session.request('GET', '/flaky', { auth: false })).toEqual({ ok: true });
    expect(api.hitCount('GET /flaky')).toBe(3);
  });

  it('gives up after `retries` extra attempts with a ServerError', async () => {
    const api = await startForTest({ beforeListen: testRoutes(0) });
    const session = adminSession(api, { retries: 2 });
    const e = await rejection(session.request('GET', '/broken', { auth: false }));
    expect(e).toBeInstanceOf(ServerError);
    expect(e.code).toBe('ERR_SERVER');
    expect((e as ServerError).status).toBe(500);
    expect((e as ServerError).serverMessage).toBe('internal server error');
    expect(e.message).not.toContain('database on fire');
    expect(api.hitCount('GET /broken')).toBe(3);
  });

  it('never retries a POST on 5xx unless told it is idempotent', async () => {
    const api = await startForTest({ beforeListen: testRoutes(1) });
    const session = adminSession(api);
    const e = await rejection(session.request('POST', '/flaky', { auth: false, json: {} }));
    expect(e).toBeInstanceOf(ServerError);
    expect((e as ServerError).method).toBe('POST');
    expect((e as ServerError).status).toBe(503);
    expect(api.hitCount('POST /flaky')).toBe(1);
    const ok = await session.request('POST', '/flaky', { auth: false, json: {}, idempotent: true });
    expect(ok).toEqual({ ok: true });
  });

  it('replays a body factory on retry, and never retries a one-shot stream body', async () => {
    const api = await startForTest({ beforeListen: testRoutes(1) });
    const session = adminSession(api);
    const headers = { 'content-type': 'application/json' };
    let made = 0;
    const body = () => {
      made += 1;
      return JSON.stringify({ n: made });
    };
    const ok = await session.request('POST', '/flaky', {
      auth: false,
      idempotent: true,
      headers,
      body,
    });
    expect(ok).toEqual({ ok: true });
    expect(made).toBe(2);

    const again = await startForTest({ beforeListen: testRoutes(1) });
    const stream = new Blob(['{}']).stream();
    const e = await rejection(
      adminSession(again).request('PUT', '/flaky', { auth: false, headers, body: stream }),
    );
    expect(e).toBeInstanceOf(ServerError);
    expect(again.hitCount('PUT /flaky')).toBe(1);
  });

  it('does not retry 4xx', async () => {
    const api = await startForTest();
    const calls: string[] = [];
    const session = adminSession(api, { fetch: countingFetch(calls) });
    const e = await rejection(session.request('GET', '/no/such/route'));
    expect(e).toBeInstanceOf(NotFound);
    expect(e.code).toBe('ERR_NOT_FOUND');
    const nf = e as NotFound;
    expect([nf.status, nf.method, nf.url, nf.serverCode]).toEqual([
      404,
      'GET',
      `${api.url}/no/such/route`,
      'ERR_NOT_FOUND',
    ]);
    expect(calls.filter((c) => c === 'GET /no/such/route')).toHaveLength(1);
  });

  it('retries network errors for GET, not for POST, and reports NetworkError with status 0', async () => {
    const api = await startForTest();
    await api.close();
    const calls: string[] = [];
    const counted = adminSession(api, { retries: 2, fetch: countingFetch(calls) });
    const e = await rejection(counted.request('GET', '/.well-known/jwks.json', { auth: false }));
    expect(e).toBeInstanceOf(NetworkError);
    expect(e.code).toBe('ERR_NETWORK');
    const ne = e as NetworkError;
    expect([ne.status, ne.method, ne.url]).toEqual([0, 'GET', `${api.url}/.well-known/jwks.json`]);
    expect(calls).toHaveLength(3);
    calls.length = 0;
    await rejection(counted.request('POST', '/users', { auth: false, json: {} }));
    expect(calls).toHaveLength(1);
  });

  it('survives a server restart between two calls (same data directory and port)', async () => {
    const api = await startForTest();
    const session = adminSession(api);
    await session.request('GET', '/me');
    await api.close();
    const again = await startForTest({ dataDir: api.dataDir, port: api.port });
    const me = await session.request<{ user: { email: string } }>('GET', '/me');
    expect(me.user.email).toBe(ADMIN_EMAIL);
    // Same key, same refresh families: the token is still good, no new login.
    expect(again.hitCount('POST /login')).toBe(0);
  });

  it('rides out a server that is down while the request is made, through backoff', async () => {
    const api = await startForTest();
    const session = adminSession(api, { retries: 6, retryBaseMs: 100 });
    await session.login();
    await api.close();
    const pending = session.request<{ user: { email: string } }>('GET', '/me');
    await new Promise((r) => setTimeout(r, 150));
    await startForTest({ dataDir: api.dataDir, port: api.port });
    expect((await pending).user.email).toBe(ADMIN_EMAIL);
  });
});

describe('Session aborts', () => {
  it('aborting mid-request rejects with ERR_ABORTED at once and does not retry', async () => {
    const api = await startForTest({ beforeListen: testRoutes(0) });
    const session = adminSession(api);
    const controller = new AbortController();
    const t0 = Date.now();
    setTimeout(() => controller.abort(), 100);
    const e = await rejection(
      session.request('GET', '/slow', { auth: false, signal: controller.signal }),
    );
    expect(e.code).toBe('ERR_ABORTED');
    expect(Date.now() - t0).toBeLessThan(2000);
    expect(api.hitCount('GET /slow')).toBe(1);
  });

  it('aborting during the backoff stops the retries', async () => {
    const api = await startForTest({ beforeListen: testRoutes(0) });
    const session = adminSession(api, { retryBaseMs: 4000, retryMaxMs: 4000 });
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 200);
    const t0 = Date.now();
    const e = await rejection(
      session.request('GET', '/broken', { auth: false, signal: controller.signal }),
    );
    expect(e.code).toBe('ERR_ABORTED');
    expect(Date.now() - t0).toBeLessThan(1500);
    expect(api.hitCount('GET /broken')).toBe(1);
  });

  it('an already aborted signal sends nothing; login and logout honour it too', async () => {
    const api = await startForTest();
    const session = adminSession(api);
    const signal = AbortSignal.abort();
    expect((await rejection(session.request('GET', '/me', { signal }))).code).toBe('ERR_ABORTED');
    expect((await rejection(session.login(signal))).code).toBe('ERR_ABORTED');
    expect(api.hitCount('POST /login')).toBe(0);
    await session.login();
    expect((await rejection(session.logout(signal))).code).toBe('ERR_ABORTED');
  });

  it("one caller's abort does not fail the others waiting on the same login", async () => {
    const api = await startForTest();
    const session = adminSession(api);
    const controller = new AbortController();
    const aborted = session.request('GET', '/me', { signal: controller.signal });
    const others = Array.from({ length: 3 }, () => session.request('GET', '/me'));
    controller.abort();
    expect((await rejection(aborted)).code).toBe('ERR_ABORTED');
    expect(await Promise.all(others)).toHaveLength(3);
    expect(api.hitCount('POST /login')).toBe(1);
  });
});

describe('Session errors', () => {
  it('maps 400, 409 and 413 from the admin API to typed errors', async () => {
    const api = await startForTest();
    const session = adminSession(api);
    const bad = await rejection(session.request('POST', '/users', { json: { email: 'x@y.z' } }));
    expect(bad).toBeInstanceOf(BadRequest);
    expect(bad.code).toBe('ERR_BAD_REQUEST');
    expect((bad as BadRequest).status).toBe(400);

    const user = { email: 'dup@example.com', password: PASSWORD, role: 'Operator' };
    await session.request('POST', '/users', { json: user });
    const dup = await rejection(session.request('POST', '/users', { json: user }));
    expect(dup).toBeInstanceOf(Conflict);
    expect((dup as Conflict).status).toBe(409);

    const huge = { ...user, email: 'big@example.com', password: 'x'.repeat(100_000) };
    const big = await rejection(session.request('POST', '/users', { json: huge }));
    expect(big).toBeInstanceOf(TooLarge);
    expect(big.code).toBe('ERR_TOO_LARGE');
    expect(big.message).not.toContain('xxxxxxxx');
  });

  it('maps 429 to RateLimited with the Retry-After seconds', async () => {
    const api = await startForTest({
      loginLimits: {
        perAccount: { limit: 1, windowSeconds: 60 },
        perAddress: { limit: 100, windowSeconds: 60 },
      },
    });
    const session = new Session({ apiUrl: api.url });
    session.setCredentials(ADMIN_EMAIL, 'wrong password, twice');
    expect((await rejection(session.login())).code).toBe('ERR_UNAUTHORIZED');
    const e = await rejection(session.login());
    expect(e).toBeInstanceOf(RateLimited);
    expect((e as RateLimited).status).toBe(429);
    expect((e as RateLimited).retryAfterSeconds).toBeGreaterThan(0);
    expect(isHttpError(e, 'ERR_RATE_LIMITED')).toBe(true);
  });

  it('returns the raw Response on request, and refuses paths that leave the API', async () => {
    const api = await startForTest();
    const session = adminSession(api);
    const res = await session.request('GET', '/.well-known/jwks.json', { raw: true, auth: false });
    expect(res.status).toBe(200);
    expect(((await res.json()) as { keys: unknown[] }).keys).toHaveLength(1);
    for (const path of ['http://evil.example/me', '//evil.example/me', 'me']) {
      expect((await rejection(session.request('GET', path))).code).toBe('ERR_INVALID_ARG');
    }
  });
});
