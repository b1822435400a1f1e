// Hostile-input suite (docs/SECURITY.md, "Integrity end to end"): a server, its storage or its CDN
// that changes what a publisher uploaded. Devices check the v2 manifest (its resource, its
// publisher's signature, their trust list) and the small part's digest before they write a byte.
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  BigPartCache,
  type Manifest,
  type ManifestV2,
  publisherPublicKey,
  pull,
  push,
  type Session,
} from '@sluice/core';
import { describe, expect, it } from 'vitest';
import {
  type ApiServer,
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
} from '../apiServer.js';

const HW = sha('manifest hostile device');
const CHUNK = 64 * 1024;
const publisher = generateKeyPairSync('ed25519').privateKey;
const PUBLISHER = publisherPublicKey(publisher);
const OTHER = publisherPublicKey(generateKeyPairSync('ed25519').privateKey);

interface World {
  api: ApiServer;
  uploader: Session;
  device: Session;
  src: string;
  plain: Buffer;
  out: string;
  work: string;
}

/** A server with an uploader whose publisher key is registered, a device user, and a source file. */
async function world(): Promise<World> {
  const api = await startForTest();
  const work = await tempDir('sluice-manifest-');
  onCleanup(() => removeDir(work));
  await createUserViaApi(api, UPLOADER, 'ResourceUploader');
  await createUserViaApi(api, DEVICE_USER, 'Operator');
  const uploader = await signedIn(api, UPLOADER);
  await uploader.request('POST', '/me/publisher-keys', { json: { publicKey: PUBLISHER } });
  const plain = randomBytes(300_000);
  const src = join(work, 'src.bin');
  await writeFile(src, plain);
  const out = join(work, 'out');
  await mkdir(out);
  return { api, uploader, device: await signedIn(api, DEVICE_USER), src, plain, out, work };
}

const signedPush = (w: World) =>
  push(w.uploader, 'models', 'm.bin', w.src, { chunkSize: CHUNK, signKey: publisher });

function pullTo(w: World, options: { trustedPublishers?: string[]; cacheDir?: string } = {}) {
  return pull(w.device, 'models', 'm.bin', {
    to: join(w.out, 'm.bin'),
    password: PASSWORD,
    hardware: HW,
    ...options,
  });
}

/** The pull fails with `code`, nothing is at (or beside) the destination, the server still answers. */
async function refused(w: World, code: string, options: Parameters<typeof pullTo>[1] = {}) {
  const err = await rejection(pullTo(w, options));
  expect(err.code, err.message).toBe(code);
  expect(await readdir(w.out)).toEqual([]);
  expect((await fetch(`${w.api.url}/.well-known/jwks.json`)).status).toBe(200);
  return err;
}

/** The stored record of the latest version of models/m.bin. */
async function latest(w: World) {
  const v = (await w.api.server.store.resources.get('models', 'm.bin'))?.versions.at(-1);
  if (v === undefined) throw new Error('nothing stored');
  return v;
}

/** Rewrites the stored manifest of the latest version, as a compromised server could. */
async function rewriteManifest(w: World, change: (m: ManifestV2) => void) {
  await replaceManifest(w, (m) => {
    if (m.version === 2) change(m);
    return m;
  });
}

/** Replaces the stored manifest of version `version` (default: the latest) of models/m.bin. */
async function replaceManifest(
  w: World,
  next: (m: Manifest) => Manifest,
  version?: number,
): Promise<void> {
  const { store } = w.api.server;
  const r = await store.resources.get('models', 'm.bin');
  const v = version === undefined ? r?.versions.at(-1) : r?.versions[version - 1];
  if (r === undefined || v === undefined) throw new Error('nothing stored');
  await store.db.query(
    'UPDATE resource_versions SET manifest = $1 WHERE resource_id = $2 AND version = $3',
    [JSON.stringify(next(v.manifest)), r.id, v.version],
  );
}

/** `folder/name`'s resource id and versions, straight from the store. */
async function record(w: World, name: string) {
  const r = await w.api.server.store.resources.get('models', name);
  if (r === undefined) throw new Error(`no models/${name}`);
  return r;
}

