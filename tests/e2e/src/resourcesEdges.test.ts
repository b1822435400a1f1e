// The client against the real server where things go wrong between the two: tokens expiring or
// being refused mid-way, a tampered envelope, hostile names.
import { randomBytes } from 'node:crypto';
import { readdir, readFile, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pull, pullBytes, push } from '@sluice/core';
import { SIGNING_KEY_FILE } from '@sluice/server';
import { describe, expect, it } from 'vitest';
import {
  createUserViaApi,
  DEVICE_USER,
  MiB,
  onCleanup,
  PASSWORD,
  rejection,
  removeDir,
  type StartOptions,
  sha,
  signedIn,
  startForTest,
  tempDir,
  UPLOADER,
} from './apiServer.js';

const HW = sha('edge device');

/** A server with an uploader, a device user and `size` random bytes pushed as models/m.bin. */
async function pushed(size: number, options: StartOptions = {}) {
  const api = await startForTest(options);
  const work = await tempDir('sluice-edge-');
  onCleanup(() => removeDir(work));
  await createUserViaApi(api, UPLOADER, 'ResourceUploader');
  await createUserViaApi(api, DEVICE_USER, 'Operator');
  const plain = randomBytes(size);
  const src = join(work, 'src.bin');
  await writeFile(src, plain);
  const uploader = await signedIn(api, UPLOADER);
  await push(uploader, 'models', 'm.bin', src, { chunkSize: MiB });
  return { api, work, plain, uploader };
}

describe('resources: tokens that stop working mid-way', () => {
  it('an access token that expires in the middle of a pull is renewed and the pull completes', async () => {
    // Slow every big-part response so the pull outlives the 2 s token; the client does not renew
    // ahead (threshold 0), so the server's 401 must be met by a transparent re-authentication.
    const w = await pushed(12 * MiB, {
      accessTokenTtlSeconds: 2,
      beforeListen: (s) => {
        s.app.addHook('onRequest', async (req) => {
          if (req.url.includes('/big')) await new Promise((r) => setTimeout(r, 300));
        });
      },
    });
    const device = await signedIn(w.api, DEVICE_USER, 0);
    const out = join(w.work, 'out.bin');
    const r = await pull(device, 'models', 'm.bin', {
      to: out,
      password: PASSWORD,
      hardware: HW,
      concurrency: 1,
    });
    expect(r.size).toBe(w.plain.length);
    expect(sha(await readFile(out))).toBe(sha(w.plain));
    const renewals = w.api.hitCount('POST /token/refresh') + w.api.hitCount('POST /login');
    // Two logins before the pull (uploader, device), at least one renewal during it.
    expect(renewals).toBeGreaterThanOrEqual(3);
  });

  it('twenty concurrent requests hitting 401 together with a dead refresh token: exactly one login', async () => {
    const api = await startForTest();
    await createUserViaApi(api, DEVICE_USER, 'Operator');
    const session = await signedIn(api, DEVICE_USER);
    // The server loses its signing key and every refresh family: both tokens are now refused.
    await api.close();
    await unlink(join(api.dataDir, SIGNING_KEY_FILE));
    const again = await startForTest({ dataDir: api.dataDir, port: api.port });
    await again.server.store.db.query('UPDATE refresh_families SET revoked_at = $1', [
      new Date().toISOString(),
    ]);
    const results = await Promise.all(
      Array.from({ length: 20 }, () => session.request<{ user: { email: string } }>('GET', '/me')),
    );
    expect(results.every((r) => r.user.email === DEVICE_USER)).toBe(true);
    expect(again.hitCount('POST /login')).toBe(1);
    expect(again.hitCount('POST /token/refresh')).toBeLessThanOrEqual(1);
    expect(again.hitCount('GET /me')).toBe(40);
  });
});

describe('resources: tampered envelope', () => {
  for (const field of ['ciphertext', 'tag', 'nonce'] as const) {
    it(`a flipped bit in the envelope's ${field} is ERR_BAD_ENVELOPE and writes nothing`, async () => {
      const w = await pushed(2 * MiB, {
        beforeListen: (s) => {
          s.app.addHook('onSend', async (req, _reply, payload) => {
            if (!req.url.startsWith('/resources/get/') || typeof payload !== 'string') {
              return payload;
            }
            const body = JSON.parse(payload) as Record<string, unknown>;
            const b = Buffer.from(String(body[field]), 'base64');
            b[b.length >> 1] = (b[b.length >> 1] as number) ^ 0x01;
            body[field] = b.toString('base64');
            return JSON.stringify(body);
          });
        },
      });
      const device = await signedIn(w.api, DEVICE_USER);
      const out = join(w.work, 'out.bin');
      const err = await rejection(
        pull(device, 'models', 'm.bin', {
          to: out,
          password: PASSWORD,
          hardware: HW,
        }),
      );
      expect(err.code).toBe('ERR_BAD_ENVELOPE');
      expect(err.message).not.toContain(PASSWORD);
      expect((await readdir(w.work)).sort()).toEqual(['src.bin']);
      // Nothing of the big part was fetched for an envelope that did not open.
      expect(w.api.hitCount('GET /resources/models/m.bin/big')).toBe(0);
    });
  }
});

