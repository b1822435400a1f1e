import { createCipheriv, createDecipheriv, createHash, randomBytes, scrypt } from 'node:crypto';
import { SluiceError } from '@sluice/protocol';

// The sealed files of the offline store: AES-256-GCM under the lease key, JSON
// `{v: 1, nonce, ciphertext, tag}` (base64 fields); layout in docs/FORMAT.md, "Offline leases".

/** scrypt cost of the lease key: the envelope key's (32 MiB of memory). */
export const LEASE_KDF = Object.freeze({ N: 2 ** 15, r: 8, p: 1 });
const DOMAIN = 'sluice-offline-v1';

/**
 * The key that seals what a device keeps for offline use: scrypt(NFC(password), SHA-256(
 * "sluice-offline-v1\0" ‖ email ‖ "\0" ‖ hardwareHash ‖ "\0" ‖ server), N = 2^15, r = 8, p = 1).
 * Only who knows the password, on the device with that hardware hash, derives it.
 */
export function deriveLeaseKey(
  account: { server: string; email: string },
  password: string,
  hardware: string,
): Promise<Buffer> {
  const email = account.email.trim().toLowerCase();
  const salt = createHash('sha256')
    .update(`${DOMAIN}\0${email}\0${hardware}\0${account.server}`, 'utf8')
    .digest();
  const { N, r, p } = LEASE_KDF;
  return new Promise((resolve, reject) => {
    scrypt(password.normalize('NFC'), salt, 32, { N, r, p, maxmem: 64 << 20 }, (err, key) =>
      err ? reject(new SluiceError('ERR_CRYPTO', 'scrypt failed', { cause: err })) : resolve(key),
    );
  });
}

/** `value` as JSON, encrypted and authenticated under `key`, bound to `aad` (the file's role). */
export function seal(key: Buffer, value: unknown, aad: string): string {
  const nonce = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', key, nonce);
  cipher.setAAD(Buffer.from(aad, 'utf8'));
  const plain = Buffer.from(JSON.stringify(value), 'utf8');
  const ciphertext = Buffer.concat([cipher.update(plain), cipher.final()]);
  plain.fill(0);
  return JSON.stringify({
    v: 1,
    nonce: nonce.toString('base64'),
    ciphertext: ciphertext.toString('base64'),
    tag: cipher.getAuthTag().toString('base64'),
  });
}

/**
 * The value sealed in `text`; ERR_LEASE_LOCKED when it does not open: another password, another
 * device or account, or an altered file.
 */
export function unseal(key: Buffer, text: string, aad: string, path: string): unknown {
  let plain: Buffer;
  try {
    const f = JSON.parse(text) as Record<string, string>;
    if ((f.v as unknown) !== 1) throw new Error('unknown format');
    const decipher = createDecipheriv('aes-256-gcm', key, Buffer.from(f.nonce ?? '', 'base64'));
    decipher.setAAD(Buffer.from(aad, 'utf8'));
    decipher.setAuthTag(Buffer.from(f.tag ?? '', 'base64'));
    plain = Buffer.concat([
      decipher.update(Buffer.from(f.ciphertext ?? '', 'base64')),
      decipher.final(),
    ]);
  } catch (e) {
    throw new SluiceError(
      'ERR_LEASE_LOCKED',
      `the offline lease store ${path} does not open: wrong password, or it was made on another ` +
        'device or for another account',
      { cause: e, path },
    );
  }
  try {
    return JSON.parse(plain.toString('utf8'));
  } finally {
    plain.fill(0);
  }
}
