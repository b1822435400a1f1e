import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { writeFileAtomic } from '@sluice/core';

export const MASTER_KEY_FILE = 'master.key';
const KEY_BYTES = 32;
const NONCE_BYTES = 12;
const TAG_BYTES = 16;
const WRAP_PREFIX = 'v1.';

/**
 * Loads the 32-byte master key from `<dataDir>/master.key`, creating it (random, mode 0600,
 * exclusively: never overwritten) on first start. A key file readable by group or others, or of
 * the wrong size, is refused.
 */
export async function loadOrCreateMasterKey(dataDir: string): Promise<Buffer> {
  const path = join(dataDir, MASTER_KEY_FILE);
  try {
    return await readMasterKey(path);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  }
  try {
    await writeFileAtomic(path, randomBytes(KEY_BYTES), { mode: 0o600, exclusive: true });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
  }
  return readMasterKey(path);
}

async function readMasterKey(path: string): Promise<Buffer> {
  const info = await stat(path);
  if ((info.mode & 0o077) !== 0) {
    throw new Error(
      `${path} is accessible by group or others (mode ${(info.mode & 0o777).toString(8)}); ` +
        'run `chmod 600` on it',
    );
  }
  const key = await readFile(path);
  if (key.length !== KEY_BYTES) {
    throw new Error(`${path} holds ${key.length} bytes; a master key is ${KEY_BYTES}`);
  }
  return key;
}

/** The additional data a wrapped data key is bound to: one version of one resource. */
export function dataKeyAad(resourceId: string, version: number): Buffer {
  return Buffer.from(`sluice-data-key-v1|${resourceId}|${version}`, 'utf8');
}

/** AES-256-GCM under the master key: `v1.` + base64url(nonce ‖ ciphertext ‖ tag). */
export function wrapDataKey(masterKey: Buffer, dataKey: Buffer, aad: Buffer): string {
  const nonce = randomBytes(NONCE_BYTES);
  const cipher = createCipheriv('aes-256-gcm', masterKey, nonce, { authTagLength: TAG_BYTES });
  cipher.setAAD(aad);
  const ct = Buffer.concat([cipher.update(dataKey), cipher.final()]);
  return WRAP_PREFIX + Buffer.concat([nonce, ct, cipher.getAuthTag()]).toString('base64url');
}

/** Reverses `wrapDataKey`; throws when the master key, the aad or the stored value differ. */
export function unwrapDataKey(masterKey: Buffer, wrapped: string, aad: Buffer): Buffer {
  if (!wrapped.startsWith(WRAP_PREFIX)) throw new Error('unknown wrapped data key format');
  const raw = Buffer.from(wrapped.slice(WRAP_PREFIX.length), 'base64url');
  if (raw.length !== NONCE_BYTES + KEY_BYTES + TAG_BYTES) {
    throw new Error('wrapped data key has the wrong length');
  }
  const decipher = createDecipheriv('aes-256-gcm', masterKey, raw.subarray(0, NONCE_BYTES), {
    authTagLength: TAG_BYTES,
  });
  decipher.setAAD(aad);
  decipher.setAuthTag(raw.subarray(raw.length - TAG_BYTES));
  return Buffer.concat([
    decipher.update(raw.subarray(NONCE_BYTES, raw.length - TAG_BYTES)),
    decipher.final(),
  ]);
}
