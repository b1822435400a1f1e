import { createHash, createPublicKey, verify } from 'node:crypto';
import { SluiceError } from './errors.js';
import { type Manifest, validateManifest } from './manifest.js';

// Offline lease (docs/SECURITY.md, "Offline use"; layout in docs/API.md, "Offline lease"): what the
// server allows one device to open without it, until `notAfter`, signed with the server's Ed25519
// JWKS key over a domain-separated input that no JWT signing input can equal.

export const LEASE_VERSION = 1;
/** Prefix of the signed bytes: a JWT's signing input starts with base64url (`eyJ`), never this. */
export const LEASE_DOMAIN = 'sluice-lease-v1\n';
/** The default lease length, 7 days; 0 turns offline use off. */
export const DEFAULT_LEASE_SECONDS = 7 * 24 * 60 * 60;

/** What a lease grants: this device, this user, this version of this resource, until `notAfter`. */
export interface Lease {
  v: 1;
  /** Random id (UUID). */
  id: string;
  /** The user id (`nameid`) and email of the account. */
  userId: string;
  email: string;
  /** The hardware hash of the device it was issued to. */
  hardware: string;
  folder: string;
  name: string;
  version: number;
  /** `leaseManifestDigest` of the version's manifest. */
  manifestDigest: string;
  /** ISO 8601 times, UTC, millisecond precision. */
  issuedAt: string;
  notAfter: string;
}

/** A lease as the server sends it: the exact signed payload bytes, base64, and the signature. */
export interface SignedLease {
  /** The `kid` of the JWKS key that signed it. */
  kid: string;
  /** Standard base64 of the lease's JSON (the bytes signed after LEASE_DOMAIN). */
  payload: string;
  /** Standard base64 of the 64-byte Ed25519 signature over LEASE_DOMAIN ‖ payload bytes. */
  signature: string;
}

/** The bytes a lease signature covers. */
export function leaseSigningInput(payload: Buffer): Buffer {
  return Buffer.concat([Buffer.from(LEASE_DOMAIN, 'utf8'), payload]);
}

/** SHA-256 (hex) of the manifest's JSON in the order validateManifest returns its fields. */
export function leaseManifestDigest(manifest: Manifest): string {
  return createHash('sha256')
    .update(JSON.stringify(validateManifest(manifest)))
    .digest('hex');
}

function badLease(message: string): SluiceError {
  return new SluiceError('ERR_LEASE_INVALID', `offline lease rejected: ${message}`);
}

const ISO = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;

/** True for a `{kid, payload, signature}` of strings. */
export function isSignedLease(v: unknown): v is SignedLease {
  const s = v as Partial<SignedLease> | null;
  return (
    typeof s === 'object' &&
    s !== null &&
    typeof s.kid === 'string' &&
    typeof s.payload === 'string' &&
    typeof s.signature === 'string'
  );
}

/** The lease inside `signed`, its fields checked (not its signature: see verifyLease). */
export function parseLease(signed: SignedLease): Lease {
  let v: Record<string, unknown>;
  try {
    v = JSON.parse(Buffer.from(signed.payload, 'base64').toString('utf8')) as Record<
      string,
      unknown
    >;
  } catch {
    throw badLease('payload is not JSON');
  }
  const strings = ['id', 'userId', 'email', 'hardware', 'folder', 'name', 'manifestDigest'];
  if (typeof v !== 'object' || v === null || v.v !== LEASE_VERSION)
    throw badLease('unknown format');
  for (const f of strings) if (typeof v[f] !== 'string' || v[f] === '') throw badLease(`no ${f}`);
  if (!Number.isSafeInteger(v.version) || (v.version as number) < 1) throw badLease('bad version');
  for (const f of ['issuedAt', 'notAfter']) {
    if (typeof v[f] !== 'string' || !ISO.test(v[f] as string)) throw badLease(`bad ${f}`);
  }
  return v as unknown as Lease;
}

/**
 * Checks the signature of `signed` with the Ed25519 public key `x` (base64url, as in a JWK) and
 * returns the lease; ERR_LEASE_INVALID for any altered byte or another key.
 */
export function verifyLease(signed: SignedLease, jwk: { kid: string; x: string }): Lease {
  if (!isSignedLease(signed)) throw badLease('not a signed lease');
  if (signed.kid !== jwk.kid) throw badLease(`signed by key ${signed.kid}, not ${jwk.kid}`);
  const payload = Buffer.from(signed.payload, 'base64');
  const signature = Buffer.from(signed.signature, 'base64');
  let ok = false;
  try {
    const key = createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: jwk.x }, format: 'jwk' });
    ok = signature.length === 64 && verify(null, leaseSigningInput(payload), key, signature);
  } catch {
    ok = false;
  }
  if (!ok) throw badLease('bad signature');
  return parseLease(signed);
}
