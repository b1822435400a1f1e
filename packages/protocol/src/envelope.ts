import { createCipheriv, createDecipheriv, createHash, randomBytes, scrypt } from 'node:crypto';
import { checkKey } from './checks.js';
import { SluiceError } from './errors.js';
import { type Manifest, validateManifest } from './manifest.js';

// Device envelope: AES-256-GCM over a JSON payload under a key scrypt-derived from
// (email, password, hardware hash). Layout in docs/API.md, "Device envelope".

export const ENVELOPE_VERSION = 1;
/** scrypt cost of the envelope key: 32 MiB of memory, fixed by format version 1. */
export const ENVELOPE_KDF = Object.freeze({ alg: 'scrypt' as const, N: 2 ** 15, r: 8, p: 1 });
const ENVELOPE_MAXMEM = 64 * 1024 * 1024;
const KEY_BYTES = 32;
const NONCE_BYTES = 12;
const TAG_BYTES = 16;
const DOMAIN = 'sluice-envelope-v1';

/** Which resource version an envelope belongs to (also its additional authenticated data). */
export interface EnvelopeResource {
  folder: string;
  name: string;
  version: number;
}

/** What the device needs besides the big part: the manifest, the data key and the small part. */
export interface EnvelopePayload {
  resource: EnvelopeResource;
  /** Null for a resource stored whole in the small part (no big part). */
  manifest: Manifest | null;
  /** The 32-byte AES-256-CBC data key of the sealed blob. */
  dataKey: Buffer;
  /** The small part: the first bytes of the sealed blob. */
  small: Buffer;
  /**
   * Where the S3 CDN holds the big part (relative to the CDN config's prefix); absent or null
   * when the API itself serves it.
   */
  cdnKey?: string | null;
}

/** The wire (JSON) form; binary fields are standard base64. */
export interface SealedEnvelope {
  v: 1;
  kdf: { alg: 'scrypt'; N: number; r: number; p: number };
  nonce: string;
  ciphertext: string;
  tag: string;
}

function badEnvelope(message: string, cause?: unknown): SluiceError {
  return new SluiceError(
    'ERR_BAD_ENVELOPE',
    `device envelope rejected: ${message}`,
    cause === undefined ? {} : { cause },
  );
}

function checkString(v: unknown, name: string): string {
  if (typeof v !== 'string') throw new TypeError(`${name} must be a string, got ${typeof v}`);
  return v;
}

/** The salt binds the key to the account and the device: SHA-256 of the documented string. */
export function envelopeSalt(email: string, hardwareHash: string): Buffer {
  const e = checkString(email, 'email').trim().toLowerCase();
  const h = checkString(hardwareHash, 'hardwareHash');
  if (e === '') throw new RangeError('email must not be empty');
  if (h === '') throw new RangeError('hardwareHash must not be empty');
  return createHash('sha256').update(`${DOMAIN}\0${e}\0${h}`, 'utf8').digest();
}

/**
 * The envelope key: scrypt(NFC(password), SHA-256("sluice-envelope-v1\0" ‖ email ‖ "\0" ‖
 * hardwareHash), N = 2^15, r = 8, p = 1, 32 bytes). Runs on the libuv thread pool.
 */
export function deriveEnvelopeKey(
  email: string,
  password: string,
  hardwareHash: string,
): Promise<Buffer> {
  const salt = envelopeSalt(email, hardwareHash);
  const pw = checkString(password, 'password').normalize('NFC');
  const { N, r, p } = ENVELOPE_KDF;
  return new Promise((resolve, reject) => {
    scrypt(pw, salt, KEY_BYTES, { N, r, p, maxmem: ENVELOPE_MAXMEM }, (err, key) =>
      err ? reject(new SluiceError('ERR_CRYPTO', 'scrypt failed', { cause: err })) : resolve(key),
    );
  });
}

/** The additional authenticated data of the envelope of one resource version. */
export function envelopeAad(resource: EnvelopeResource): string {
  return `${DOMAIN}|${resource.folder}|${resource.name}|${resource.version}`;
}

function aadBytes(aad: string | Uint8Array): Buffer {
  if (typeof aad === 'string') return Buffer.from(aad, 'utf8');
  if (aad instanceof Uint8Array) return Buffer.from(aad);
  throw new TypeError('aad must be a string or bytes');
}

/** True for `{folder, name, version}` with string names and an integer version ≥ 1. */
export function isEnvelopeResource(v: unknown): v is EnvelopeResource {
  const r = v as Partial<EnvelopeResource> | null;
  return (
    typeof r === 'object' &&
    r !== null &&
    typeof r.folder === 'string' &&
    typeof r.name === 'string' &&
    typeof r.version === 'number' &&
    Number.isSafeInteger(r.version) &&
    r.version >= 1
  );
}

function checkResource(v: unknown): EnvelopeResource {
  if (!isEnvelopeResource(v)) {
    throw new TypeError('resource must be {folder: string, name: string, version: integer ≥ 1}');
  }
  return { folder: v.folder, name: v.name, version: v.version };
}

