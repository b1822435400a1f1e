import { SluiceError } from './errors.js';
import { isResourceName } from './names.js';

export const DEFAULT_CHUNK_SIZE = 8 * 1024 * 1024;

/** The fields both manifest versions share: how the sealed blob is split and chunked. */
interface ManifestLayout {
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

/** Version 1: the big part's chunks only (the small part is not covered). Read, no longer written. */
export interface ManifestV1 extends ManifestLayout {
  version: 1;
}

/** The resource version a v2 manifest belongs to (the same triple as the envelope's). */
export interface ManifestResource {
  folder: string;
  name: string;
  version: number;
}

/** A publisher's Ed25519 signature over `manifestSignedBytes` (docs/FORMAT.md §3). */
export interface ManifestSignature {
  alg: 'Ed25519';
  /** The raw 32-byte public key, standard base64 (44 characters). */
  key: string;
  /** The 64-byte signature, standard base64 (88 characters). */
  sig: string;
}

/** Version 2: covers the whole sealed blob and names its resource version; optionally signed. */
export interface ManifestV2 extends ManifestLayout {
  version: 2;
  resource: ManifestResource;
  /** Lower-case hex SHA-256 of the small part. */
  small: string;
  /**
   * Lower-case hex HMAC-SHA-256 of `MANIFEST_KEY_CHECK_LABEL` under the data key: commits the
   * manifest to the one key that decrypts it, so a server cannot hand out another one.
   */
  keyCheck: string;
  signature?: ManifestSignature;
}

/** Describes how a sealed blob is split and how to verify it. See docs/FORMAT.md §3. */
export type Manifest = ManifestV1 | ManifestV2;

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

const V1_FIELDS = [
  'version',
  'algorithm',
  'blobSize',
  'smallSize',
  'bigSize',
  'chunkSize',
  'chunks',
];
const V2_FIELDS = [
  'version',
  'algorithm',
  'resource',
  'blobSize',
  'smallSize',
  'bigSize',
  'chunkSize',
  'small',
  'keyCheck',
  'chunks',
  'signature',
];
const RESOURCE_FIELDS = ['folder', 'name', 'version'];
const SIGNATURE_FIELDS = ['alg', 'key', 'sig'];
const HEX_DIGEST = /^[0-9a-f]{64}$/;
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

function describe(value: unknown): string {
  if (value === null) return 'null';
  return Array.isArray(value) ? 'an array' : typeof value;
}

/** `value` as a plain object holding only `allowed` keys, or ERR_BAD_MANIFEST naming `what`. */
function record(value: unknown, allowed: readonly string[], what: string): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw bad(`${what} must be an object, got ${describe(value)}`);
  }
  const m = value as Record<string, unknown>;
  const unknown = Object.keys(m).filter((k) => !allowed.includes(k));
  if (unknown.length > 0) {
    throw bad(
      `unknown field(s) ${unknown.map((k) => k.slice(0, 64)).join(', ')}${what === 'manifest' ? '' : ` in ${what}`}`,
    );
  }
  return m;
}

function sizeField(m: Record<string, unknown>, name: string): number {
  const v = m[name];
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) {
    throw bad(`${name} must be a non-negative safe integer, got ${JSON.stringify(v)}`);
  }
  return v;
}

function digestField(v: unknown, name: string): string {
  if (typeof v !== 'string' || !HEX_DIGEST.test(v)) {
    throw bad(
      `${name} must be 64 lower-case hex digits (${name === 'keyCheck' ? 'HMAC-SHA-256' : 'SHA-256'}), got ${JSON.stringify(v)?.slice(0, 80)}`,
    );
  }
  return v;
}

/** Standard base64 of exactly `bytes` bytes, in its one canonical spelling. */
function base64Field(v: unknown, name: string, bytes: number): string {
  const ok =
    typeof v === 'string' &&
    BASE64.test(v) &&
    Buffer.from(v, 'base64').length === bytes &&
    Buffer.from(v, 'base64').toString('base64') === v;
  if (!ok) throw bad(`${name} must be ${bytes} bytes in standard base64`);
  return v;
}

/**
 * Checks an untrusted value (e.g. parsed JSON) and returns it as a Manifest (a clean copy, fields
 * in the documented order), or throws ERR_BAD_MANIFEST naming the field. It checks the shape
 * only: a v2 signature is verified by core's `verifyManifest`.
 */
export function validateManifest(value: unknown): Manifest {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw bad(`expected an object, got ${describe(value)}`);
  }
  const version = (value as { version?: unknown }).version;
  if (version === 1) return { version: 1, ...layout(record(value, V1_FIELDS, 'manifest')) };
  if (version === 2) return validateV2(record(value, V2_FIELDS, 'manifest'));
  throw bad(`version must be 1 or 2, got ${JSON.stringify(version)}`);
}

function validateV2(m: Record<string, unknown>): ManifestV2 {
  const r = record(m.resource, RESOURCE_FIELDS, 'resource');
  if (!isResourceName(r.folder)) throw bad(`resource.folder is not a resource name`);
  if (!isResourceName(r.name)) throw bad(`resource.name is not a resource name`);
  if (typeof r.version !== 'number' || !Number.isSafeInteger(r.version) || r.version < 1) {
    throw bad(`resource.version must be a positive safe integer, got ${JSON.stringify(r.version)}`);
  }
  const resource = { folder: r.folder, name: r.name, version: r.version };
  const { algorithm, blobSize, smallSize, bigSize, chunkSize, chunks } = layout(m);
  const small = digestField(m.small, 'small');
  const keyCheck = digestField(m.keyCheck, 'keyCheck');
  const out: ManifestV2 = {
    version: 2,
    algorithm,
    resource,
    blobSize,
    smallSize,
    bigSize,
    chunkSize,
    small,
    keyCheck,
    chunks,
  };
  if (m.signature !== undefined) {
    const s = record(m.signature, SIGNATURE_FIELDS, 'signature');
    if (s.alg !== 'Ed25519')
      throw bad(`signature.alg must be "Ed25519", got ${JSON.stringify(s.alg)?.slice(0, 40)}`);
    out.signature = {
      alg: 'Ed25519',
      key: base64Field(s.key, 'signature.key', 32),
      sig: base64Field(s.sig, 'signature.sig', 64),
    };
  }
  return out;
}

/** The layout fields, checked against each other and the split rule (docs/FORMAT.md §2–§4). */
function layout(m: Record<string, unknown>): ManifestLayout {
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
  const chunks = m.chunks.map((d, i) => digestField(d, `chunks[${i}]`));
  return { algorithm: 'AES-256-CBC', blobSize, smallSize, bigSize, chunkSize, chunks };
}

/** ⌊n·3/10⌋ without overflowing 2^53 for any safe n (the small part's share of a blob). */
export function thirtyPercent(n: number): number {
  const tens = Math.floor(n / 10);
  return tens * 3 + Math.floor(((n % 10) * 3) / 10);
}
