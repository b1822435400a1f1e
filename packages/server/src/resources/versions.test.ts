// Versions and rollback through @sluice/core against the real server: the release pointer, pulls
// of a named version, deleting one version, numbers never reused, retention (keepVersions).
// Runs on both store backends (SLUICE_TEST_STORE=postgres: PostgreSQL and parts on Ceph).

import { randomBytes } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  isSluiceError,
  listVersions,
  pull,
  pullMany,
  push,
  releaseVersion,
  removeResource,
  removeVersion,
  Session,
  sealAndSplit,
} from '@sluice/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
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
  uploadParts,
} from '../test-helpers.js';
import { SMALL_PART_LIMIT } from './limits.js';

const UPLOADER = 'uploader@example.test';
const DEVICE = 'device@example.test';
const HW = 'd4'.repeat(32);

async function sessionOf(s: Running, email: string): Promise<Session> {
  const session = new Session({ apiUrl: s.url });
  session.setCredentials(email, PASSWORD);
  await session.login();
  return session;
}

/** Rejects with a SluiceError of `code` (and answers nothing else). */
async function refused(p: Promise<unknown>, code: string): Promise<string> {
  const e = await p.then(
    () => undefined,
    (err: unknown) => err,
  );
  expect(isSluiceError(e), String(e)).toBe(true);
  expect((e as { code: string }).code).toBe(code);
  return (e as Error).message;
}

/** The parts a version names, and whether each is still in the part storage. */
async function partsOf(s: Running, folder: string, name: string, version: number) {
  const r = await s.server.store.resources.get(folder, name);
  const v = r?.versions.find((x) => x.version === version);
  if (v === undefined) throw new Error(`no version ${version}`);
  return [v.smallBlobId, ...(v.bigBlobId === null ? [] : [v.bigBlobId])];
}

async function stored(s: Running, ids: string[]): Promise<boolean[]> {
  return Promise.all(
    ids.map((id) =>
      s.server.storage.readAll(id, 64 * SMALL_PART_LIMIT).then(
        () => true,
        () => false,
      ),
    ),
  );
}