/** Encrypts and authenticates `payload` under `key` (from deriveEnvelopeKey) with a fresh nonce. */
export function sealEnvelope(
  key: Buffer | Uint8Array,
  payload: EnvelopePayload,
  aad: string | Uint8Array,
): SealedEnvelope {
  const k = checkKey(key);
  if (typeof payload !== 'object' || payload === null) throw new TypeError('payload is required');
  const resource = checkResource(payload.resource);
  const manifest = payload.manifest === null ? null : validateManifest(payload.manifest);
  const dataKey = checkKey(payload.dataKey, 'payload.dataKey');
  if (!(payload.small instanceof Uint8Array)) throw new TypeError('payload.small must be bytes');
  const plain = Buffer.from(
    JSON.stringify({
      resource,
      manifest,
      dataKey: Buffer.from(dataKey).toString('base64'),
      small: Buffer.from(payload.small).toString('base64'),
      ...(typeof payload.cdnKey === 'string' ? { cdnKey: payload.cdnKey } : {}),
    }),
    'utf8',
  );
  const nonce = randomBytes(NONCE_BYTES);
  const cipher = createCipheriv('aes-256-gcm', k, nonce, { authTagLength: TAG_BYTES });
  cipher.setAAD(aadBytes(aad));
  const ciphertext = Buffer.concat([cipher.update(plain), cipher.final()]);
  plain.fill(0);
  return {
    v: ENVELOPE_VERSION,
    kdf: { ...ENVELOPE_KDF },
    nonce: nonce.toString('base64'),
    ciphertext: ciphertext.toString('base64'),
    tag: cipher.getAuthTag().toString('base64'),
  };
}

function base64Field(env: Record<string, unknown>, name: string, length?: number): Buffer {
  const v = env[name];
  if (typeof v !== 'string') throw badEnvelope(`${name} is not base64`);
  // Canonical base64 only: whatever Buffer's lenient decoder skipped or accepted (whitespace,
  // url-safe letters, missing padding, stray bits) does not encode back to the same text. A
  // round trip costs a few ms per MiB; the regular expression it replaces cost ~60 (bench:batch).
  const bytes = Buffer.from(v, 'base64');
  if (bytes.toString('base64') !== v) throw badEnvelope(`${name} is not base64`);
  if (length !== undefined && bytes.length !== length) {
    throw badEnvelope(`${name} must be ${length} bytes, got ${bytes.length}`);
  }
  return bytes;
}

/**
 * Checks and decrypts an envelope (the parsed JSON or its text). A wrong key (password, email or
 * device), a wrong aad or any altered byte is ERR_BAD_ENVELOPE; nothing is returned unverified.
 */
export function openEnvelope(
  key: Buffer | Uint8Array,
  envelope: SealedEnvelope | string | unknown,
  aad: string | Uint8Array,
): EnvelopePayload {
  const k = checkKey(key);
  const aadBuf = aadBytes(aad);
  let env: unknown = envelope;
  if (typeof env === 'string') {
    try {
      env = JSON.parse(env);
    } catch (e) {
      throw badEnvelope('not JSON', e);
    }
  }
  if (typeof env !== 'object' || env === null || Array.isArray(env)) {
    throw badEnvelope('not an object');
  }
  const e = env as Record<string, unknown>;
  if (e.v !== ENVELOPE_VERSION) throw badEnvelope(`unsupported version ${JSON.stringify(e.v)}`);
  const kdf = e.kdf as Record<string, unknown> | null;
  if (
    typeof kdf !== 'object' ||
    kdf === null ||
    kdf.alg !== ENVELOPE_KDF.alg ||
    kdf.N !== ENVELOPE_KDF.N ||
    kdf.r !== ENVELOPE_KDF.r ||
    kdf.p !== ENVELOPE_KDF.p
  ) {
    throw badEnvelope('unsupported key derivation parameters');
  }
  const nonce = base64Field(e, 'nonce', NONCE_BYTES);
  const ciphertext = base64Field(e, 'ciphertext');
  const tag = base64Field(e, 'tag', TAG_BYTES);
  let plain: Buffer;
  try {
    const decipher = createDecipheriv('aes-256-gcm', k, nonce, { authTagLength: TAG_BYTES });
    decipher.setAAD(aadBuf);
    decipher.setAuthTag(tag);
    plain = Buffer.concat([decipher.update(ciphertext), decipher.final()]);
  } catch (err) {
    throw badEnvelope(
      'authentication failed (wrong password, device or resource, or altered)',
      err,
    );
  }
  try {
    const p = JSON.parse(plain.toString('utf8')) as Record<string, unknown>;
    const resource = checkResource(p.resource);
    const manifest = p.manifest === null ? null : validateManifest(p.manifest);
    if (typeof p.dataKey !== 'string' || typeof p.small !== 'string') {
      throw new TypeError('dataKey and small must be base64 strings');
    }
    const dataKey = Buffer.from(p.dataKey, 'base64');
    if (dataKey.length !== KEY_BYTES) throw new RangeError('dataKey must be 32 bytes');
    if (p.cdnKey !== undefined && p.cdnKey !== null && typeof p.cdnKey !== 'string') {
      throw new TypeError('cdnKey must be a string or null');
    }
    return {
      resource,
      manifest,
      dataKey,
      small: Buffer.from(p.small, 'base64'),
      cdnKey: typeof p.cdnKey === 'string' ? p.cdnKey : null,
    };
  } catch (err) {
    throw badEnvelope('authentic but malformed payload', err);
  } finally {
    plain.fill(0);
  }
}
