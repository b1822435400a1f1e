import { verifyManifest } from '@sluice/core';
import { type Manifest, SluiceError } from '@sluice/protocol';
import { versionConflict } from '../errors.js';
import type { PublisherKeyService } from '../publisherKeys/service.js';
import type { Store } from '../stores/store.js';

/** What the manifest checks of an upload read. */
export interface ManifestCheckDeps {
  store: Store;
  publisherKeys: PublisherKeyService;
}

/** The highest version `folder/name` has had (deleted ones included), 0 when there is none. */
export async function latestVersionOf(store: Store, folder: string, name: string): Promise<number> {
  const r = await store.resources.get(folder, name);
  // The highest number ever used: a deleted version's number is not given again.
  return r === undefined ? 0 : store.resources.latestVersion(r.id);
}

/**
 * The rules a v2 manifest must meet to be uploaded by `uploaderId` to `folder` (as `name`, when
 * known yet): it names this resource (400), a signature verifies (400 ERR_BAD_SIGNATURE) and its
 * key is registered to the uploader (403 ERR_UNTRUSTED_PUBLISHER), and it names the next version
 * (409 ERR_VERSION_CONFLICT with the latest). A v1 manifest names nothing: the server numbers it.
 */
export async function checkUploadManifest(
  deps: ManifestCheckDeps,
  upload: { folder: string; name: string | undefined; uploaderId: string },
  manifest: Manifest,
): Promise<void> {
  if (manifest.version === 1) return;
  const { folder, name, uploaderId } = upload;
  const r = manifest.resource;
  if (r.folder !== folder || (name !== undefined && r.name !== name)) {
    throw new SluiceError(
      'ERR_BAD_REQUEST',
      `the manifest is for ${r.folder}/${r.name}, not ${folder}/${name ?? r.name}`,
    );
  }
  const { publisher } = verifyManifest(manifest);
  if (publisher !== null && !(await deps.publisherKeys.isRegistered(uploaderId, publisher))) {
    throw new SluiceError(
      'ERR_UNTRUSTED_PUBLISHER',
      `the publisher key ${publisher} is not registered to this account (POST /me/publisher-keys)`,
    );
  }
  const latest = await latestVersionOf(deps.store, folder, r.name);
  if (r.version !== latest + 1) throw versionConflict(r.version, latest);
}
