// The envelope cache seen from a device: repeated envelopes skip scrypt (Server-Timing says
// `cache;desc=hit`), and nothing a verification depended on can change without the next request
// being verified in full again.

import { randomBytes } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { deriveEnvelopeKey, envelopeAad, openEnvelope, sealAndSplit } from '@sluice/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { patchUser } from '../test-helpers.js';

// Before the server starts: its settings read the flag once.
process.env.SLUICE_SERVER_TIMING = '1';
const { hashPassword } = await import('../auth/passwordHash.js');
const { addUser, call, login, PASSWORD, removeDir, startServer, tempDir, TEST_SCRYPT } =
  await import('../test-helpers.js');
type Running = Awaited<ReturnType<typeof startServer>>;

const HW_A = 'a1'.repeat(32);
const HW_B = 'b2'.repeat(32);
/** High enough that no case here trips a login or password limit. */
const LIMITS = {
  perClient: { limit: 100_000, lockSeconds: 1, maxLockSeconds: 1, forgetSeconds: 60 },
  perAddress: { limit: 100_000, windowSeconds: 60 },
  perAccount: { limit: 100_000, windowSeconds: 60 },
  withToken: { limit: 100_000, lockSeconds: 1, maxLockSeconds: 1, forgetSeconds: 60 },
};

let s: Running;
let work: string;
let adminToken: string;
let small: Buffer;

afterAll(async () => {
  await s?.close();
  if (s !== undefined) await removeDir(s.dataDir);
  if (work !== undefined) await removeDir(work);
});

beforeAll(async () => {
  work = await tempDir('sluice-envcache-');
  s = await startServer({ loginLimits: LIMITS });
  await addUser(s, 'admin@example.test', 'Admin');
  await addUser(s, 'up@example.test', 'ResourceUploader');
  adminToken = (await login(s.url, 'admin@example.test')).accessToken;
  const src = join(work, 'plain');
  await writeFile(src, randomBytes(40_000));
  const sealed = await sealAndSplit(src, {
    paths: { small: `${src}.small`, big: `${src}.big` },
    smallSizeKB: 8,
    chunkSize: 4096,
  });
  small = await readFile(sealed.smallPath);
  const form = new FormData();
  form.append('name', 'm.bin');
  form.append('manifest', JSON.stringify(sealed.manifest));
  form.append('dataKey', sealed.key.toString('base64'));
  form.append('small', new Blob([small]), 'small');
  form.append('big', new Blob([await readFile(sealed.bigPath)]), 'big');
  const up = await fetch(`${s.url}/resources/models`, {
    method: 'POST',
    headers: { authorization: `Bearer ${(await login(s.url, 'up@example.test')).accessToken}` },
    body: form,
  });
  expect(up.status).toBe(201);
});

/** A fresh Operator with its token. */
async function device(email: string): Promise<{ id: string; email: string; token: string }> {
  const { id } = await addUser(s, email, 'Operator');
  return { id, email, token: (await login(s.url, email)).accessToken };
}

async function envelope(
  who: { token: string },
  password = PASSWORD,
  hardware = HW_A,
): Promise<{ status: number; cache: string | undefined; body: unknown }> {
  const r = await call(s.url, 'POST', '/resources/get/models', {
    token: who.token,
    json: { fileName: 'm.bin', password, hardware },
  });
  const timing = r.headers.get('server-timing') ?? '';
  return { status: r.status, cache: /cache;desc=(\w+)/.exec(timing)?.[1], body: r.body };
}

/** The envelope opens with the key the device derives itself. */
async function opens(email: string, body: unknown, password = PASSWORD, hardware = HW_A) {
  const key = await deriveEnvelopeKey(email, password, hardware);
  const b = body as { resource: { folder: string; name: string; version: number } };
  return openEnvelope(key, body, envelopeAad(b.resource));
}

