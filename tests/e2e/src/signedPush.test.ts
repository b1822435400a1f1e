// Pushes that write v2 manifests: the version the client proposes and signs, concurrent pushes of
// one name, and a push's cache entry that the next pull uses.
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { type ManifestV2, publisherPublicKey, pull, push } from '@sluice/core';
import { describe, expect, it } from 'vitest';
import {
  createUserViaApi,
  DEVICE_USER,
  onCleanup,
  PASSWORD,
  rejection,
  removeDir,
  sha,
  signedIn,
  startForTest,
  tempDir,
  UPLOADER,
} from './apiServer.js';

const HW = sha('signed push device');
const CHUNK = 64 * 1024;

async function world() {
  const api = await startForTest();
  const work = await tempDir('sluice-signed-');
  onCleanup(() => removeDir(work));
  await createUserViaApi(api, UPLOADER, 'ResourceUploader');
  await createUserViaApi(api, DEVICE_USER, 'Operator');
  const uploader = await signedIn(api, UPLOADER);
  const key = generateKeyPairSync('ed25519').privateKey;
  await uploader.request('POST', '/me/publisher-keys', {
    json: { publicKey: publisherPublicKey(key) },
  });
  const src = join(work, 'src.bin');
  const plain = randomBytes(200_000);
  await writeFile(src, plain);
  return { api, work, uploader, key, src, plain };
}

describe('signed pushes (manifest v2)', () => {
  it('each push signs the next version; the stored manifest names it and its publisher', async () => {
    const w = await world();
    for (const version of [1, 2, 3]) {
      const created = await push(w.uploader, 'models', 'm.bin', w.src, {
        chunkSize: CHUNK,
        signKey: w.key,
      });
      expect(created).toEqual({ folder: 'models', name: 'm.bin', version });
      const stored = (await w.api.server.store.resources.get('models', 'm.bin'))?.versions.at(
        -1,
      )?.manifest;
      expect(stored).toMatchObject({
        version: 2,
        resource: { folder: 'models', name: 'm.bin', version },
        signature: { alg: 'Ed25519', key: publisherPublicKey(w.key) },
      });
    }
  });

  it('concurrent signed pushes of one name get distinct consecutive versions (409s retried, re-signed)', async () => {
    const w = await world();
    const created = await Promise.all(
      [1, 2, 3, 4, 5].map(() =>
        push(w.uploader, 'models', 'race.bin', w.src, { chunkSize: CHUNK, signKey: w.key }),
      ),
    );
    expect(created.map((c) => c.version).sort()).toEqual([1, 2, 3, 4, 5]);
    const versions = (await w.api.server.store.resources.get('models', 'race.bin'))?.versions ?? [];
    expect(versions.map((v) => (v.manifest as ManifestV2).resource.version)).toEqual([
      1, 2, 3, 4, 5,
    ]);
    expect(versions.map((v) => v.version)).toEqual([1, 2, 3, 4, 5]);
  });

  it('a key not registered to the uploader is refused by the server: ERR_UNTRUSTED_PUBLISHER, nothing stored', async () => {
    const w = await world();
    const stranger = generateKeyPairSync('ed25519').privateKey;
    const err = await rejection(
      push(w.uploader, 'models', 'm.bin', w.src, { chunkSize: CHUNK, signKey: stranger }),
    );
    expect(err.code).toBe('ERR_UNTRUSTED_PUBLISHER');
    expect(await w.api.server.store.resources.get('models', 'm.bin')).toBeUndefined();
  });

  it("a push's cache entry holds the signed manifest, and the next pull is served from it", async () => {
    const w = await world();
    const cacheDir = join(w.work, 'cache');
    await push(w.uploader, 'models', 'm.bin', w.src, {
      chunkSize: CHUNK,
      signKey: w.key,
      cacheDir,
    });
    const device = await signedIn(w.api, DEVICE_USER);
    const to = join(w.work, 'out.bin');
    const r = await pull(device, 'models', 'm.bin', {
      to,
      password: PASSWORD,
      hardware: HW,
      cacheDir,
      trustedPublishers: [publisherPublicKey(w.key)],
    });
    expect(r).toMatchObject({ fromCache: true, publisher: publisherPublicKey(w.key) });
    expect(sha(await readFile(to))).toBe(sha(w.plain));
    expect(w.api.hitCount('GET /resources/models/m.bin/big')).toBe(0);
  });
});
