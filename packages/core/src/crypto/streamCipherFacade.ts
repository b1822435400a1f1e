import type { Transform } from 'node:stream';
import {
  BLOCK_BYTES,
  checkIv,
  checkKey,
  checkOptions,
  checkThreads,
  toBytes,
} from '@sluice/protocol';
import { toSluiceError } from '../platform/toSluiceError.js';
import type { BackendOps } from './backendOps.js';
import { CipherStream } from './cipherStream.js';
import { guarded } from './guarded.js';

type Bytes = Buffer | Uint8Array;

export interface DecryptChunkOptions {
  threads?: number;
}

/** In-memory ciphers: streaming Transforms and the raw CBC decryption of one chunk. */
export interface StreamCipherFacade {
  createEncryptStream(key: Bytes, iv: Bytes): Transform;
  createDecryptStream(key: Bytes, iv: Bytes): Transform;
  decryptChunk(
    ciphertext: Bytes,
    prevBlock: Bytes,
    key: Bytes,
    out?: Bytes,
    opts?: DecryptChunkOptions,
  ): Promise<Buffer>;
}

/** The in-memory cipher operations over `getOps`, called only once the arguments are checked. */
export function streamCipherFacade(getOps: () => BackendOps): StreamCipherFacade {
  return {
    createEncryptStream(key, iv) {
      const k = checkKey(key);
      const v = checkIv(iv);
      return cipherStream(getOps(), 'encrypt', k, v);
    },

    createDecryptStream(key, iv) {
      const k = checkKey(key);
      const v = checkIv(iv);
      return cipherStream(getOps(), 'decrypt', k, v);
    },

    async decryptChunk(ciphertext, prevBlock, key, out, opts) {
      const ct = toBytes(ciphertext, 'ciphertext');
      if (ct.length % BLOCK_BYTES !== 0) {
        throw new RangeError(`ciphertext length must be a multiple of 16, got ${ct.length}`);
      }
      const prev = checkIv(prevBlock, 'prevBlock');
      const k = checkKey(key);
      const target = out === undefined ? undefined : toBytes(out, 'out');
      if (target && target.length < ct.length) {
        throw new RangeError(`out must hold at least ${ct.length} bytes, got ${target.length}`);
      }
      if (target && overlaps(target, ct)) throw new RangeError('out must not overlap ciphertext');
      const threads = checkThreads(checkOptions<DecryptChunkOptions>(opts).threads, 1);
      const ops = getOps();
      if (ct.length === 0) return (target ?? Buffer.alloc(0)).subarray(0, 0);
      return guarded('decryptChunk', () => ops.decryptChunk(ct, prev, k, target, threads));
    },
  };
}

function cipherStream(ops: BackendOps, mode: 'encrypt' | 'decrypt', key: Buffer, iv: Buffer) {
  try {
    return new CipherStream(ops.createCipher(mode, key, iv), mode);
  } catch (e) {
    throw toSluiceError(e, `create ${mode} stream`);
  }
}

function overlaps(a: Buffer, b: Buffer): boolean {
  if (a.buffer !== b.buffer) return false;
  return a.byteOffset < b.byteOffset + b.length && b.byteOffset < a.byteOffset + a.length;
}
