import { constants } from 'node:fs';
import { access, stat } from 'node:fs/promises';
import { S3Objects } from '@sluice/cdn';
import type { BlobStore } from '../stores/blobStore.js';
import type { S3StorageConfig } from '../stores/s3PartStore.js';
import { DEFAULT_READINESS_TIMEOUT_MS, type ReadinessCheck } from './readiness.js';

/** The readiness check of the part storage, and what to release with the server. */
export interface StorageCheck {
  check: ReadinessCheck;
  close(): void;
}

/**
 * `storage`: with file storage, the blob directory and its temp area are directories this
 * process may read, write and enter; with S3, one HeadBucket on a client of its own (one
 * attempt, no SDK retries: a slow store is what the check is there to report).
 */
export function storageCheck(
  storage: { kind: 'file' } | S3StorageConfig,
  blobs: BlobStore,
): StorageCheck {
  if (storage.kind === 'file') {
    return {
      check: { name: 'storage', check: () => blobDirsUsable(blobs) },
      close: () => {},
    };
  }
  const bucket = new S3Objects(
    {
      endpoint: storage.endpoint,
      region: storage.region,
      bucket: storage.bucket,
      uploader: storage.credentials,
    },
    { maxAttempts: 1, requestTimeoutMs: DEFAULT_READINESS_TIMEOUT_MS },
  );
  return {
    check: { name: 'storage', check: (signal) => bucket.ping({ signal }) },
    close: () => bucket.destroy(),
  };
}

async function blobDirsUsable(blobs: BlobStore): Promise<void> {
  for (const dir of [blobs.dir, blobs.tempDir]) {
    if (!(await stat(dir)).isDirectory()) throw new Error(`${dir} is not a directory`);
    await access(dir, constants.R_OK | constants.W_OK | constants.X_OK);
  }
}