describe('versions and the release pointer', () => {
  let s: Running;
  let uploader: Session;
  let device: Session;
  const bytes = [0, 1, 2, 3, 4].map(() => randomBytes(300_000));
  const cleanup: (() => Promise<void>)[] = [];
  afterAll(() => runCleanup(cleanup));

  const pullBytes = async (version?: number) =>
    (
      await pull(device, 'models', 'm.bin', {
        to: 'buffer',
        password: PASSWORD,
        hardware: HW,
        version,
      })
    ).data;
  const pushBytes = async (b: Buffer, release?: boolean) =>
    (await push(uploader, 'models', 'm.bin', b, { chunkSize: 64 * 1024, release })).version;

  beforeAll(async () => {
    s = await startServer();
    cleanup.push(async () => {
      await s.close();
      await removeDir(s.dataDir);
    });
    await addUser(s, UPLOADER, 'ResourceUploader');
    await addUser(s, DEVICE, 'Operator');
    uploader = await sessionOf(s, UPLOADER);
    device = await sessionOf(s, DEVICE);
  });

  it('a push releases the new version; a device gets it, or the version it names', async () => {
    expect(await pushBytes(bytes[0] as Buffer)).toBe(1);
    expect(await pushBytes(bytes[1] as Buffer)).toBe(2);
    const listed = await listVersions(device, 'models', 'm.bin');
    expect(listed.current).toBe(2);
    expect(listed.versions.map((v) => [v.version, v.current, v.uploadedBy])).toEqual([
      [1, false, UPLOADER],
      [2, true, UPLOADER],
    ]);
    // IV ‖ AES-CBC with PKCS#7 padding (a whole block when the length is a multiple of 16).
    expect(listed.versions[0]?.blobSize).toBe(16 + (Math.floor(300_000 / 16) + 1) * 16);
    expect((await pullBytes()).equals(bytes[1] as Buffer)).toBe(true);
    const v1 = await pull(device, 'models', 'm.bin', {
      to: 'buffer',
      password: PASSWORD,
      hardware: HW,
      version: 1,
    });
    expect(v1.resource.version).toBe(1);
    expect(v1.data.equals(bytes[0] as Buffer)).toBe(true);
    // The folder listing says which is current and what the next number is.
    const list = await call(s.url, 'GET', '/resources/models', {
      token: (await login(s.url, DEVICE)).accessToken,
    });
    expect(list.body).toMatchObject({
      resources: [{ name: 'm.bin', version: 2, versions: 2, current: 2, nextVersion: 3 }],
    });
  });

  it('release moves what devices get (rollback), through the warm envelope cache', async () => {
    const warm = s.server.envelopeCache?.size.devices ?? 0;
    expect(warm).toBeGreaterThan(0);
    expect(await releaseVersion(uploader, 'models', 'm.bin', 1)).toEqual({
      folder: 'models',
      name: 'm.bin',
      current: 1,
      previous: 2,
    });
    expect((await pullBytes()).equals(bytes[0] as Buffer)).toBe(true);
    expect((await listVersions(device, 'models', 'm.bin')).current).toBe(1);
    // And forward again.
    await releaseVersion(uploader, 'models', 'm.bin', 2);
    expect((await pullBytes()).equals(bytes[1] as Buffer)).toBe(true);
    await releaseVersion(uploader, 'models', 'm.bin', 1);
  });

  it('refuses a release of a version that does not exist, by a device role, or of a bad number', async () => {
    expect(await refused(releaseVersion(uploader, 'models', 'm.bin', 99), 'ERR_NOT_FOUND')).toMatch(
      /no version 99/,
    );
    await refused(releaseVersion(device, 'models', 'm.bin', 2), 'ERR_FORBIDDEN');
    await refused(releaseVersion(uploader, 'models', 'nope.bin', 1), 'ERR_NOT_FOUND');
    await refused(releaseVersion(uploader, 'models', 'm.bin', 0), 'ERR_INVALID_ARG');
    await refused(releaseVersion(uploader, 'models', 'm.bin', 1.5), 'ERR_INVALID_ARG');
    await refused(pullBytes(-1), 'ERR_INVALID_ARG');
    await refused(pullBytes(7), 'ERR_NOT_FOUND');
    // The raw route checks the body too.
    const token = (await login(s.url, UPLOADER)).accessToken;
    const bad = await call(s.url, 'POST', '/resources/models/m.bin/release', {
      token,
      json: { version: 'two' },
    });
    expect(bad.status).toBe(400);
    const deviceToken = (await login(s.url, DEVICE)).accessToken;
    for (const version of [0, -1, 1.5, 'x', 1_000_000_000]) {
      const envelope = await call(s.url, 'POST', '/resources/get/models', {
        token: deviceToken,
        json: { fileName: 'm.bin', password: PASSWORD, hardware: HW, version },
      });
      expect(envelope.status, String(version)).toBe(400);
    }
    expect((await listVersions(device, 'models', 'm.bin')).current).toBe(1);
  });

  it('push --no-release stores a version devices only get by naming it', async () => {
    expect(await pushBytes(bytes[2] as Buffer, false)).toBe(3);
    expect((await listVersions(device, 'models', 'm.bin')).current).toBe(1);
    expect((await pullBytes()).equals(bytes[0] as Buffer)).toBe(true);
    expect((await pullBytes(3)).equals(bytes[2] as Buffer)).toBe(true);
    // A batch pins versions per entry; an entry without one gets the released version.
    const out = await tempDir();
    const batch = await pullMany(
      device,
      [
        { folder: 'models', name: 'm.bin', to: join(out, 'pinned'), version: 3 },
        { folder: 'models', name: 'm.bin', to: join(out, 'released') },
        { folder: 'models', name: 'm.bin', to: join(out, 'gone'), version: 9 },
      ],
      { password: PASSWORD, hardware: HW },
    );
    expect(batch.map((r) => [r.ok, r.version])).toEqual([
      [true, 3],
      [true, 1],
      [false, 9],
    ]);
    expect((await readFile(join(out, 'pinned'))).equals(bytes[2] as Buffer)).toBe(true);
    expect((await readFile(join(out, 'released'))).equals(bytes[0] as Buffer)).toBe(true);
    // A resource's first version is released whatever the push asks: devices must get something.
    await push(uploader, 'models', 'first.bin', bytes[4] as Buffer, { release: false });
    expect((await listVersions(device, 'models', 'first.bin')).current).toBe(1);
    await removeResource(uploader, 'models', 'first.bin');
  });

  it('deletes one version with its parts; its number is never given again', async () => {
    const parts = await partsOf(s, 'models', 'm.bin', 3);
    expect(await stored(s, parts)).toEqual(parts.map(() => true));
    await refused(removeVersion(device, 'models', 'm.bin', 3), 'ERR_FORBIDDEN');
    // v3 was pulled: the envelope cache holds its small part, and must drop it with the version.
    const cache = s.server.envelopeCache;
    const smallsBefore = cache?.size.smallParts ?? 0;
    expect(await removeVersion(uploader, 'models', 'm.bin', 3)).toEqual({
      folder: 'models',
      name: 'm.bin',
      version: 3,
      current: 1,
    });
    expect(await stored(s, parts)).toEqual(parts.map(() => false));
    if (cache !== null) expect(cache.size.smallParts).toBe(smallsBefore - 1);
    await refused(pullBytes(3), 'ERR_NOT_FOUND');
    const token = (await login(s.url, DEVICE)).accessToken;
    expect(
      (await call(s.url, 'GET', '/resources/models/m.bin/big?version=3', { token })).status,
    ).toBe(404);
    expect((await listVersions(device, 'models', 'm.bin')).versions.map((v) => v.version)).toEqual([
      1, 2,
    ]);
    // 3 is gone for good: the next push is 4, so nothing that named 3 can get other bytes.
    expect(await pushBytes(bytes[3] as Buffer)).toBe(4);
    expect((await pullBytes()).equals(bytes[3] as Buffer)).toBe(true);
  });

  it('deleting the released version needs force; the previous one is released then', async () => {
    const msg = await refused(removeVersion(uploader, 'models', 'm.bin', 4), 'ERR_CONFLICT');
    expect(msg).toMatch(/released version/);
    expect((await pullBytes()).equals(bytes[3] as Buffer)).toBe(true);
    const removed = await removeVersion(uploader, 'models', 'm.bin', 4, { force: true });
    expect(removed.current).toBe(2);
    expect((await pullBytes()).equals(bytes[1] as Buffer)).toBe(true);
    await refused(removeVersion(uploader, 'models', 'm.bin', 4), 'ERR_NOT_FOUND');
  });

  it('refuses a bad release field or delete query, storing and deleting nothing', async () => {
    const token = (await login(s.url, UPLOADER)).accessToken;
    const src = join(await tempDir(), 'plain');
    await writeFile(src, randomBytes(20_000));
    const sealed = await sealAndSplit(src, {
      paths: { small: `${src}.small`, big: `${src}.big` },
      smallSizeKB: 4,
      chunkSize: 4096,
    });
    const up = await uploadParts(s.url, token, 'models', [
      ['name', 'x.bin'],
      ['manifest', JSON.stringify(sealed.manifest)],
      ['dataKey', sealed.key.toString('base64')],
      ['release', 'maybe'],
      ['small', await readFile(sealed.smallPath)],
      ['big', await readFile(sealed.bigPath)],
    ]);
    expect(up.status).toBe(400);
    expect(up.body).toMatchObject({
      code: 'ERR_BAD_REQUEST',
      error: 'release must be true or false',
    });
    expect(await s.server.store.resources.names()).toEqual(['models/m.bin']);
    const queries = [
      'version=abc',
      'version=0',
      'version=1&force=maybe',
      'verison=1',
      'force=true',
      'version=1&version=2',
      'version=%201',
      'version=1e0',
    ];
    for (const query of queries) {
      const r = await call(s.url, 'DELETE', `/resources/models/m.bin?${query}`, { token });
      expect(r.status, query).toBe(400);
    }
    expect((await listVersions(device, 'models', 'm.bin')).versions).toHaveLength(2);
  });

  it('deleting the last version deletes the resource', async () => {
    await removeVersion(uploader, 'models', 'm.bin', 1);
    const last = await removeVersion(uploader, 'models', 'm.bin', 2, { force: true });
    expect(last.current).toBeNull();
    await refused(listVersions(device, 'models', 'm.bin'), 'ERR_NOT_FOUND');
    await refused(pullBytes(), 'ERR_NOT_FOUND');
    expect(await s.server.store.resources.names()).toEqual([]);
  });

  it('removeResource deletes every version at once', async () => {
    await pushBytes(bytes[0] as Buffer);
    await pushBytes(bytes[1] as Buffer);
    await removeResource(uploader, 'models', 'm.bin');
    await refused(listVersions(device, 'models', 'm.bin'), 'ERR_NOT_FOUND');
  });
});

