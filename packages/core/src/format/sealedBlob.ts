import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { open } from 'node:fs/promises';
import {
  BLOCK_BYTES,
  checkIv,
  checkKey,
  checkOptions,
  checkPath,
  checkSize,
  SluiceError,
  toBytes,
} from '@sluice/protocol';
import { decryptFile, encryptFile } from '../crypto/cryptoBackend.js';
import { toSluiceError } from '../platform/toSluiceError.js';

// Sealed blob = IV (16 bytes) ‖ AES-256-CBC-PKCS#7(plaintext). See docs/FORMAT.md.

export const IV_BYTES = BLOCK_BYTES;
/** The smallest valid blob: the IV and one (padding-only) ciphertext block. */
export const MIN_BLOB_BYTES = 2 * BLOCK_BYTES;

/** Size of the sealed blob of a plaintext of `plainSize` bytes. */
export function blobSize(plainSize: number): number {
  checkSize(plainSize, 'plainSize');
  return IV_BYTES + (Math.floor(plainSize / BLOCK_BYTES) + 1) * BLOCK_BYTES;
}

/** Throws ERR_BAD_BLOB unless `size` can be the size of a sealed blob. */
export function checkBlobSize(size: number, what = 'sealed blob'): void {
  if (size < MIN_BLOB_BYTES) {
    throw new SluiceError(
      'ERR_BAD_BLOB',
      `${what} is ${size} bytes; a sealed blob holds at least ${MIN_BLOB_BYTES} (IV and one block)`,
    );
  }
  if ((size - IV_BYTES) % BLOCK_BYTES !== 0) {
    throw new SluiceError(
      'ERR_BAD_BLOB',
      `${what} is ${size} bytes; after the 16-byte IV the ciphertext must be whole 16-byte blocks`,
    );
  }
}

export interface SealOptions {
  /** Defaults to 16 random bytes. */
  iv?: Buffer | Uint8Array;
  signal?: AbortSignal;
}

export interface OpenOptions {
  signal?: AbortSignal;
  threads?: number;
  /** Checks the complete plaintext before it is put at `dst` (see DecryptFileOptions). */
  verify?: (plainPath: string) => Promise<void>;
}

/** Encrypts `src` into the sealed blob `dst` (written atomically). */
export async function sealFile(
  src: string,
  dst: string,
  key: Buffer | Uint8Array,
  opts?: SealOptions,
): Promise<{ iv: Buffer; size: number }> {
  const o = checkOptions<SealOptions>(opts);
  const iv = o.iv === undefined ? randomBytes(IV_BYTES) : Buffer.from(checkIv(o.iv));
  const { bytesWritten } = await encryptFile(src, dst, key, iv, {
    ivPrefix: true,
    signal: o.signal,
  });
  return { iv, size: bytesWritten };
}

/** Reads the IV of the sealed blob at `path`, checking the blob's size first (ERR_BAD_BLOB). */
export async function readBlobIv(path: string): Promise<{ iv: Buffer; size: number }> {
  checkPath(path, 'src');
  try {
    const fh = await open(path, 'r');
    try {
      const size = (await fh.stat()).size;
      checkBlobSize(size, path);
      const iv = Buffer.alloc(IV_BYTES);
      const { bytesRead } = await fh.read(iv, 0, IV_BYTES, 0);
      if (bytesRead !== IV_BYTES)
        throw new SluiceError('ERR_BAD_BLOB', `${path}: short read of the IV`);
      return { iv, size };
    } finally {
      await fh.close();
    }
  } catch (e) {
    throw toSluiceError(e, 'reading sealed blob');
  }
}

/** Decrypts the sealed blob `src` into `dst` (written atomically; nothing is left on failure). */
export async function openFile(
  src: string,
  dst: string,
  key: Buffer | Uint8Array,
  opts?: OpenOptions,
): Promise<{ size: number }> {
  checkPath(src, 'src');
  checkPath(dst, 'dst');
  checkKey(key);
  const o = checkOptions<OpenOptions>(opts);
  const { iv } = await readBlobIv(src);
  const { bytesWritten } = await decryptFile(src, dst, key, iv, {
    srcOffset: IV_BYTES,
    signal: o.signal,
    threads: o.threads,
    verify: o.verify,
  });
  return { size: bytesWritten };
}

/** Seals a small in-memory resource (node:crypto, synchronous). */
export function sealBuffer(
  plain: Buffer | Uint8Array,
  key: Buffer | Uint8Array,
  iv?: Buffer | Uint8Array,
): Buffer {
  const p = toBytes(plain, 'plain');
  const k = checkKey(key);
  const v = iv === undefined ? randomBytes(IV_BYTES) : checkIv(iv);
  const cipher = createCipheriv('aes-256-cbc', k, v);
  return Buffer.concat([v, cipher.update(p), cipher.final()]);
}

/** Opens a sealed blob held in memory: ERR_BAD_BLOB for a malformed blob, ERR_BAD_DECRYPT for a bad key. */
export function openBuffer(blob: Buffer | Uint8Array, key: Buffer | Uint8Array): Buffer {
  const b = toBytes(blob, 'blob');
  const k = checkKey(key);
  checkBlobSize(b.length);
  try {
    const decipher = createDecipheriv('aes-256-cbc', k, b.subarray(0, IV_BYTES));
    return Buffer.concat([decipher.update(b.subarray(IV_BYTES)), decipher.final()]);
  } catch (e) {
    throw toSluiceError(e, 'openBuffer');
  }
}
