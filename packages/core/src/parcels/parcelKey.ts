import {
  createHash,
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  type KeyObject,
  sign,
} from 'node:crypto';
import { readFileSync } from 'node:fs';
import { isSluiceError, SluiceError } from '@sluice/protocol';
import { writeFileAtomic } from '../platform/atomicWrite.js';
import { ownerOnlyFile } from '../platform/ownerOnlyFile.js';

const ID = /^[0-9a-f]{64}$/;

/** A parcel id or a content SHA-256: 64 lowercase hex digits. */
export function isParcelHex(value: unknown): value is string {
  return typeof value === 'string' && ID.test(value);
}

/** ERR_INVALID_ARG unless `id` is a parcel id. */
export function checkId(id: unknown): void {
  if (!isParcelHex(id)) {
    throw new SluiceError('ERR_INVALID_ARG', 'a parcel id is 64 lowercase hex digits');
  }
}

/** A parcel client's P-256 key: its public key and address, and the signatures it makes. */
export class ParcelKey {
  /** Lowercase hex of the first 20 bytes of SHA-256 over the 65-byte public key. */
  readonly address: string;
  /** The uncompressed public key `04 ‖ x ‖ y`, 130 hex digits (the `X-Public-Key` header). */
  readonly publicKeyHex: string;

  private constructor(private readonly privateKey: KeyObject) {
    this.publicKeyHex = publicKeyHexOf(privateKey);
    this.address = parcelAddressOf(this.publicKeyHex);
  }

  /** A KeyObject or PKCS#8 PEM text; ERR_INVALID_ARG unless it is a P-256 private key. */
  static from(key: KeyObject | string, what: string): ParcelKey {
    return new ParcelKey(toP256Key(key, what));
  }

  /** Reads a PKCS#8 PEM key file; one that group or others may read is refused. */
  static fromFile(path: string): ParcelKey {
    let text: string;
    try {
      ownerOnlyFile(path, 'key file', 'run `chmod 600` on it');
      text = readFileSync(path, 'utf8');
    } catch (e) {
      if (isSluiceError(e)) throw e;
      throw new SluiceError('ERR_IO', `cannot read the key file ${path}`, { cause: e, path });
    }
    return ParcelKey.from(text, `the key file ${path}`);
  }

  /** A new P-256 private key as PKCS#8 PEM. */
  static generatePem(): string {
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    return privateKey.export({ format: 'pem', type: 'pkcs8' }).toString();
  }

  /** Writes `pem` to `path` (mode 0600), refusing to overwrite an existing file. */
  static async writeFile(path: string, pem: string): Promise<ParcelKey> {
    const key = ParcelKey.from(pem, 'pem');
    try {
      await writeFileAtomic(path, pem, { mode: 0o600, exclusive: true });
    } catch (e) {
      const exists = (e as NodeJS.ErrnoException).code === 'EEXIST';
      throw new SluiceError(
        'ERR_IO',
        exists ? `${path} exists; refusing to overwrite a key` : `cannot write ${path}`,
        { cause: e, path },
      );
    }
    return key;
  }

  /** The `X-Signature` of a one-time token: ECDSA P-256 over its SHA-256, r ‖ s in hex. */
  signToken(token: string): string {
    return sign('sha256', Buffer.from(token, 'utf8'), {
      key: this.privateKey,
      dsaEncoding: 'ieee-p1363',
    }).toString('hex');
  }

  /** The parcel id of content with SHA-256 `sha256` stored by this key. */
  parcelId(sha256: string): string {
    return createHash('sha256')
      .update(Buffer.from(this.address, 'hex'))
      .update(Buffer.from(sha256, 'hex'))
      .digest('hex');
  }
}

function toP256Key(key: KeyObject | string, what: string): KeyObject {
  let k: KeyObject;
  try {
    k = typeof key === 'string' ? createPrivateKey(key) : key;
  } catch (e) {
    throw new SluiceError('ERR_INVALID_ARG', `${what} is not a PEM private key`, { cause: e });
  }
  if (
    k.type !== 'private' ||
    k.asymmetricKeyType !== 'ec' ||
    k.asymmetricKeyDetails?.namedCurve !== 'prime256v1'
  ) {
    throw new SluiceError('ERR_INVALID_ARG', `${what} must be a P-256 (prime256v1) private key`);
  }
  return k;
}

function publicKeyHexOf(privateKey: KeyObject): string {
  const jwk = createPublicKey(privateKey).export({ format: 'jwk' });
  return Buffer.concat([
    Buffer.from([4]),
    Buffer.from(jwk.x ?? '', 'base64url'),
    Buffer.from(jwk.y ?? '', 'base64url'),
  ]).toString('hex');
}

function parcelAddressOf(publicKeyHex: string): string {
  return createHash('sha256')
    .update(Buffer.from(publicKeyHex, 'hex'))
    .digest()
    .subarray(0, 20)
    .toString('hex');
}
