import { type EnvelopeResource, SluiceError } from '@sluice/protocol';
import { verifyDataKey, verifySmallPart } from '../format/manifest.js';
import { verifyManifest } from '../format/manifestSignature.js';
import type { EnvelopePayload } from './deviceEnvelope.js';

/**
 * What a device checks of an opened envelope before it writes anything (docs/FORMAT.md §3.3):
 * it is the resource asked for (ERR_BAD_ENVELOPE); its manifest names that resource version
 * (ERR_BAD_MANIFEST), its signature verifies (ERR_BAD_SIGNATURE) and, with a trust list, is a
 * trusted publisher's (ERR_UNTRUSTED_PUBLISHER); the small part (ERR_CHUNK_DIGEST) and the data
 * key (ERR_BAD_DECRYPT) are the manifest's. Returns who signed it, null when unsigned.
 */
export function verifyEnvelope(
  asked: { folder: string; name: string },
  resource: EnvelopeResource,
  payload: EnvelopePayload,
  trustedPublishers: readonly string[] | undefined,
): { publisher: string | null } {
  if (resource.folder !== asked.folder || resource.name !== asked.name) {
    throw new SluiceError(
      'ERR_BAD_ENVELOPE',
      `asked for ${asked.folder}/${asked.name}, the server sent ${resource.folder}/${resource.name}`,
    );
  }
  const { manifest, small, dataKey } = payload;
  if (manifest === null) {
    if (trustedPublishers !== undefined) {
      throw new SluiceError(
        'ERR_UNTRUSTED_PUBLISHER',
        'the resource has no manifest (so no signature) and a trust list is set',
      );
    }
    return { publisher: null };
  }
  const verified = verifyManifest(manifest, { resource, trustedPublishers });
  verifySmallPart(manifest, small);
  verifyDataKey(manifest, dataKey);
  return verified;
}
