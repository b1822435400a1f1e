import { writeFile } from 'node:fs/promises';
import {
  BLOCK_BYTES,
  checkIv,
  checkKey,
  checkOptions,
  checkPath,
  checkSignal,
  checkSize,
  checkThreads,
} from '@sluice/protocol';
import { atomicOutput } from '../platform/atomicOutput.js';
import type { BackendOps } from './backendOps.js';
import { guarded, sizeOf } from './guarded.js';
import { defaultThreads } from './parallelDecrypt.js';

type Bytes = Buffer | Uint8Array;

export interface FileResult {
  bytesRead: number;
  bytesWritten: number;
}

export interface EncryptFileOptions {
  signal?: AbortSignal;
  /** Write the IV before the ciphertext (the sealed-blob layout). Default false: raw ciphertext. */
  ivPrefix?: boolean;
}

export interface DecryptFileOptions {
  signal?: AbortSignal;
  /** Decryption threads, 1..64. Default min(2, os.availableParallelism()). */
  threads?: number;
  /** Byte offset in `src` where the ciphertext starts (16 for a sealed blob). Default 0. */
  srcOffset?: number;
  /**
   * Called with the path of the complete plaintext before it is put in place at `dst`; a throw
   * drops it, so `dst` appears only when the check passes (e.g. a MAC over the plaintext).
   */
  verify?: (plainPath: string) => Promise<void>;
}

/** File → file encryption and decryption; `dst` is written atomically. */
export interface FileCipherFacade {
  encryptFile(
    src: string,
    dst: string,
    key: Bytes,
    iv: Bytes,
    opts?: EncryptFileOptions,
  ): Promise<FileResult>;
  decryptFile(
    src: string,
    dst: string,
    key: Bytes,
    iv: Bytes,
    opts?: DecryptFileOptions,
  ): Promise<FileResult>;
}

/** The file cipher operations over `getOps`, called only once every argument has been checked. */
export function fileCipherFacade(getOps: () => BackendOps): FileCipherFacade {
  return {
    async encryptFile(src, dst, key, iv, opts) {
      const a = checkFileArgs<EncryptFileOptions>(src, dst, key, iv, opts);
      const dstOffset = a.options.ivPrefix === true ? BLOCK_BYTES : 0;
      const ops = getOps();
      return guarded('encryptFile', async () => {
        const bytesRead = await sizeOf(src, 'src');
        return atomicOutput([dst], { signal: a.signal, fsync: false }, async ([tmp]) => {
          const out = tmp as string;
          if (dstOffset > 0) await writeFile(out, a.iv);
          await ops.encryptFile(src, out, a.key, a.iv, { signal: a.signal, dstOffset });
          return { bytesRead, bytesWritten: await sizeOf(out, 'dst') };
        });
      });
    },

    async decryptFile(src, dst, key, iv, opts) {
      const a = checkFileArgs<DecryptFileOptions>(src, dst, key, iv, opts);
      const threads = checkThreads(a.options.threads, defaultThreads());
      const { srcOffset: offset, verify } = a.options;
      if (verify !== undefined && typeof verify !== 'function') {
        throw new TypeError('verify must be a function');
      }
      const srcOffset = offset === undefined ? 0 : checkSize(offset, 'srcOffset');
      const ops = getOps();
      return guarded('decryptFile', async () => {
        const size = await sizeOf(src, 'src');
        return atomicOutput([dst], { signal: a.signal, fsync: false }, async ([tmp]) => {
          const out = tmp as string;
          await ops.decryptFile(src, out, a.key, a.iv, { signal: a.signal, threads, srcOffset });
          await verify?.(out);
          return {
            bytesRead: Math.max(size - srcOffset, 0),
            bytesWritten: await sizeOf(out, 'dst'),
          };
        });
      });
    },
  };
}

function checkFileArgs<O extends { signal?: AbortSignal }>(
  src: string,
  dst: string,
  key: Bytes,
  iv: Bytes,
  opts: O | undefined,
) {
  checkPath(src, 'src');
  checkPath(dst, 'dst');
  const k = checkKey(key);
  const v = checkIv(iv);
  const options = checkOptions<O>(opts);
  return { key: k, iv: v, options, signal: checkSignal(options.signal) };
}
