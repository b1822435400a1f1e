import { createHash, createPublicKey, type KeyObject, verify } from 'node:crypto';

/** `X-Public-Key`: the uncompressed P-256 point `04 ‖ x ‖ y`, 65 bytes as 130 hex characters. */
const PUBLIC_KEY_HEX = /^04[0-9a-fA-F]{128}$/;
/** `X-Signature`: raw `r ‖ s` (IEEE P1363), 64 bytes as 128 hex characters. */
const SIGNATURE_HEX = /^[0-9a-fA-F]{128}$/;

/** What a valid signature proves: the caller holds the private key of `address`. */
export interface SignedBy {
  /** Lowercase hex of the first 20 bytes of SHA-256 over the 65-byte public key. */
  address: string;
  publicKey: KeyObject;
}

/** The parcel address of an uncompressed P-256 public key (65 bytes). */
export function parcelAddress(uncompressedPoint: Buffer): string {
  return createHash('sha256').update(uncompressedPoint).digest().subarray(0, 20).toString('hex');
}

/**
 * Checks `signatureHex` (ECDSA P-256 with SHA-256 over the token string, raw `r ‖ s`) against
 * `publicKeyHex`. Returns the signer, or undefined for a malformed or off-curve key, a malformed
 * signature, or one that does not verify. High-S signatures are accepted (the reference clients
 * do not normalise S); r and s must lie in [1, n-1] (OpenSSL checks).
 */
export function verifyParcelSignature(
  token: string,
  publicKeyHex: unknown,
  signatureHex: unknown,
): SignedBy | undefined {
  if (typeof publicKeyHex !== 'string' || !PUBLIC_KEY_HEX.test(publicKeyHex)) return undefined;
  if (typeof signatureHex !== 'string' || !SIGNATURE_HEX.test(signatureHex)) return undefined;
  const point = Buffer.from(publicKeyHex, 'hex');
  let publicKey: KeyObject;
  try {
    // Importing as a JWK makes OpenSSL check that the point lies on the curve.
    publicKey = createPublicKey({
      key: {
        kty: 'EC',
        crv: 'P-256',
        x: point.subarray(1, 33).toString('base64url'),
        y: point.subarray(33).toString('base64url'),
      },
      format: 'jwk',
    });
  } catch {
    return undefined;
  }
  let ok: boolean;
  try {
    ok = verify(
      'sha256',
      Buffer.from(token, 'utf8'),
      { key: publicKey, dsaEncoding: 'ieee-p1363' },
      Buffer.from(signatureHex, 'hex'),
    );
  } catch {
    return undefined;
  }
  return ok ? { address: parcelAddress(point), publicKey } : undefined;
}
