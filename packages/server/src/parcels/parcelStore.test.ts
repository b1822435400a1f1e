import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BlobStore } from '../stores/blobStore.js';
import { Store } from '../stores/store.js';
import { PARCELS_DIR, ParcelStore } from './parcelStore.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'sluice-parcel-store-'));
});
const stores: Store[] = [];
afterAll(async () => {
  for (const s of stores) await s.close();
  await rm(dir, { recursive: true, force: true });
});

/** The data directory's store, closed at the end. */
async function storeOf(dataDir: string): Promise<Store> {
  const store = await Store.open({ dataDir });
  stores.push(store);
  return store;
}

const owner = 'ab'.repeat(20);

describe('ParcelStore', () => {
  it('creates nothing until the first parcel; sweeps unreferenced bytes when reopened', async () => {
    const dataDir = join(dir, 'sweep');
    const server = await BlobStore.open(dataDir);
    const records = await storeOf(dataDir);
    const store = await ParcelStore.open(records, dataDir, server);
    expect(
      (await readdir(dataDir)).filter((n) => !n.startsWith('sluice.db') && !n.endsWith('.lock')),
    ).toEqual(['blobs']);
    const pending = await store.receive(Readable.from([Buffer.from('kept')]));
    const { record } = await store.add('11'.repeat(32), owner, '22'.repeat(32), pending);
    const blobs = join(dataDir, PARCELS_DIR, 'blobs');
    // A crash between storing bytes and recording them leaves a file nobody names.
    const orphan = 'ff'.repeat(16);
    await writeFile(join(blobs, orphan), 'orphan');
    const reopened = await ParcelStore.open(records, dataDir, server);
    expect((await readdir(blobs)).filter((n) => n !== '.tmp')).toEqual([record.blobId]);
    expect(await reopened.get(record.id)).toEqual(record);
  });

  it('a removal whose bytes cannot be deleted still leaves the tombstone, and says so', async () => {
    const dataDir = join(dir, 'stuck');
    const blobs = await BlobStore.open(dataDir);
    const store = await ParcelStore.open(await storeOf(dataDir), dataDir, blobs);
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
    expect(await store.get(record.id)).toMatchObject({
      blobId: null,
      removedAt: expect.any(String),
    });
    expect(await store.remove(record.id)).toBeUndefined();
  });
});
