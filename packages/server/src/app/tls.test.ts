import { request } from 'node:https';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type Running,
  removeDir,
  selfSignedCert,
  startServer,
  TEST_SCRYPT,
  tempDir,
} from '../test-helpers.js';
import { createServer } from './createServer.js';

let dir: string;
let pem: ReturnType<typeof selfSignedCert>;
let other: ReturnType<typeof selfSignedCert>;
beforeAll(async () => {
  dir = await tempDir();
  pem = selfSignedCert(dir);
  other = selfSignedCert(await tempDir());
});
afterAll(() => removeDir(dir));

/** GET over https trusting only `ca`: status and body. */
function get(url: string, ca: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { ca }, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (d: string) => {
        body += d;
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('HTTPS (the tls option)', () => {
  let s: Running;
  beforeAll(async () => {
    s = await startServer({ tls: { cert: pem.cert, key: pem.key } });
  });
  afterAll(async () => {
    await s.close();
    await removeDir(s.dataDir);
  });

  it('serves HTTPS with the certificate; a client that trusts another one is refused', async () => {
    expect(s.url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
    const r = await get(`${s.url}/healthz`, pem.cert);
    expect(r).toEqual({ status: 200, body: '{"status":"ok"}' });
    await expect(get(`${s.url}/healthz`, other.cert)).rejects.toThrow(/self.signed|verify/i);
    // Plain HTTP on the same port gets no API answer.
    await expect(fetch(`${s.url.replace('https:', 'http:')}/healthz`)).rejects.toThrow();
  });

  it('close() ends idle TLS connections at once', async () => {
    const t = await startServer({ tls: { cert: pem.cert, key: pem.key } });
    await get(`${t.url}/healthz`, pem.cert);
    const t0 = performance.now();
    await t.close();
    expect(performance.now() - t0).toBeLessThan(5000);
    await removeDir(t.dataDir);
  });

  it('refuses half a pair, non-PEM input and a key of another certificate, quoting neither', async () => {
    const keyLine = pem.key.split('\n')[1] ?? '';
    const cases: Array<[{ cert?: string; key?: string }, RegExp]> = [
      [{ cert: pem.cert }, /^tls\.key is missing/],
      [{ key: pem.key }, /^tls\.cert is missing/],
      [{ cert: 'not a certificate', key: pem.key }, /^tls\.cert holds no PEM certificate/],
      [{ cert: pem.cert, key: pem.cert }, /^tls\.key holds no PEM private key/],
      [{ cert: pem.cert, key: other.key }, /^tls certificate and key cannot be used together/],
    ];
    for (const [tls, message] of cases) {
      const dataDir = await tempDir();
      try {
        const made = createServer({ dataDir, scrypt: TEST_SCRYPT, tls: tls as never });
        await expect(made).rejects.toMatchObject({ code: 'ERR_INVALID_ARG', message });
        const e = await made.catch((err: Error) => err);
        expect(String((e as Error).message)).not.toContain(keyLine);
      } finally {
        await removeDir(dataDir);
      }
    }
  });
});
