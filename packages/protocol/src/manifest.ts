import { SluiceError } from './errors.js';

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

/** ⌊n·3/10⌋ without overflowing 2^53 for any safe n (the small part's share of a blob). */
export function thirtyPercent(n: number): number {
  const tens = Math.floor(n / 10);
  return tens * 3 + Math.floor(((n % 10) * 3) / 10);
}
