// v2 uploads through the real route: the manifest names its resource version and may be signed;
// the server refuses what the uploader may not register before any file part is stored.
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  deriveEnvelopeKey,
  envelopeAad,
  type Manifest,
  type ManifestV2,
  openEnvelope,
  publisherPublicKey,
  sealAndSplit,
  signManifest,
  toManifestV2,
} from '@sluice/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  addUser,
  call,
  login,
  PASSWORD,
  type Running,
  removeDir,
  startServer,
  tempDir,
  type UploadPart,
  uploadParts,
} from '../test-helpers.js';

let s: Running;
let work: string;
let token: string;
let uploaderId: string;
let sealed: { small: Buffer; big: Buffer; layout: Manifest; smallSha256: string; key: Buffer };
const publisher = generateKeyPairSync('ed25519').privateKey;
const stranger = generateKeyPairSync('ed25519').privateKey;

beforeAll(async () => {
  work = await tempDir('sluice-v2-');
  const src = join(work, 'plain');
  await writeFile(src, randomBytes(60_000));
  const r = await sealAndSplit(src, {
    paths: { small: `${src}.small`, big: `${src}.big` },
    smallSizeKB: 8,
    chunkSize: 4096,
  });
  sealed = {
    small: await readFile(r.smallPath),
    big: await readFile(r.bigPath),
    layout: r.manifest,
    smallSha256: r.smallSha256,
    key: r.key,
  };
  s = await startServer();
  uploaderId = (await addUser(s, 'up@example.test', 'ResourceUploader')).id;
  token = (await login(s.url, 'up@example.test')).accessToken;
  const reg = await call(s.url, 'POST', '/me/publisher-keys', {
    token,
    json: { publicKey: publisherPublicKey(publisher) },
  });
  expect(reg.status).toBe(201);
});
afterAll(async () => {
  await s.close();
  await removeDir(s.dataDir);
  await removeDir(work);
});

const manifestFor = (name: string, version: number, folder = 'models'): ManifestV2 =>
  toManifestV2(sealed.layout, {
    resource: { folder, name, version },
    smallSha256: sealed.smallSha256,
    dataKey: sealed.key,
  });

function parts(name: string, manifest: unknown, big: Buffer = sealed.big): UploadPart[] {
  return [
    ['name', name],
    ['manifest', JSON.stringify(manifest)],
    ['dataKey', sealed.key.toString('base64')],
    ['small', sealed.small],
    ['big', big],
  ];
}

/** Every stored and temp blob file. */
async function blobFiles(): Promise<string[]> {
  const dir = join(s.dataDir, 'blobs');
  return [...(await readdir(dir)), ...(await readdir(join(dir, '.tmp')))];
}

