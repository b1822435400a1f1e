import { createHash, randomBytes } from 'node:crypto';
import { readdir } from 'node:fs/promises';
import { pull, push, Session } from '@sluice/core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  addUser,
  call,
  login,
  PASSWORD,
  type Running,
  removeDir,
  runCleanup,
  startServer,
  tempDir,
} from '../test-helpers.js';

const UPLOADER = 'uploader@example.test';
const DEVICE = 'device@example.test';
const HW = 'c3'.repeat(32);
const BIG_ROUTE = '/resources/:folder/:name/big';

/** The value of one sample in Prometheus text, or undefined when there is none. */
function sample(
  text: string,
  name: string,
  labels: Record<string, string> = {},
): number | undefined {
  for (const line of text.split('\n')) {
    const m = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (m?.[1] !== name) continue;
    const got = Object.fromEntries(
      [...(m[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map((l) => [l[1], l[2]]),
    );
    if (Object.entries(labels).every(([k, v]) => got[k] === v)) return Number(m[3]);
  }
  return undefined;
}

const scrape = async (s: Running, headers: Record<string, string> = {}) => {
  const r = await call(s.url, 'GET', '/metrics', { headers });
  expect(r.status, r.text).toBe(200);
  return r.text;
};

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

describe('GET /metrics after a pull', () => {
  let s: Running;
  let plain: Buffer;
  let bigSize: number;
  const cleanup: (() => Promise<void>)[] = [];
  afterAll(() => runCleanup(cleanup));

  beforeAll(async () => {
    s = await startServer();
    cleanup.push(async () => {
      await s.close();
      await removeDir(s.dataDir);
    });
    await addUser(s, UPLOADER, 'ResourceUploader');
    await addUser(s, DEVICE, 'Operator');
    const uploader = new Session({ apiUrl: s.url });
    uploader.setCredentials(UPLOADER, PASSWORD);
    await uploader.login();
    plain = randomBytes(6 * 1024 * 1024);
    await push(uploader, 'models', 'm.bin', plain, { chunkSize: 1024 * 1024 });
    const list = await call(s.url, 'GET', '/resources/models', {
      token: (await login(s.url, UPLOADER)).accessToken,
    });
    bigSize = (list.body as { resources: { bigSize: number }[] }).resources[0]?.bigSize ?? 0;
    expect(bigSize).toBeGreaterThan(4 * 1024 * 1024);
  });

  it('counts the envelope, the big-part bytes and each request by route pattern and status', async () => {
    const before = await scrape(s);
    expect(sample(before, 'sluice_envelopes_issued_total')).toBe(0);
    expect(sample(before, 'sluice_big_part_bytes_total')).toBe(0);

    const device = new Session({ apiUrl: s.url });
    device.setCredentials(DEVICE, PASSWORD);
    await device.login();
    const got = await pull(device, 'models', 'm.bin', {
      to: 'buffer',
      password: PASSWORD,
      hardware: HW,
    });
    expect(sha(got.data)).toBe(sha(plain));

    const text = await scrape(s);
    expect(sample(text, 'sluice_envelopes_issued_total')).toBe(1);
    expect(sample(text, 'sluice_big_part_bytes_total')).toBe(bigSize);
    const envelope = { method: 'POST', route: '/resources/get/:folder', status: '200' };
    expect(sample(text, 'sluice_http_requests_total', envelope)).toBe(1);
    // The big part came in ranged GETs (206), counted under the route pattern.
    const ranged = sample(text, 'sluice_http_requests_total', { route: BIG_ROUTE, status: '206' });
    expect(ranged).toBeGreaterThanOrEqual(1);
    const durations = sample(text, 'sluice_http_request_duration_seconds_count', {
      method: 'GET',
      route: BIG_ROUTE,
    });
    expect(durations).toBe(ranged);
    expect(sample(text, 'sluice_http_requests_total', { route: '/login' })).toBeGreaterThanOrEqual(
      1,
    );
    // Only patterns: no folder or resource name, no raw URL.
    expect(text).not.toContain('models');
    expect(text).not.toContain('m.bin');
    expect(sample(text, 'sluice_http_requests_in_flight')).toBeGreaterThanOrEqual(1);
  });

  it('counts unknown routes as unmatched, not by their URL', async () => {
    await call(s.url, 'GET', '/no/such/route-42');
    const text = await scrape(s);
    expect(sample(text, 'sluice_http_requests_total', { route: 'unmatched', status: '404' })).toBe(
      1,
    );
    expect(text).not.toContain('route-42');
  });

  it('counts a download the client gave up on, with only the bytes it was sent', async () => {
    const bytesBefore = sample(await scrape(s), 'sluice_big_part_bytes_total') ?? 0;
    const token = (await login(s.url, UPLOADER)).accessToken;
    const abort = new AbortController();
    const res = await fetch(`${s.url}/resources/models/m.bin/big`, {
      headers: { authorization: `Bearer ${token}` },
      signal: abort.signal,
    });
    await res.body?.getReader().read();
    abort.abort();
    const full = { route: BIG_ROUTE, status: '200' };
    let text = await scrape(s);
    for (let i = 0; i < 50 && sample(text, 'sluice_http_requests_total', full) === undefined; i++) {
      await new Promise((r) => setTimeout(r, 20));
      text = await scrape(s);
    }
    expect(sample(text, 'sluice_http_requests_total', full)).toBe(1);
    const sent = (sample(text, 'sluice_big_part_bytes_total') ?? 0) - bytesBefore;
    expect(sent).toBeGreaterThan(0);
    expect(sent).toBeLessThan(bigSize);
  });
});

describe('GET /metrics', () => {
  const cleanup: (() => Promise<void>)[] = [];
  afterEach(() => runCleanup(cleanup));
  async function start(options: Parameters<typeof startServer>[0] = {}): Promise<Running> {
    const s = await startServer(options);
    cleanup.push(async () => {
      await s.close();
      await removeDir(s.dataDir);
    });
    return s;
  }

  it('counts login limit refusals, for logins and for passwords sent with a token', async () => {
    const rule = { limit: 1, lockSeconds: 60, maxLockSeconds: 60, forgetSeconds: 60 };
    const s = await start({ loginLimits: { perClient: rule, withToken: rule } });
    await addUser(s, DEVICE, 'Operator');
    const { accessToken } = await login(s.url, DEVICE);
    const wrong = { email: DEVICE, password: 'not the password at all' };
    expect((await call(s.url, 'POST', '/login', { json: wrong })).status).toBe(401);
    expect((await call(s.url, 'POST', '/login', { json: wrong })).status).toBe(429);
    expect((await call(s.url, 'POST', '/login', { json: wrong })).status).toBe(429);
    const change = { password: 'not the password at all', newPassword: 'another long password' };
    for (const status of [401, 429]) {
      const r = await call(s.url, 'POST', '/me/password', { token: accessToken, json: change });
      expect(r.status).toBe(status);
    }
    const text = await scrape(s);
    expect(sample(text, 'sluice_login_limit_refusals_total', { kind: 'login' })).toBe(2);
    expect(sample(text, 'sluice_login_limit_refusals_total', { kind: 'token_password' })).toBe(1);
    expect(sample(text, 'sluice_http_requests_total', { route: '/login', status: '429' })).toBe(2);
  });

  it('keeps one registry per server', async () => {
    const a = await start();
    const b = await start();
    for (let i = 0; i < 3; i++) await call(a.url, 'GET', '/healthz');
    const healthz = { route: '/healthz', status: '200' };
    expect(sample(await scrape(a), 'sluice_http_requests_total', healthz)).toBe(3);
    expect(sample(await scrape(b), 'sluice_http_requests_total', healthz)).toBeUndefined();
    expect(a.server.metrics.registry).not.toBe(b.server.metrics.registry);
  });

  it("reports the store's database pool, read at each scrape", async () => {
    const s = await start();
    // The embedded store: one connection.
    expect(sample(await scrape(s), 'sluice_db_pool_connections', { state: 'total' })).toBe(1);
    let idle = 3;
    s.server.metrics.observeDatabasePool(() => ({ total: 5, idle, waiting: 1 }));
    let text = await scrape(s);
    expect(sample(text, 'sluice_db_pool_connections', { state: 'total' })).toBe(5);
    expect(sample(text, 'sluice_db_pool_connections', { state: 'idle' })).toBe(3);
    expect(sample(text, 'sluice_db_pool_connections', { state: 'waiting' })).toBe(1);
    idle = 0;
    text = await scrape(s);
    expect(sample(text, 'sluice_db_pool_connections', { state: 'idle' })).toBe(0);
  });

  it('exports no process metrics unless asked (they observe the whole process)', async () => {
    const plainServer = await start();
    expect(await scrape(plainServer)).not.toContain('process_cpu_user_seconds_total');
    const withProcess = await start({ processMetrics: true });
    expect(sample(await scrape(withProcess), 'process_cpu_user_seconds_total')).toBeGreaterThan(0);
  });
});

describe('GET /metrics with metricsToken', () => {
  const cleanup: (() => Promise<void>)[] = [];
  afterEach(() => runCleanup(cleanup));

  it('needs the bearer token; health and readiness stay open; the token is never logged', async () => {
    const token = randomBytes(24).toString('base64url');
    const lines: string[] = [];
    const s = await startServer({
      metricsToken: token,
      logger: { level: 'trace', stream: { write: (line: string) => lines.push(line) } },
    });
    cleanup.push(async () => {
      await s.close();
      await removeDir(s.dataDir);
    });
    for (const authorization of [
      undefined,
      'Bearer wrong-token-of-some-length',
      `Bearer ${token.slice(0, -1)}`,
      `Bearer ${token}x`,
      `Basic ${token}`,
      token,
    ]) {
      const headers: Record<string, string> = authorization ? { authorization } : {};
      const r = await call(s.url, 'GET', '/metrics', { headers });
      expect(r.status, authorization).toBe(401);
      expect(r.body).toMatchObject({ code: 'ERR_UNAUTHORIZED' });
      expect(r.text).not.toContain(token);
    }
    const ok = await call(s.url, 'GET', '/metrics', {
      headers: { authorization: `bearer ${token}` },
    });
    expect(ok.status).toBe(200);
    expect(ok.headers.get('content-type')).toContain('text/plain');
    expect(
      sample(ok.text, 'sluice_http_requests_total', { route: '/metrics', status: '401' }),
    ).toBe(6);
    expect((await call(s.url, 'GET', '/healthz')).status).toBe(200);
    expect((await call(s.url, 'GET', '/readyz')).status).toBe(200);
    expect(lines.length).toBeGreaterThan(0);
    expect(lines.join('')).not.toContain(token);
    expect(lines.join('')).not.toContain(token.slice(0, 16));
  });

  it('refuses a weak token before opening anything, without echoing it', async () => {
    const dataDir = await tempDir();
    cleanup.push(() => removeDir(dataDir));
    for (const metricsToken of ['short', 'has spaces in it, sixteen+', 'x'.repeat(513)]) {
      const e = await startServer({ dataDir, metricsToken }).then(
        (s) => s.close().then(() => undefined),
        (err: unknown) => err,
      );
      expect(e).toMatchObject({ code: 'ERR_INVALID_ARG', field: 'metricsToken' });
      expect((e as Error).message).not.toContain(metricsToken);
    }
    expect(await readdir(dataDir)).toEqual([]);
  });
});