describe('a server, storage or CDN that changes what the publisher uploaded', () => {
  it('a damaged small part: ERR_CHUNK_DIGEST before decryption, nothing written, no cache entry', async () => {
    const w = await world();
    await push(w.uploader, 'models', 'm.bin', w.src, { chunkSize: CHUNK });
    const path = join(w.api.dataDir, 'blobs', (await latest(w)).smallBlobId);
    const small = await readFile(path);
    const at = small.length >> 1;
    small[at] = (small[at] ?? 0) ^ 0x01;
    await writeFile(path, small);
    const cacheDir = join(w.work, 'cache');
    const err = await refused(w, 'ERR_CHUNK_DIGEST', { cacheDir });
    expect(err.message).toMatch(/^small part: SHA-256 /);
    const cache = await BigPartCache.open(cacheDir);
    expect(await cache.list()).toEqual([]);
  });

  it('a signed resource pulls with a trust list naming its key, and the result names the publisher', async () => {
    const w = await world();
    expect(await signedPush(w)).toEqual({ folder: 'models', name: 'm.bin', version: 1 });
    const r = await pullTo(w, { trustedPublishers: [OTHER, PUBLISHER] });
    expect(r.publisher).toBe(PUBLISHER);
    expect(sha(await readFile(join(w.out, 'm.bin')))).toBe(sha(w.plain));
  });

  it('a trust list without the signer: ERR_UNTRUSTED_PUBLISHER, nothing written', async () => {
    const w = await world();
    await signedPush(w);
    const err = await refused(w, 'ERR_UNTRUSTED_PUBLISHER', { trustedPublishers: [OTHER] });
    expect(err.message).toContain(PUBLISHER);
    expect(w.api.hitCount('GET /resources/models/m.bin/big')).toBe(0);
  });

  it('an unsigned resource (a v2 push without a key, a v1 upload) with a trust list: ERR_UNTRUSTED_PUBLISHER', async () => {
    const w = await world();
    await push(w.uploader, 'models', 'm.bin', w.src, { chunkSize: CHUNK });
    expect((await latest(w)).manifest.version).toBe(2);
    expect((await pullTo(w)).publisher).toBeNull();
    await removeDir(w.out);
    await mkdir(w.out);
    await refused(w, 'ERR_UNTRUSTED_PUBLISHER', { trustedPublishers: [PUBLISHER] });
    // The same bytes described by a v1 manifest (what older clients uploaded).
    await replaceManifest(w, (m) => {
      if (m.version !== 2) return m;
      const { resource: _r, small: _s, keyCheck: _k, signature: _g, ...rest } = m;
      return { ...rest, version: 1 };
    });
    expect((await latest(w)).manifest.version).toBe(1);
    await refused(w, 'ERR_UNTRUSTED_PUBLISHER', { trustedPublishers: [PUBLISHER] });
  });

  it('a signature altered on the server (stored manifest rewritten): ERR_BAD_SIGNATURE with or without a trust list', async () => {
    const w = await world();
    await signedPush(w);
    await rewriteManifest(w, (m) => {
      const sig = Buffer.from(m.signature?.sig ?? '', 'base64');
      sig[5] = (sig[5] ?? 0) ^ 0x40;
      if (m.signature) m.signature.sig = sig.toString('base64');
    });
    await refused(w, 'ERR_BAD_SIGNATURE');
    await refused(w, 'ERR_BAD_SIGNATURE', { trustedPublishers: [PUBLISHER] });
  });

  it('a small part replaced together with its digest in the manifest: the signature no longer verifies', async () => {
    const w = await world();
    await signedPush(w);
    const path = join(w.api.dataDir, 'blobs', (await latest(w)).smallBlobId);
    const small = await readFile(path);
    small[100] = (small[100] ?? 0) ^ 0x01;
    await writeFile(path, small);
    await rewriteManifest(w, (m) => {
      m.small = sha(small);
    });
    await refused(w, 'ERR_BAD_SIGNATURE', { trustedPublishers: [PUBLISHER] });
  });

  it("a data key swapped by the server (another resource's): ERR_BAD_DECRYPT from keyCheck, nothing written", async () => {
    const w = await world();
    await push(w.uploader, 'models', 'other.bin', w.src, { chunkSize: CHUNK, signKey: publisher });
    await signedPush(w);
    // The server unwraps other.bin's key as m.bin's (same resource id, its wrapped key).
    const mine = await record(w, 'm.bin');
    const other = await record(w, 'other.bin');
    const q = (sql: string, params: (string | null)[]) => w.api.server.store.db.query(sql, params);
    // m.bin's versions move to other.bin's resource id, with other.bin's wrapped key.
    await q('DELETE FROM resource_versions WHERE resource_id = $1', [other.id]);
    await q('DELETE FROM resources WHERE id = $1', [other.id]);
    await q('INSERT INTO resources (id, folder, name) VALUES ($1, $2, $3)', [
      other.id,
      'models',
      'moved.bin',
    ]);
    await q(
      'UPDATE resource_versions SET resource_id = $1, wrapped_data_key = $2 WHERE resource_id = $3',
      [other.id, other.versions[0]?.wrappedDataKey ?? null, mine.id],
    );
    await q('DELETE FROM resources WHERE id = $1', [mine.id]);
    await q('UPDATE resources SET name = $1 WHERE id = $2', ['m.bin', other.id]);
    const err = await refused(w, 'ERR_BAD_DECRYPT', { trustedPublishers: [PUBLISHER] });
    expect(err.message).toMatch(/keyCheck/);
  });

  it("another resource's record served under this name (same publisher): ERR_BAD_MANIFEST", async () => {
    const w = await world();
    await push(w.uploader, 'models', 'other.bin', w.src, { chunkSize: CHUNK, signKey: publisher });
    await signedPush(w);
    const mine = await record(w, 'm.bin');
    const other = await record(w, 'other.bin');
    // m.bin's name now leads to other.bin's record.
    await w.api.server.store.db.query('DELETE FROM resource_versions WHERE resource_id = $1', [
      mine.id,
    ]);
    await w.api.server.store.db.query('DELETE FROM resources WHERE id = $1', [mine.id]);
    await w.api.server.store.db.query('UPDATE resources SET name = $1 WHERE id = $2', [
      'm.bin',
      other.id,
    ]);
    const err = await refused(w, 'ERR_BAD_MANIFEST', { trustedPublishers: [PUBLISHER] });
    expect(err.message).toContain('models/other.bin v1, not models/m.bin v1');
  });

  it('a manifest that names another version (an older signed one replayed): ERR_BAD_MANIFEST', async () => {
    const w = await world();
    await signedPush(w);
    const first = await latest(w);
    await signedPush(w);
    expect((await latest(w)).version).toBe(2);
    // The server hands out version 1's (validly signed) manifest as version 2's.
    await replaceManifest(w, () => structuredClone(first.manifest), 2);
    const err = await refused(w, 'ERR_BAD_MANIFEST', { trustedPublishers: [PUBLISHER] });
    expect(err.message).toMatch(/the manifest is for models\/m.bin v1, not models\/m.bin v2/);
  });
});
