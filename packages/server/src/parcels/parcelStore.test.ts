import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BlobStore } from '../stores/blobStore.js';
import { PARCELS_DIR, PARCELS_FILE, ParcelStore } from './parcelStore.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'sluice-parcel-store-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const owner = 'ab'.repeat(20);

describe('ParcelStore', () => {
  it('creates nothing until the first parcel; sweeps unreferenced bytes when reopened', async () => {
    const dataDir = join(dir, 'sweep');
    const server = await BlobStore.open(dataDir);
    const store = await ParcelStore.open(dataDir, server);
    expect((await readdir(dataDir)).sort()).toEqual(['blobs']);
    const pending = await store.receive(Readable.from([Buffer.from('kept')]));
    const { record } = await store.add('11'.repeat(32), owner, '22'.repeat(32), pending);
    const blobs = join(dataDir, PARCELS_DIR, 'blobs');
    // A crash between storing bytes and recording them leaves a file nobody names.
    const orphan = 'ff'.repeat(16);
    await writeFile(join(blobs, orphan), 'orphan');
    await store.flush();
    const reopened = await ParcelStore.open(dataDir, server);
    expect((await readdir(blobs)).filter((n) => n !== '.tmp')).toEqual([record.blobId]);
    expect(reopened.get(record.id)).toEqual(record);
  });

  it('refuses to start over a parcels file it cannot read', async () => {
    const dataDir = join(dir, 'broken');
    const server = await BlobStore.open(dataDir);
    await writeFile(join(dataDir, PARCELS_FILE), '{"version": 1, "parcels": [');
    await expect(ParcelStore.open(dataDir, server)).rejects.toThrow(/not valid JSON/);
    await writeFile(join(dataDir, PARCELS_FILE), '{"version": 2, "parcels": {}}');
    await expect(ParcelStore.open(dataDir, server)).rejects.toThrow(/not a version 1/);
  });

  it('a removal whose bytes cannot be deleted still leaves the tombstone, and says so', async () => {
    const dataDir = join(dir, 'stuck');
    const store = await ParcelStore.open(dataDir, await BlobStore.open(dataDir));
    const pending = await store.receive(Readable.from([Buffer.from('stuck')]));
    const { record } = await store.add('33'.repeat(32), owner, '44'.repeat(32), pending);
    // A directory where the file was: deleting it as a file fails.
    const path = join(dataDir, PARCELS_DIR, 'blobs', record.blobId ?? '');
    await rm(path);
    await mkdir(path);
    await writeFile(join(path, 'x'), 'x');
    const removed = await store.remove(record.id);
    expect(removed?.record.id).toBe(record.id);
    expect(removed?.bytesLeft).toBeInstanceOf(Error);
    expect(store.get(record.id)).toMatchObject({ blobId: null, removedAt: expect.any(String) });
    expect(await store.remove(record.id)).toBeUndefined();
  });
});
