import { request as httpRequest } from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { createServer } from '../app/createServer.js';
import {
  addUser,
  call,
  login,
  removeDir,
  runCleanup,
  startServer,
  TEST_SCRYPT,
  tempDir,
} from '../test-helpers.js';

const cleanup: (() => Promise<void>)[] = [];
afterEach(() => runCleanup(cleanup));

/** A GET on a connection of its own (no keep-alive pool): what a new client would open. */
function freshGet(url: string, path: string): Promise<number | undefined> {
  const u = new URL(url);
  return new Promise((resolve, reject) => {
    httpRequest({ host: u.hostname, port: u.port, path, agent: false }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode));
    })
      .on('error', reject)
      .end();
  });
}

describe('close() with drainDelayMs', () => {
  it('turns /readyz 503 at once, keeps serving new requests for the delay, then closes', async () => {
    const s = await startServer({ drainDelayMs: 800 });
    cleanup.push(async () => {
      await s.close();
      await removeDir(s.dataDir);
    });
    await addUser(s, 'device@example.test', 'Operator');
    const { accessToken } = await login(s.url, 'device@example.test');
    expect((await call(s.url, 'GET', '/readyz')).status).toBe(200);

    const t0 = performance.now();
    const closing = s.close();
    const ready = await call(s.url, 'GET', '/readyz');
    expect(ready.status).toBe(503);
    expect(ready.body).toEqual({ ready: false, draining: true, checks: {} });
    // Still served: on the kept-alive connection, on a new one, and the liveness probe.
    const me = await call(s.url, 'GET', '/me', { token: accessToken });
    expect(me.status).toBe(200);
    expect(me.body).toMatchObject({ user: { email: 'device@example.test' } });
    expect(await freshGet(s.url, '/readyz')).toBe(503);
    expect(await freshGet(s.url, '/healthz')).toBe(200);
    expect(performance.now() - t0).toBeLessThan(800);

    await closing;
    expect(performance.now() - t0).toBeGreaterThanOrEqual(790);
    await expect(freshGet(s.url, '/healthz')).rejects.toThrow();
  });

  it('is 0 by default: close() stops accepting at once', async () => {
    const s = await startServer();
    cleanup.push(() => removeDir(s.dataDir));
    const t0 = performance.now();
    await s.close();
    expect(performance.now() - t0).toBeLessThan(500);
    await expect(freshGet(s.url, '/healthz')).rejects.toThrow();
  });

  it('is skipped for a server that never listened', async () => {
    const dataDir = await tempDir();
    cleanup.push(() => removeDir(dataDir));
    const server = await createServer({ dataDir, scrypt: TEST_SCRYPT, drainDelayMs: 5000 });
    const t0 = performance.now();
    await server.close();
    expect(performance.now() - t0).toBeLessThan(1000);
  });

  it('refuses a drainDelayMs that is not an integer ≥ 0, naming it', async () => {
    const dataDir = await tempDir();
    cleanup.push(() => removeDir(dataDir));
    for (const drainDelayMs of [-1, 1.5, Number.NaN]) {
      await expect(startServer({ dataDir, drainDelayMs })).rejects.toMatchObject({
        code: 'ERR_INVALID_ARG',
        field: 'drainDelayMs',
      });
    }
  });
});
