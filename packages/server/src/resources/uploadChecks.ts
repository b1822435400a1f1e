import { manifestKeyCheck, sha256File, sha256FileChunks } from '@sluice/core';
import { cdnObjectKey, type Manifest, SluiceError } from '@sluice/protocol';
import type { PendingBlob } from '../stores/partStorage.js';
import type { Store } from '../stores/store.js';
import type { CdnObjects } from './service.js';

/** Throws 400 unless a v2 manifest's `keyCheck` is that of the uploaded data key. */
export function checkDataKey(manifest: Manifest, dataKey: Buffer): void {
  if (manifest.version === 2 && manifestKeyCheck(dataKey) !== manifest.keyCheck) {
    throw new SluiceError('ERR_BAD_REQUEST', "dataKey does not match the manifest's keyCheck");
  }
}

/** Throws 400 unless the small part has the manifest's size and (v2) SHA-256. */
export async function checkSmallPart(small: PendingBlob, manifest: Manifest): Promise<void> {
  if (small.size !== manifest.smallSize) {
    throw new SluiceError(
      'ERR_BAD_REQUEST',
      `small part is ${small.size} bytes; the manifest says ${manifest.smallSize}`,
    );
  }
  if (manifest.version === 2 && (await sha256File(small.path)).toString('hex') !== manifest.small) {
    throw new SluiceError('ERR_BAD_REQUEST', "small part does not match the manifest's digest");
  }
}

/** Throws 400 unless the big part is exactly the one the manifest describes. */
export async function checkBigPart(big: PendingBlob, manifest: Manifest): Promise<void> {
  if (big.size !== manifest.bigSize) {
    throw new SluiceError(
      'ERR_BAD_REQUEST',
      `big part is ${big.size} bytes; the manifest says ${manifest.bigSize}`,
    );
  }
  const digests = await sha256FileChunks(big.path, manifest.chunkSize);
  const bad = digests.findIndex((d, i) => d.toString('hex') !== manifest.chunks[i]);
  if (bad !== -1 || digests.length !== manifest.chunks.length) {
    throw new SluiceError(
      'ERR_BAD_REQUEST',
      `big part chunk ${bad === -1 ? digests.length : bad} does not match the manifest's digest`,
    );
  }
}

/**
 * With an S3 CDN, a `cdnKey` upload is registered only when the object is there with the
 * manifest's size (HEAD), and no other resource claims it (deleting that one would remove it).
 */
export async function checkCdnObject(
  deps: { store: Store; cdnObjects: CdnObjects | null },
  folder: string,
  name: string,
  cdnKey: string,
  manifest: Manifest,
): Promise<void> {
  const { cdnObjects, store } = deps;
  if (cdnObjects === null) return;
  if (await store.resources.cdnKeyClaimedElsewhere(cdnKey, folder, name)) {
    throw new SluiceError('ERR_CONFLICT', `cdnKey ${cdnKey} belongs to another resource`);
  }
  const head = await cdnObjects.bucket.exists(cdnObjectKey(cdnObjects.prefix, cdnKey));
  if (head === null) {
    throw new SluiceError('ERR_BAD_REQUEST', `cdnKey ${cdnKey} does not exist on the CDN`);
  }
  if (head.size !== manifest.bigSize) {
    throw new SluiceError(
      'ERR_BAD_REQUEST',
      `the CDN object of cdnKey ${cdnKey} is ${head.size} bytes; the manifest says ${manifest.bigSize}`,
    );
  }
}
