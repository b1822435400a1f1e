import type { ManifestV2 } from './manifest.js';

/** What a v2 manifest signature covers comes after this line (docs/FORMAT.md §3.2). */
export const MANIFEST_SIGNING_CONTEXT = 'sluice-manifest-v2\n';

/** The message a v2 manifest's `keyCheck` is the HMAC-SHA-256 of, under the data key. */
export const MANIFEST_KEY_CHECK_LABEL = 'sluice-manifest-v2 key check';

/**
 * The canonical JSON of a v2 manifest without its signature: the fields in the documented order,
 * no white space. Every string in it is a resource name or lower-case hex and every number a safe
 * integer, so `JSON.stringify` escapes nothing and prints integers in plain decimal: another
 * implementation reproduces these bytes by printing the same fields in the same order.
 */
export function canonicalManifestJson(m: ManifestV2): string {
  return JSON.stringify({
    version: m.version,
    algorithm: m.algorithm,
    resource: { folder: m.resource.folder, name: m.resource.name, version: m.resource.version },
    blobSize: m.blobSize,
    smallSize: m.smallSize,
    bigSize: m.bigSize,
    chunkSize: m.chunkSize,
    small: m.small,
    keyCheck: m.keyCheck,
    chunks: m.chunks,
  });
}

/** The bytes a publisher signs: `sluice-manifest-v2\n` ‖ the canonical JSON (UTF-8). */
export function manifestSignedBytes(m: ManifestV2): Buffer {
  return Buffer.from(`${MANIFEST_SIGNING_CONTEXT}${canonicalManifestJson(m)}`, 'utf8');
}
