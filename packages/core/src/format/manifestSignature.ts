import { createPrivateKey, createPublicKey, type KeyObject, sign, verify } from 'node:crypto';
import {
  type Manifest,
  type ManifestResource,
  type ManifestV2,
  manifestSignedBytes,
  SluiceError,
  validateManifest,
} from '@sluice/protocol';

/** DER prefix of an Ed25519 SubjectPublicKeyInfo: the raw 32-byte key follows it. */
const SPKI_PREFIX = Buffer.from('302a300506032b6570032100', 'hex');

/** What a publisher signs with: a private key object, or a PKCS#8 PEM string. */
export type PublisherPrivateKey = KeyObject | string;

function privateKeyObject(key: PublisherPrivateKey): KeyObject {
  const k = typeof key === 'string' ? createPrivateKey(key) : key;
  if (k.type !== 'private' || k.asymmetricKeyType !== 'ed25519') {
    throw new TypeError('a publisher key must be an Ed25519 private key');
  }
  return k;
}

/** The raw 32-byte public key of an Ed25519 key (private or public), standard base64. */
export function publisherPublicKey(key: PublisherPrivateKey | KeyObject): string {
  const k = typeof key === 'string' ? createPrivateKey(key) : key;
  if (k.asymmetricKeyType !== 'ed25519') throw new TypeError('not an Ed25519 key');
  const pub = k.type === 'private' ? createPublicKey(k) : k;
  const der = pub.export({ type: 'spki', format: 'der' });
  return der.subarray(SPKI_PREFIX.length).toString('base64');
}

/** The public key object of a raw 32-byte key in standard base64 (ERR_BAD_SIGNATURE if it is not one). */
export function publicKeyObject(base64: string): KeyObject {
  const raw = Buffer.from(base64, 'base64');
  if (raw.length !== 32 || raw.toString('base64') !== base64) {
    throw new SluiceError('ERR_BAD_SIGNATURE', 'a publisher key is 32 bytes in standard base64');
  }
  return createPublicKey({ key: Buffer.concat([SPKI_PREFIX, raw]), format: 'der', type: 'spki' });
}

/**
 * Signs a v2 manifest with a publisher's Ed25519 key over `manifestSignedBytes` (docs/FORMAT.md
 * §3.2). Any signature it had is replaced. Returns the validated, signed copy.
 */
export function signManifest(manifest: ManifestV2, privateKey: PublisherPrivateKey): ManifestV2 {
  const key = privateKeyObject(privateKey);
  const { signature: _old, ...unsigned } = manifest;
  const m = validateManifest(unsigned) as ManifestV2;
  const sig = sign(null, manifestSignedBytes(m), key).toString('base64');
  return { ...m, signature: { alg: 'Ed25519', key: publisherPublicKey(key), sig } };
}

export interface VerifyManifestOptions {
  /** The resource version the manifest must name (a v1 manifest names none). */
  resource?: ManifestResource;
  /**
   * Public keys (raw 32 bytes, standard base64) whose signatures are accepted. When given, an
   * unsigned manifest (v1 or v2) or one signed by another key is ERR_UNTRUSTED_PUBLISHER.
   */
  trustedPublishers?: readonly string[];
}

export interface VerifiedManifest {
  /** The public key that signed the manifest, or null when it is unsigned. */
  publisher: string | null;
}

/**
 * Checks what a device must before it writes anything: the manifest names `resource`
 * (ERR_BAD_MANIFEST), its signature verifies when it has one (ERR_BAD_SIGNATURE, whatever the
 * trust list), and with a trust list it is signed by a listed key (ERR_UNTRUSTED_PUBLISHER).
 */
export function verifyManifest(
  manifest: Manifest,
  options: VerifyManifestOptions = {},
): VerifiedManifest {
  const { resource, trustedPublishers } = options;
  if (manifest.version === 2 && resource !== undefined) {
    const r = manifest.resource;
    if (
      r.folder !== resource.folder ||
      r.name !== resource.name ||
      r.version !== resource.version
    ) {
      throw new SluiceError(
        'ERR_BAD_MANIFEST',
        `the manifest is for ${r.folder}/${r.name} v${r.version}, not ${resource.folder}/${resource.name} v${resource.version}`,
      );
    }
  }
  const publisher = manifest.version === 2 ? verifySignature(manifest) : null;
  if (trustedPublishers !== undefined) {
    if (publisher === null) {
      throw new SluiceError(
        'ERR_UNTRUSTED_PUBLISHER',
        `the manifest is unsigned (version ${manifest.version}) and a trust list is set`,
      );
    }
    if (!trustedPublishers.includes(publisher)) {
      throw new SluiceError(
        'ERR_UNTRUSTED_PUBLISHER',
        `the manifest is signed by ${publisher}, which is not on the trust list`,
      );
    }
  }
  return { publisher };
}

/** The signing key of a v2 manifest, null when unsigned; ERR_BAD_SIGNATURE when it does not verify. */
function verifySignature(manifest: ManifestV2): string | null {
  const s = manifest.signature;
  if (s === undefined) return null;
  const key = publicKeyObject(s.key);
  const sig = Buffer.from(s.sig, 'base64');
  if (sig.length !== 64 || !verify(null, manifestSignedBytes(manifest), key, sig)) {
    throw new SluiceError(
      'ERR_BAD_SIGNATURE',
      `the manifest's signature by ${s.key} does not verify`,
    );
  }
  return s.key;
}
