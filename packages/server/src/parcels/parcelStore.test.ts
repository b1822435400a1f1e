import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
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
});
