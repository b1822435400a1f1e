import { join } from 'node:path';
import { S3Objects } from '@sluice/cdn';
import type { FastifyBaseLogger } from 'fastify';
import { PARCELS_DIR } from '../parcels/parcelStore.js';
import type { CdnObjects } from '../resources/service.js';
import { BLOBS_DIR } from '../stores/blobStore.js';
import type { S3StorageConfig } from '../stores/s3PartStore.js';
import type { Store } from '../stores/store.js';
import { FilePartArea } from './filePartArea.js';
import { FileSweepLock } from './fileSweepLock.js';
import type { PartArea } from './partArea.js';
import { S3PartArea } from './s3PartArea.js';
import { Sweeper } from './sweeper.js';
import type { SweepLock } from './sweepLock.js';
import type { SweepSource } from './sweepSource.js';

/** The advisory lock the instances over one database sweep under. */
const SWEEP_LOCK_KEY = 0x51_1c_e0_02;

/** What the store knows: every part a version or a live parcel names, and the CDN keys. */
export function storeSweepSource(store: Store): SweepSource {
  return {
    async referencedBlobIds() {
      const parts = await store.resources.referencedBlobIds();
      for (const id of await store.parcels.referencedBlobIds()) parts.add(id);
      return parts;
    },
    referencedCdnKeys: () => store.resources.referencedCdnKeys(),
    async pendingCdnDeletions() {
      return (await store.removals.list('cdnObject')).map((r) => r.key);
    },
    markCdnDeleted: (cdnKey) => store.removals.done('cdnObject', cdnKey),
  };
}

/** One sweeper at a time over one database: a session advisory lock every instance sees. */
export function databaseSweepLock(store: Store): SweepLock {
  let held: { release(): Promise<void> } | undefined;
  return {
    async tryAcquire() {
      if (held !== undefined) return false;
      held = await store.db.tryLock(SWEEP_LOCK_KEY);
      return held !== undefined;
    },
    async release() {
      const h = held;
      held = undefined;
      await h?.release();
    },
  };
}

export interface StoreSweepOptions {
  store: Store;
  dataDir: string;
  storage: { kind: 'file' } | S3StorageConfig;
  cdnObjects: CdnObjects | null;
  graceMs: number;
  log: FastifyBaseLogger;
}

/**
 * The sweeper of a server: over the S3 storage prefix (only with a database, which names every
 * part written there by any instance) or the data directory's blob folders, and the S3 CDN.
 * Returns the sweeper and what closes the S3 client it made.
 */
export function storeSweeper(o: StoreSweepOptions): { sweeper: Sweeper; close: () => void } {
  let close = () => {};
  const parts: PartArea[] = [];
  if (o.storage.kind === 's3') {
    // With the embedded store another server could share the bucket and prefix: its parts are
    // not in our records, so the storage prefix is swept only with a database.
    if (o.store.backend === 'postgres') {
      const bucket = new S3Objects({
        endpoint: o.storage.endpoint,
        region: o.storage.region,
        bucket: o.storage.bucket,
        uploader: o.storage.credentials,
      });
      close = () => bucket.destroy();
      parts.push(new S3PartArea({ bucket, prefix: o.storage.prefix ?? null }));
    }
  } else {
    parts.push(new FilePartArea(join(o.dataDir, BLOBS_DIR)));
    parts.push(new FilePartArea(join(o.dataDir, PARCELS_DIR, BLOBS_DIR)));
  }
  const lock =
    o.store.backend === 'postgres' ? databaseSweepLock(o.store) : new FileSweepLock(o.dataDir);
  const sweeper = new Sweeper({
    source: storeSweepSource(o.store),
    lock,
    parts,
    cdn: o.cdnObjects,
    graceMs: o.graceMs,
    log: o.log,
  });
  return { sweeper, close };
}
