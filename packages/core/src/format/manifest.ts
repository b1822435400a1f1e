import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import { stat } from 'node:fs/promises';
import {
  checkKey,
  checkOptions,
  checkPath,
  checkPositiveMultipleOf16,
  checkSize,
  chunkLength,
  DEFAULT_CHUNK_SIZE,
  MANIFEST_KEY_CHECK_LABEL,
  type Manifest,
  type ManifestResource,
  type ManifestV2,
  SluiceError,
  toBytes,
  validateManifest,
} from '@sluice/protocol';
import { sha256, sha256FileChunks } from '../crypto/cryptoBackend.js';
import { toSluiceError } from '../platform/toSluiceError.js';

export interface BuildManifestOptions {
  /** Size of the small part that precedes the big part in the blob. */
  smallSize: number;
  chunkSize?: number;
  signal?: AbortSignal;
}

/** Hashes the big part file chunk by chunk and returns the (validated) manifest. */
export async function buildManifest(
  bigPartPath: string,
  opts: BuildManifestOptions,
): Promise<Manifest> {
  checkPath(bigPartPath, 'bigPartPath');
  const o = checkOptions<BuildManifestOptions>(opts);
  const smallSize = checkSize(o.smallSize, 'smallSize');
  const chunkSize = checkPositiveMultipleOf16(o.chunkSize ?? DEFAULT_CHUNK_SIZE, 'chunkSize');
  let bigSize: number;
  try {
    bigSize = (await stat(bigPartPath)).size;
  } catch (e) {
    throw toSluiceError(e, 'buildManifest');
  }
  const digests = await sha256FileChunks(bigPartPath, chunkSize, { signal: o.signal });
  return validateManifest({
    version: 1,
    algorithm: 'AES-256-CBC',
    blobSize: smallSize + bigSize,
    smallSize,
    bigSize,
    chunkSize,
    chunks: digests.map((d) => d.toString('hex')),
  });
}

/** What a v2 manifest adds to a layout: the resource version, the small part's digest, the key. */
export interface ManifestV2Parts {
  resource: ManifestResource;
  /** Lower-case hex SHA-256 of the small part. */
  smallSha256: string;
  /** The data key the blob is sealed with: only its `keyCheck` goes into the manifest. */
  dataKey: Buffer | Uint8Array;
}

/**
 * The v2 manifest of a manifest's layout (blob and part sizes, chunk digests: what
 * `buildManifest` and `sealAndSplit` produce). Unsigned: `signManifest` adds the signature.
 */
export function toManifestV2(layout: Manifest, parts: ManifestV2Parts): ManifestV2 {
  const { blobSize, smallSize, bigSize, chunkSize, chunks } = layout;
  return validateManifest({
    version: 2,
    algorithm: 'AES-256-CBC',
    resource: parts.resource,
    blobSize,
    smallSize,
    bigSize,
    chunkSize,
    small: parts.smallSha256,
    keyCheck: manifestKeyCheck(parts.dataKey),
    chunks,
  }) as ManifestV2;
}

/** A v2 manifest's `keyCheck` of a data key: HMAC-SHA-256(key, MANIFEST_KEY_CHECK_LABEL), hex. */
export function manifestKeyCheck(dataKey: Buffer | Uint8Array): string {
  return createHmac('sha256', checkKey(dataKey, 'dataKey'))
    .update(MANIFEST_KEY_CHECK_LABEL)
    .digest('hex');
}

/**
 * Throws ERR_BAD_DECRYPT unless `dataKey` is the key a v2 manifest was made with (its
 * `keyCheck`): another key would decrypt every verified chunk into garbage. A v1 manifest names
 * no key.
 */
export function verifyDataKey(manifest: Manifest, dataKey: Buffer | Uint8Array): void {
  if (manifest.version === 1) return;
  const actual = Buffer.from(manifestKeyCheck(dataKey), 'hex');
  if (!timingSafeEqual(actual, Buffer.from(manifest.keyCheck, 'hex'))) {
    throw new SluiceError(
      'ERR_BAD_DECRYPT',
      'the data key is not the one the manifest was made with (its keyCheck differs)',
    );
  }
}

/**
 * Throws ERR_CHUNK_DIGEST unless `data` is the manifest's small part: `smallSize` bytes and, in a
 * v2 manifest, its SHA-256. A v1 manifest has no digest of the small part to check.
 */
export function verifySmallPart(manifest: Manifest, data: Buffer | Uint8Array): void {
  const bytes = toBytes(data, 'data');
  if (bytes.length !== manifest.smallSize) {
    throw new SluiceError(
      'ERR_CHUNK_DIGEST',
      `small part: expected ${manifest.smallSize} bytes, got ${bytes.length}`,
    );
  }
  if (manifest.version === 1) return;
  const actual = createHash('sha256').update(bytes).digest();
  const expected = Buffer.from(manifest.small, 'hex');
  if (!timingSafeEqual(expected, actual)) {
    throw new SluiceError(
      'ERR_CHUNK_DIGEST',
      `small part: SHA-256 ${actual.toString('hex')} does not match the manifest's ${manifest.small}`,
    );
  }
}

/** Throws ERR_CHUNK_DIGEST unless `data` is exactly big-part chunk `index` of `manifest`. */
export function verifyChunk(manifest: Manifest, index: number, data: Buffer | Uint8Array): void {
  const bytes = checkChunk(manifest, index, data);
  compareDigest(index, manifest, createHash('sha256').update(bytes).digest());
}

/**
 * `verifyChunk` with the digest computed by the crypto backend (the native addon hashes on its
 * own threads), so verifying a download's chunks keeps the event loop free.
 */
export async function verifyChunkAsync(
  manifest: Manifest,
  index: number,
  data: Buffer | Uint8Array,
): Promise<void> {
  const bytes = checkChunk(manifest, index, data);
  compareDigest(index, manifest, await sha256(bytes));
}

function checkChunk(manifest: Manifest, index: number, data: Buffer | Uint8Array): Uint8Array {
  const bytes = toBytes(data, 'data');
  if (!Number.isSafeInteger(index) || index < 0 || index >= manifest.chunks.length) {
    throw new RangeError(
      `chunk index must be an integer in [0, ${manifest.chunks.length}), got ${index}`,
    );
  }
  const length = chunkLength(manifest, index);
  if (bytes.length !== length) {
    throw new SluiceError(
      'ERR_CHUNK_DIGEST',
      `chunk ${index}: expected ${length} bytes, got ${bytes.length}`,
    );
  }
  return bytes;
}

function compareDigest(index: number, manifest: Manifest, actual: Buffer): void {
  const expected = Buffer.from(manifest.chunks[index] as string, 'hex');
  if (!timingSafeEqual(expected, actual)) {
    throw new SluiceError(
      'ERR_CHUNK_DIGEST',
      `chunk ${index}: SHA-256 ${actual.toString('hex')} does not match the manifest's ${expected.toString('hex')}`,
    );
  }
}
