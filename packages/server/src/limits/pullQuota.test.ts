// The monthly pull quota against the real server on loopback (and, with SLUICE_TEST_STORE=postgres,
// on PostgreSQL and Ceph): every envelope issued adds its version's bytes to the organisation's
// usage, the envelope cache's hits included, and an envelope past the quota is refused.

import { randomBytes } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { sealAndSplit } from '@sluice/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { patchUser, uploadParts } from '../test-helpers.js';
import { pulledBytes, usageMonth } from './pullQuota.js';

// Before the server starts: its settings read the flag once (Server-Timing names cache hits).
process.env.SLUICE_SERVER_TIMING = '1';
const { addUser, call, login, PASSWORD, removeDir, startServer, tempDir } = await import(
  '../test-helpers.js'
);
type Running = Awaited<ReturnType<typeof startServer>>;

let s: Running;
let work: string;
/** What one envelope of models/m.bin counts: its small and big parts. */
let bytes: number;

afterAll(async () => {
  await s?.close();
  if (s !== undefined) await removeDir(s.dataDir);
  if (work !== undefined) await removeDir(work);
});

beforeAll(async () => {
  work = await tempDir('sluice-quota-');
  s = await startServer();
  await addUser(s, 'up@example.test', 'ResourceUploader');
  const src = join(work, 'plain');
  await writeFile(src, randomBytes(40_000));
  const sealed = await sealAndSplit(src, {
    paths: { small: `${src}.small`, big: `${src}.big` },
    smallSizeKB: 8,
    chunkSize: 4096,
  });
  const up = await uploadParts(
    s.url,
    (await login(s.url, 'up@example.test')).accessToken,
    'models',
    [
      ['name', 'm.bin'],
      ['manifest', JSON.stringify(sealed.manifest)],
      ['dataKey', sealed.key.toString('base64')],
      ['small', await readFile(sealed.smallPath)],
      ['big', await readFile(sealed.bigPath)],
    ],
  );
  expect(up.status).toBe(201);
  const stored = await s.server.store.resources.get('models', 'm.bin');
  bytes = pulledBytes(stored?.versions[0]?.manifest ?? sealed.manifest);
  expect(bytes).toBe(sealed.manifest.smallSize + sealed.manifest.bigSize);
  expect(bytes).toBeGreaterThan(40_000);
});

/** A new organisation with a quota (straight in the store, as the org routes would). */
async function org(id: string, quota: number | null): Promise<void> {
  await s.server.store.db.query(
    'INSERT INTO organisations (id, name, created_at) VALUES ($1, $1, $2)',
    [id, new Date().toISOString()],
  );
  await s.server.store.limits.set(id, { seatLimit: null, monthlyQuotaBytes: quota });
}

let devices = 0;
/** A new Operator of organisation `orgId` with its token and a hardware hash of its own. */
async function device(orgId: string) {
  const email = `quota${++devices}@example.test`;
  const { id } = await addUser(s, email, 'Operator');
  await patchUser(s, id, { orgId });
  const hardware = devices.toString(16).padStart(2, '0').repeat(32);
  return { id, email, hardware, token: (await login(s.url, email)).accessToken };
}

async function envelope(d: { token: string; hardware: string }) {
  const r = await call(s.url, 'POST', '/resources/get/models', {
    token: d.token,
    json: { fileName: 'm.bin', password: PASSWORD, hardware: d.hardware },
  });
  const timing = r.headers.get('server-timing') ?? '';
  return { status: r.status, cache: /cache;desc=(\w+)/.exec(timing)?.[1], body: r.body };
}

const used = (orgId: string) => s.server.store.limits.usage(orgId, usageMonth(new Date()));

describe('the monthly pull quota', () => {
  it('counts each envelope, cache hits too, and refuses the one past the quota adding nothing', async () => {
    await org('two-pulls', 2 * bytes);
    const d = await device('two-pulls');
    expect(await envelope(d)).toMatchObject({ status: 200, cache: 'miss' });
    expect(await used('two-pulls')).toBe(bytes);
    // The cached path (no scrypt) is an envelope all the same.
    expect(await envelope(d)).toMatchObject({ status: 200, cache: 'hit' });
    expect(await used('two-pulls')).toBe(2 * bytes);
    const refused = await envelope(d);
    expect(refused.status).toBe(403);
    expect(refused.body).toMatchObject({ code: 'ERR_QUOTA' });
    expect((refused.body as { error: string }).error).toContain(
      `pulled ${2 * bytes} of its ${2 * bytes} bytes this month`,
    );
    expect((refused.body as Record<string, unknown>).ciphertext).toBeUndefined();
    expect(await used('two-pulls')).toBe(2 * bytes);
    // A raised quota lets the next one through.
    await s.server.store.limits.set('two-pulls', { seatLimit: null, monthlyQuotaBytes: 3 * bytes });
    expect((await envelope(d)).status).toBe(200);
    expect(await used('two-pulls')).toBe(3 * bytes);
  });

  it('an envelope that would only partly fit is refused: the quota is never passed', async () => {
    await org('almost', 2 * bytes - 1);
    const d = await device('almost');
    expect((await envelope(d)).status).toBe(200);
    expect((await envelope(d)).body).toMatchObject({ code: 'ERR_QUOTA' });
    expect(await used('almost')).toBe(bytes);
  });

  it('of concurrent envelopes racing for the last of the quota exactly one is issued', async () => {
    await org('one-pull', bytes);
    const ds = [await device('one-pull'), await device('one-pull'), await device('one-pull')];
    const replies = await Promise.all(ds.map((d) => envelope(d)));
    expect(replies.map((r) => r.status).sort()).toEqual([200, 403, 403]);
    expect(replies.filter((r) => r.status === 403).map((r) => r.body)).toMatchObject([
      { code: 'ERR_QUOTA' },
      { code: 'ERR_QUOTA' },
    ]);
    expect(await used('one-pull')).toBe(bytes);
  });

  it('usage is kept per organisation; one without a quota is counted and never refused', async () => {
    await org('no-quota', null);
    const d = await device('no-quota');
    for (let i = 0; i < 3; i++) expect((await envelope(d)).status).toBe(200);
    expect(await used('no-quota')).toBe(3 * bytes);
    expect(await used('one-pull')).toBe(bytes);
  });
});
