import { createHash, timingSafeEqual } from 'node:crypto';
import { stat } from 'node:fs/promises';
import { sha256, sha256FileChunks } from '../crypto/cryptoBackend.js';
import { toSluiceError } from '../crypto/toSluiceError.js';
import {
  checkOptions,
  checkPath,
  checkPositiveMultipleOf16,
  checkSize,
  toBytes,
} from '../crypto/validate.js';
import { SluiceError } from '../errors.js';
import { thirtyPercent } from './smallPartSize.js';

export const DEFAULT_CHUNK_SIZE = 8 * 1024 * 1024;

/** Describes how a sealed blob is split and how to verify its big part. See docs/FORMAT.md. */
export interface Manifest {
  version: 1;
  algorithm: 'AES-256-CBC';
  /** Bytes in the sealed blob (IV included) = smallSize + bigSize. */
  blobSize: number;
  /** Bytes of the blob kept by the API (blob offsets [0, smallSize)). */
  smallSize: number;
  /** Bytes of the blob on the CDN (blob offsets [smallSize, blobSize)). */
  bigSize: number;
  /** Big-part chunk size; a positive multiple of 16. */
  chunkSize: number;
  /** Lower-case hex SHA-256 of each chunkSize slice of the big part (the last may be short). */
  chunks: string[];
}

export function chunkCount(bigSize: number, chunkSize: number): number {
  return Math.ceil(bigSize / chunkSize);
}

/** Byte length of chunk `index` of the big part. */
export function chunkLength(manifest: Manifest, index: number): number {
  return Math.min(manifest.chunkSize, manifest.bigSize - index * manifest.chunkSize);
}

function bad(message: string): SluiceError {
  return new SluiceError('ERR_BAD_MANIFEST', `invalid manifest: ${message}`);
}

const FIELDS = ['version', 'algorithm', 'blobSize', 'smallSize', 'bigSize', 'chunkSize', 'chunks'];
const HEX_DIGEST = /^[0-9a-f]{64}$/;

function sizeField(m: Record<string, unknown>, name: string): number {
  const v = m[name];
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) {
    throw bad(`${name} must be a non-negative safe integer, got ${JSON.stringify(v)}`);
  }
  return v;
}

/** Checks an untrusted value (e.g. parsed JSON) and returns it as a Manifest, or throws ERR_BAD_MANIFEST. */
export function validateManifest(value: unknown): Manifest {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw bad(
      `expected an object, got ${value === null ? 'null' : Array.isArray(value) ? 'an array' : typeof value}`,
    );
  }
  const m = value as Record<string, unknown>;
  const unknown = Object.keys(m).filter((k) => !FIELDS.includes(k));
  if (unknown.length > 0) throw bad(`unknown field(s) ${unknown.join(', ')}`);
  if (m.version !== 1) throw bad(`version must be 1, got ${JSON.stringify(m.version)}`);
  if (m.algorithm !== 'AES-256-CBC') {
    throw bad(`algorithm must be "AES-256-CBC", got ${JSON.stringify(m.algorithm)}`);
  }
  const blobSize = sizeField(m, 'blobSize');
  const smallSize = sizeField(m, 'smallSize');
  const bigSize = sizeField(m, 'bigSize');
  const chunkSize = sizeField(m, 'chunkSize');
  if (blobSize < 32 || (blobSize - 16) % 16 !== 0) {
    throw bad(`blobSize ${blobSize} is not a sealed-blob size (16 + a positive multiple of 16)`);
  }
  if (smallSize + bigSize !== blobSize) {
    throw bad(`smallSize ${smallSize} + bigSize ${bigSize} != blobSize ${blobSize}`);
  }
  const cap = thirtyPercent(blobSize);
  if (smallSize === 0 || smallSize > cap || (smallSize < cap && smallSize % 1024 !== 0)) {
    throw bad(
      `smallSize ${smallSize} does not follow the split rule min(smallSizeKB·1024, ⌊30% of ${blobSize}⌋ = ${cap})`,
    );
  }
  if (chunkSize === 0 || chunkSize % 16 !== 0) {
    throw bad(`chunkSize must be a positive multiple of 16, got ${chunkSize}`);
  }
  if (!Array.isArray(m.chunks)) throw bad(`chunks must be an array, got ${typeof m.chunks}`);
  const expected = chunkCount(bigSize, chunkSize);
  if (m.chunks.length !== expected) {
    throw bad(
      `chunks has ${m.chunks.length} digest(s) but bigSize ${bigSize} / chunkSize ${chunkSize} needs ${expected}`,
    );
  }
  m.chunks.forEach((d, i) => {
    if (typeof d !== 'string' || !HEX_DIGEST.test(d)) {
      throw bad(
        `chunks[${i}] must be 64 lower-case hex digits (SHA-256), got ${JSON.stringify(d)}`,
      );
    }
  });
  return {
    version: 1,
    algorithm: 'AES-256-CBC',
    blobSize,
    smallSize,
    bigSize,
    chunkSize,
    chunks: [...(m.chunks as string[])],
  };
}

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
  const digests = await sha256FileChunks(
    bigPartPath,
    chunkSize,
    o.signal ? { signal: o.signal } : {},
  );
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