describe('v2 uploads', () => {
  it('an unsigned and a signed v2 manifest are stored as uploaded and reach the device envelope', async () => {
    const unsigned = manifestFor('plain.bin', 1);
    expect((await uploadParts(s.url, token, 'models', parts('plain.bin', unsigned))).status).toBe(
      201,
    );
    const signed = signManifest(manifestFor('signed.bin', 1), publisher);
    const up = await uploadParts(s.url, token, 'models', parts('signed.bin', signed));
    expect(up.status).toBe(201);
    expect(up.body).toEqual({ folder: 'models', name: 'signed.bin', version: 1 });
    expect(
      (await s.server.store.resources.get('models', 'signed.bin'))?.versions[0]?.manifest,
    ).toEqual(signed);
    const hw = 'c3'.repeat(32);
    const env = await call(s.url, 'POST', '/resources/get/models', {
      token,
      json: { fileName: 'signed.bin', password: PASSWORD, hardware: hw },
    });
    const key = await deriveEnvelopeKey('up@example.test', PASSWORD, hw);
    const payload = openEnvelope(
      key,
      env.body,
      envelopeAad({ folder: 'models', name: 'signed.bin', version: 1 }),
    );
    expect(payload.manifest).toEqual(signed);
  });

  it('a version other than the next is 409 ERR_VERSION_CONFLICT with the latest, before the big part is read', async () => {
    expect(
      (await uploadParts(s.url, token, 'models', parts('seq.bin', manifestFor('seq.bin', 1))))
        .status,
    ).toBe(201);
    const before = await blobFiles();
    for (const version of [1, 3, 7]) {
      const r = await uploadParts(
        s.url,
        token,
        'models',
        parts('seq.bin', signManifest(manifestFor('seq.bin', version), publisher)),
      );
      expect(r.status, `version ${version}`).toBe(409);
      expect(r.body).toMatchObject({ code: 'ERR_VERSION_CONFLICT', latest: 1 });
    }
    expect(await blobFiles()).toEqual(before);
    // A big part over the server's limit is never read: the conflict is the answer, not 413.
    const tight = await startServer({ bigPartLimit: 1000, dataDir: await tempDir() });
    try {
      await addUser(tight, 'up@example.test', 'ResourceUploader');
      const t = (await login(tight.url, 'up@example.test')).accessToken;
      const r = await uploadParts(tight.url, t, 'models', parts('x.bin', manifestFor('x.bin', 2)));
      expect(r.status).toBe(409);
      expect(r.body).toMatchObject({ code: 'ERR_VERSION_CONFLICT', latest: 0 });
    } finally {
      await tight.close();
      await removeDir(tight.dataDir);
    }
    expect(
      (await uploadParts(s.url, token, 'models', parts('seq.bin', manifestFor('seq.bin', 2))))
        .status,
    ).toBe(201);
  });

  it('a manifest for another folder or name is 400; a data key or small part that differs from the manifest is 400', async () => {
    const before = await blobFiles();
    for (const m of [manifestFor('a.bin', 1, 'other'), manifestFor('b.bin', 1)]) {
      const r = await uploadParts(s.url, token, 'models', parts('a.bin', m));
      expect(r.status).toBe(400);
      expect(r.body).toMatchObject({
        code: 'ERR_BAD_REQUEST',
        error: expect.stringMatching(/the manifest is for/),
      });
    }
    const otherKey: UploadPart = ['dataKey', randomBytes(32).toString('base64')];
    const wrongKey = await uploadParts(
      s.url,
      token,
      'models',
      parts('a.bin', manifestFor('a.bin', 1)).map((p) => (p[0] === 'dataKey' ? otherKey : p)),
    );
    expect(wrongKey.status).toBe(400);
    expect(wrongKey.body).toMatchObject({
      error: "dataKey does not match the manifest's keyCheck",
    });
    const flipped = Buffer.from(sealed.small);
    flipped[100] = (flipped[100] ?? 0) ^ 1;
    const r = await uploadParts(s.url, token, 'models', [
      ...parts('a.bin', manifestFor('a.bin', 1)).slice(0, 3),
      ['small', flipped],
      ['big', sealed.big],
    ]);
    expect(r.status).toBe(400);
    expect(r.body).toMatchObject({ error: "small part does not match the manifest's digest" });
    expect(await blobFiles()).toEqual(before);
    expect(await s.server.store.resources.get('models', 'a.bin')).toBeUndefined();
  });

  it('a bad signature is 400 ERR_BAD_SIGNATURE; a key not registered to the uploader is 403 ERR_UNTRUSTED_PUBLISHER', async () => {
    const before = await blobFiles();
    const good = signManifest(manifestFor('k.bin', 1), publisher);
    const sig = Buffer.from(good.signature?.sig ?? '', 'base64');
    sig[0] = (sig[0] ?? 0) ^ 1;
    const tampered = { ...good, signature: { ...good.signature, sig: sig.toString('base64') } };
    const bad = await uploadParts(s.url, token, 'models', parts('k.bin', tampered));
    expect(bad.status).toBe(400);
    expect(bad.body).toMatchObject({ code: 'ERR_BAD_SIGNATURE' });
    const foreign = await uploadParts(
      s.url,
      token,
      'models',
      parts('k.bin', signManifest(manifestFor('k.bin', 1), stranger)),
    );
    expect(foreign.status).toBe(403);
    expect(foreign.body).toMatchObject({ code: 'ERR_UNTRUSTED_PUBLISHER' });
    // Registered to someone else is no better.
    await addUser(s, 'owner@example.test', 'Admin');
    const owner = (await login(s.url, 'owner@example.test')).accessToken;
    const otherKey = generateKeyPairSync('ed25519').privateKey;
    await call(s.url, 'POST', '/me/publisher-keys', {
      token: owner,
      json: { publicKey: publisherPublicKey(otherKey) },
    });
    const borrowed = await uploadParts(
      s.url,
      token,
      'models',
      parts('k.bin', signManifest(manifestFor('k.bin', 1), otherKey)),
    );
    expect(borrowed.status).toBe(403);
    expect(await blobFiles()).toEqual(before);
    expect(await s.server.store.resources.get('models', 'k.bin')).toBeUndefined();
    expect(await s.server.store.users.publisherKeys(uploaderId)).toHaveLength(1);
  });

  it('concurrent v2 uploads naming one version: exactly one is stored, the others are 409', async () => {
    const replies = await Promise.all(
      [1, 2, 3, 4].map(() =>
        uploadParts(
          s.url,
          token,
          'models',
          parts('race.bin', signManifest(manifestFor('race.bin', 1), publisher)),
        ),
      ),
    );
    expect(replies.map((r) => r.status).sort()).toEqual([201, 409, 409, 409]);
    expect((await s.server.store.resources.get('models', 'race.bin'))?.versions).toHaveLength(1);
  });
});