describe('resources: hostile folder and file names', () => {
  const names = [
    '..',
    '.',
    '../etc',
    '/etc/passwd',
    'a/b',
    'a\\b',
    '%2e%2e',
    '%2fetc',
    'a%2Fb',
    '.hidden',
    'con\u0000trol',
    '\u2215etc', // DIVISION SLASH, looks like '/'
    'ｍodel', // FULLWIDTH m
    'x'.repeat(300),
  ];

  it('the client refuses every bad folder or name with ERR_INVALID_ARG before sending anything', async () => {
    const w = await pushed(64 * 1024);
    const src = join(w.work, 'src.bin');
    const device = await signedIn(w.api, DEVICE_USER);
    const before = [...w.api.hits.values()].reduce((a, b) => a + b, 0);
    for (const bad of names) {
      const pullOpts = { to: join(w.work, 'out.bin'), password: PASSWORD, hardware: HW };
      const errors = [
        await rejection(push(w.uploader, bad, 'ok.bin', src)),
        await rejection(push(w.uploader, 'models', bad, src)),
        await rejection(pull(device, bad, 'ok.bin', pullOpts)),
        await rejection(pull(device, 'models', bad, pullOpts)),
      ];
      expect([bad, errors.map((e) => e.code)]).toEqual([bad, Array(4).fill('ERR_INVALID_ARG')]);
    }
    expect([...w.api.hits.values()].reduce((a, b) => a + b, 0)).toBe(before);
    expect((await readdir(w.work)).sort()).toEqual(['src.bin']);
  });

  it('the server answers 400 to every bad name that survives URL parsing, and stores nothing', async () => {
    const w = await pushed(64 * 1024);
    const login = await fetch(`${w.api.url}/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ email: UPLOADER, password: PASSWORD }),
    });
    const { accessToken } = (await login.json()) as { accessToken: string };
    const auth = { authorization: `Bearer ${accessToken}` };
    // Segments as sent on the wire; `..` and `%2e%2e` are resolved by every URL parser, so they
    // cannot reach a route as a segment and are covered by the client check above.
    const segments = [
      '%2fetc',
      'a%2Fb',
      'a%5Cb',
      '.hidden',
      'con%00trol',
      '%E2%88%95etc',
      'x'.repeat(300),
    ];
    for (const seg of segments) {
      const form = new FormData();
      form.append('name', 'ok.bin');
      const up = await fetch(`${w.api.url}/resources/${seg}`, {
        method: 'POST',
        headers: auth,
        body: form,
      });
      const get = await fetch(`${w.api.url}/resources/get/models`, {
        method: 'POST',
        headers: { ...auth, 'content-type': 'application/json' },
        body: JSON.stringify({
          fileName: decodeURIComponent(seg),
          password: PASSWORD,
          hardware: HW,
        }),
      });
      const del = await fetch(`${w.api.url}/resources/models/${seg}`, {
        method: 'DELETE',
        headers: auth,
      });
      // Names over 128 characters too: the routes check them (the router lets up to 1024 through).
      expect([seg, up.status, get.status, del.status]).toEqual([seg, 400, 400, 400]);
      expect(((await get.json()) as { code: string }).code).toBe('ERR_BAD_REQUEST');
    }
    // The server still serves, and holds only the one resource's two blobs.
    const list = await w.uploader.request<{ resources: { name: string }[] }>(
      'GET',
      '/resources/models',
    );
    expect(list.resources.map((r) => r.name)).toEqual(['m.bin']);
    const blobs = (await readdir(join(w.api.dataDir, 'blobs'))).filter((n) => n !== '.tmp');
    expect(blobs).toHaveLength(2);
  });
});

describe('resources: small resources and limits', () => {
  it('push from bytes and pullBytes round-trip a small config through the envelope', async () => {
    const api = await startForTest();
    await createUserViaApi(api, UPLOADER, 'ResourceUploader');
    await createUserViaApi(api, DEVICE_USER, 'Operator');
    const uploader = await signedIn(api, UPLOADER);
    const config = Buffer.from(JSON.stringify({ threshold: 0.42, labels: ['cat', 'dog'] }));
    const v1 = await push(uploader, 'configs', 'config.json', config);
    const v2 = await push(uploader, 'configs', 'config.json', Buffer.from('{"threshold":0.5}'));
    expect([v1.version, v2.version]).toEqual([1, 2]);
    const device = await signedIn(api, DEVICE_USER);
    const got = await pullBytes(device, 'configs', 'config.json', {
      password: PASSWORD,
      hardware: HW,
    });
    expect(got.toString()).toBe('{"threshold":0.5}');
    // The bytes never sit on the server in plaintext.
    const blobs = join(api.dataDir, 'blobs');
    for (const f of (await readdir(blobs)).filter((n) => n !== '.tmp')) {
      expect((await readFile(join(blobs, f))).includes('threshold')).toBe(false);
    }
  });

  it('an upload over the server limit is TooLarge (413) and nothing is stored', async () => {
    const w = await pushed(64 * 1024, { bigPartLimit: 4 * MiB });
    const src = join(w.work, 'big.bin');
    await writeFile(src, randomBytes(6 * MiB));
    const err = await rejection(push(w.uploader, 'models', 'big.bin', src));
    expect(err.code).toBe('ERR_TOO_LARGE');
    expect((err as { status?: number }).status).toBe(413);
    const list = await w.uploader.request<{ resources: { name: string }[] }>(
      'GET',
      '/resources/models',
    );
    expect(list.resources.map((r) => r.name)).toEqual(['m.bin']);
    const blobs = (await readdir(join(w.api.dataDir, 'blobs'))).filter((n) => n !== '.tmp');
    expect(blobs).toHaveLength(2);
    expect(await readdir(join(w.api.dataDir, 'blobs', '.tmp'))).toEqual([]);
    // The server still answers a normal request.
    const me = await w.uploader.request<{ user: { email: string } }>('GET', '/me');
    expect(me.user.email).toBe(UPLOADER);
  });
});