describe('envelope cache', () => {
  it('a repeated request is a hit, each with a fresh nonce and the same content', async () => {
    const d = await device('repeat@example.test');
    const first = await envelope(d);
    expect(first).toMatchObject({ status: 200, cache: 'miss' });
    const second = await envelope(d);
    expect(second).toMatchObject({ status: 200, cache: 'hit' });
    const timing = (
      await call(s.url, 'POST', '/resources/get/models', {
        token: d.token,
        json: { fileName: 'm.bin', password: PASSWORD, hardware: HW_A },
      })
    ).headers.get('server-timing');
    expect(timing).toMatch(/auth;dur=[\d.]+, cache;desc=hit, kdf;dur=[\d.]+, read;dur=/);
    expect((second.body as { nonce: string }).nonce).not.toBe(
      (first.body as { nonce: string }).nonce,
    );
    expect((await opens(d.email, second.body)).small.equals(small)).toBe(true);
  });

  it('a hit reads the caller once (the guard), the resource once, the password budget where it is shared, and counts its pull once', async () => {
    const d = await device('calls@example.test');
    expect((await envelope(d)).cache).toBe('miss');
    const db = s.server.store.db;
    const seen: string[] = [];
    const query = db.query.bind(db);
    const transaction = db.transaction.bind(db);
    db.query = (async (sql: string, params?: Parameters<typeof db.query>[1]) => {
      seen.push(sql);
      return query(sql, params);
    }) as typeof db.query;
    db.transaction = (async (fn: Parameters<typeof db.transaction>[0]) => {
      seen.push('transaction');
      return transaction(fn);
    }) as typeof db.transaction;
    try {
      expect(await envelope(d)).toMatchObject({ status: 200, cache: 'hit' });
    } finally {
      db.query = query;
      db.transaction = transaction;
    }
    const reads = (table: string) => seen.filter((q) => new RegExp(`\\bFROM ${table}\\b`).test(q));
    expect(reads('users')).toHaveLength(1);
    expect(reads('resources')).toHaveLength(1);
    // The login limiter's entries are in the store on PostgreSQL (shared by the instances).
    const shared = s.server.store.backend === 'postgres';
    expect(reads('limiter_entries')).toHaveLength(shared ? 1 : 0);
    // And one transaction: the envelope's bytes counted against the organisation's pull quota
    // (limits/pullQuota.ts; its statements run on the transaction's own executor).
    expect(seen.filter((q) => q === 'transaction')).toHaveLength(1);
    expect(seen).toHaveLength(shared ? 4 : 3);
  });

  it('a burst from a new device runs scrypt once; the others wait for it and are hits', async () => {
    const d = await device('burst@example.test');
    const burst = await Promise.all(Array.from({ length: 6 }, () => envelope(d)));
    expect(burst.map((r) => r.status)).toEqual([200, 200, 200, 200, 200, 200]);
    expect(burst.filter((r) => r.cache === 'miss')).toHaveLength(1);
    for (const r of burst) expect((await opens(d.email, r.body)).small.equals(small)).toBe(true);
    // A burst with a wrong password: every request is verified (and refused) on its own.
    const wrong = await Promise.all(Array.from({ length: 3 }, () => envelope(d, 'not it')));
    expect(wrong.map((r) => [r.status, r.cache])).toEqual([
      [401, undefined],
      [401, undefined],
      [401, undefined],
    ]);
  });

  it('a wrong password after a right one is refused; the right one is still a hit', async () => {
    const d = await device('wrong@example.test');
    expect((await envelope(d)).cache).toBe('miss');
    const wrong = await envelope(d, `${PASSWORD}!`);
    expect(wrong.status).toBe(401);
    expect(wrong.body).toMatchObject({ code: 'ERR_UNAUTHORIZED' });
    expect(await envelope(d, PASSWORD.toUpperCase())).toMatchObject({ status: 401 });
    expect(await envelope(d)).toMatchObject({ status: 200, cache: 'hit' });
  });

  it('a changed password is verified again: the old one is refused, the new one served', async () => {
    const d = await device('changed@example.test');
    expect((await envelope(d)).cache).toBe('miss');
    expect((await envelope(d)).cache).toBe('hit');
    const next = 'a brand new passphrase';
    const hash = await hashPassword(next, TEST_SCRYPT);
    await patchUser(s, d.id, { passwordHash: hash });
    expect(await envelope(d)).toMatchObject({ status: 401 });
    const fresh = await envelope(d, next);
    expect(fresh).toMatchObject({ status: 200, cache: 'miss' });
    await opens(d.email, fresh.body, next);
    expect(await envelope(d, next)).toMatchObject({ status: 200, cache: 'hit' });
    expect(await envelope(d)).toMatchObject({ status: 401 });
  });

  it('a disabled user is refused; re-enabled it is served again', async () => {
    const d = await device('disabled@example.test');
    expect((await envelope(d)).cache).toBe('miss');
    const off = await call(s.url, 'POST', `/users/${d.id}/disable`, { token: adminToken });
    expect(off.status).toBe(200);
    expect(await envelope(d)).toMatchObject({ status: 401 });
    const on = await call(s.url, 'POST', `/users/${d.id}/enable`, { token: adminToken });
    expect(on.status).toBe(200);
    // Disabling revoked its logins; a new one gets the envelope.
    d.token = (await login(s.url, d.email)).accessToken;
    expect(await envelope(d)).toMatchObject({ status: 200 });
  });

  it('a reset device binding is not served from the cache; the new device takes it', async () => {
    const d = await device('reset@example.test');
    expect((await envelope(d, PASSWORD, HW_A)).cache).toBe('miss');
    expect((await envelope(d, PASSWORD, HW_A)).cache).toBe('hit');
    const reset = await call(s.url, 'POST', `/users/${d.id}/reset-device`, { token: adminToken });
    expect(reset.status).toBe(200);
    // A reset ends the user's sessions: the device logs in again.
    d.token = (await login(s.url, d.email)).accessToken;
    const moved = await envelope(d, PASSWORD, HW_B);
    expect(moved).toMatchObject({ status: 200, cache: 'miss' });
    await opens(d.email, moved.body, PASSWORD, HW_B);
    expect(await envelope(d, PASSWORD, HW_A)).toMatchObject({
      status: 403,
      body: { code: 'ERR_DEVICE_NOT_BOUND' },
    });
    // Reset again: device A has to be verified in full, not served its old entry.
    await call(s.url, 'POST', `/users/${d.id}/reset-device`, { token: adminToken });
    d.token = (await login(s.url, d.email)).accessToken;
    expect(await envelope(d, PASSWORD, HW_A)).toMatchObject({ status: 200, cache: 'miss' });
  });

  it('a role change makes the next request a full verification', async () => {
    const d = await device('role@example.test');
    expect((await envelope(d)).cache).toBe('miss');
    const r = await call(s.url, 'POST', `/users/${d.id}/role`, {
      token: adminToken,
      json: { role: 'Validator' },
    });
    expect(r.status).toBe(200);
    d.token = (await login(s.url, d.email)).accessToken;
    expect(await envelope(d)).toMatchObject({ status: 200, cache: 'miss' });
  });
});
