import { generateKeyPairSync } from 'node:crypto';
import { publisherPublicKey } from '@sluice/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { addUser, call, login, type Running, removeDir, startServer } from '../test-helpers.js';
import { MAX_PUBLISHER_KEYS } from './service.js';

let s: Running;
const token: Record<string, string> = {};
const newKey = () => publisherPublicKey(generateKeyPairSync('ed25519').privateKey);

beforeAll(async () => {
  s = await startServer();
  for (const [email, role] of [
    ['up@example.test', 'ResourceUploader'],
    ['other@example.test', 'Admin'],
    ['device@example.test', 'Operator'],
  ] as const) {
    await addUser(s, email, role);
    token[email] = (await login(s.url, email)).accessToken;
  }
});
afterAll(async () => {
  await s.close();
  await removeDir(s.dataDir);
});

const register = (who: string, publicKey: unknown) =>
  call(s.url, 'POST', '/me/publisher-keys', { token: token[who], json: { publicKey } });
const list = (who: string) => call(s.url, 'GET', '/me/publisher-keys', { token: token[who] });

describe('/me/publisher-keys', () => {
  it('registers a key (201), again is 200 with the same entry, and lists it', async () => {
    const key = newKey();
    const first = await register('up@example.test', key);
    expect(first.status).toBe(201);
    expect(first.body).toMatchObject({ publisherKey: { publicKey: key } });
    const again = await register('up@example.test', key);
    expect(again.status).toBe(200);
    expect(again.body).toEqual(first.body);
    const listed = await list('up@example.test');
    expect(listed.status).toBe(200);
    expect(listed.body).toEqual({
      publisherKeys: [(first.body as { publisherKey: unknown }).publisherKey],
    });
    expect((await list('other@example.test')).body).toEqual({ publisherKeys: [] });
    // Persisted with the user.
    const stored = await s.server.store.users.byEmail('up@example.test');
    const keys = await s.server.store.users.publisherKeys(stored?.id ?? '');
    expect(keys.map((k) => k.publicKey)).toEqual([key]);
  });

  it("another account's key is 409; a key that is not 32 bytes of base64 is 400", async () => {
    const key = newKey();
    expect((await register('up@example.test', key)).status).toBe(201);
    const taken = await register('other@example.test', key);
    expect(taken.status).toBe(409);
    expect(taken.body).toMatchObject({ code: 'ERR_CONFLICT' });
    for (const bad of [
      'x',
      key.slice(0, -1),
      Buffer.alloc(33).toString('base64'),
      Buffer.alloc(32).toString('hex'),
      generateKeyPairSync('ed25519').publicKey.export({ type: 'spki', format: 'pem' }),
      42,
      null,
    ]) {
      const r = await register('other@example.test', bad);
      expect(r.status, String(bad)).toBe(400);
      expect(r.body).toMatchObject({ code: 'ERR_BAD_REQUEST' });
    }
  });

  it('only roles that upload may register or list keys; an account holds at most 16', async () => {
    expect((await register('device@example.test', newKey())).status).toBe(403);
    expect((await list('device@example.test')).status).toBe(403);
    expect((await call(s.url, 'GET', '/me/publisher-keys')).status).toBe(401);
    const held = ((await list('other@example.test')).body as { publisherKeys: unknown[] })
      .publisherKeys.length;
    for (let i = held; i < MAX_PUBLISHER_KEYS; i++) {
      expect((await register('other@example.test', newKey())).status).toBe(201);
    }
    const over = await register('other@example.test', newKey());
    expect(over.status).toBe(409);
    expect(over.body).toMatchObject({ error: expect.stringMatching(/at most 16 publisher keys/) });
  });
});