describe('retention (keepVersions)', () => {
  let s: Running;
  let uploader: Session;
  const cleanup: (() => Promise<void>)[] = [];
  afterAll(() => runCleanup(cleanup));

  beforeAll(async () => {
    s = await startServer({ keepVersions: 2 });
    cleanup.push(async () => {
      await s.close();
      await removeDir(s.dataDir);
    });
    await addUser(s, UPLOADER, 'ResourceUploader');
    uploader = await sessionOf(s, UPLOADER);
  });

  const versionsNow = async () =>
    (await listVersions(uploader, 'models', 'r.bin')).versions.map((v) => v.version);

  it('keeps the newest N and the released one, removing the others with their parts', async () => {
    const push1 = () =>
      push(uploader, 'models', 'r.bin', randomBytes(50_000), { chunkSize: 16_384 });
    await push1();
    await push1();
    const firstParts = await partsOf(s, 'models', 'r.bin', 1);
    await push1();
    expect(await versionsNow()).toEqual([2, 3]);
    expect(await stored(s, firstParts)).toEqual(firstParts.map(() => false));
    await releaseVersion(uploader, 'models', 'r.bin', 2);
    await push(uploader, 'models', 'r.bin', randomBytes(50_000), {
      chunkSize: 16_384,
      release: false,
    });
    // 2 is released: it stays beyond the newest two.
    expect(await versionsNow()).toEqual([2, 3, 4]);
    await push(uploader, 'models', 'r.bin', randomBytes(50_000), {
      chunkSize: 16_384,
      release: false,
    });
    expect(await versionsNow()).toEqual([2, 4, 5]);
    expect((await listVersions(uploader, 'models', 'r.bin')).current).toBe(2);
    await push1();
    // Released with the push: now only the newest two remain.
    expect(await versionsNow()).toEqual([5, 6]);
  });

  it('a release racing the deletion of the same version: exactly one wins, the pointer stays valid', async () => {
    const up = (release: boolean) =>
      push(uploader, 'models', 'race.bin', randomBytes(20_000), { chunkSize: 16_384, release });
    await up(true);
    for (let round = 0; round < 4; round++) {
      const { version } = await up(false);
      const outcomes = await Promise.allSettled([
        releaseVersion(uploader, 'models', 'race.bin', version),
        removeVersion(uploader, 'models', 'race.bin', version),
      ]);
      expect(
        outcomes.filter((o) => o.status === 'fulfilled'),
        `round ${round}`,
      ).toHaveLength(1);
      const listed = await listVersions(uploader, 'models', 'race.bin');
      expect(listed.versions.map((v) => v.version)).toContain(listed.current);
      const lost = outcomes.find((o) => o.status === 'rejected') as PromiseRejectedResult;
      expect(['ERR_CONFLICT', 'ERR_NOT_FOUND']).toContain((lost.reason as { code: string }).code);
    }
  });

  it('refuses a bad keepVersions at start', async () => {
    await expect(startServer({ keepVersions: -1 })).rejects.toThrow(/keepVersions/);
  });
});
