import { stat, writeFile } from 'node:fs/promises';
import type { Transform } from 'node:stream';
import {
  BLOCK_BYTES,
  checkIv,
  checkKey,
  checkOptions,
  checkPath,
  checkSignal,
  checkSize,
  checkThreads,
  toBytes,
} from '@sluice/protocol';
import { atomicOutput } from '../platform/atomicOutput.js';
import { toSluiceError } from '../platform/toSluiceError.js';
import { type BackendKind, backend, defaultOps, opsFor } from './backend.js';
import type { BackendOps } from './backendOps.js';
import { CipherStream } from './cipherStream.js';
import { defaultThreads } from './parallelDecrypt.js';

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
}

export interface DecryptChunkOptions {
  threads?: number;
}

export interface SignalOptions {
  signal?: AbortSignal;
}

export interface Sha256FileOptions extends SignalOptions {
  offset?: number;
  /** Bytes to hash from `offset`; default to the end of the file. */
  length?: number;
}

export interface Sha256FileChunksOptions extends SignalOptions {
  offset?: number;
}

type Key = Buffer | Uint8Array;

/** One backend's implementation of the crypto facade; validation and atomic outputs included. */
export interface CryptoBackend {
  readonly kind: BackendKind;
  encryptFile(
    src: string,
    dst: string,
    key: Key,
    iv: Key,
    opts?: EncryptFileOptions,
  ): Promise<FileResult>;
  decryptFile(
    src: string,
    dst: string,
    key: Key,
    iv: Key,
    opts?: DecryptFileOptions,
  ): Promise<FileResult>;
  createEncryptStream(key: Key, iv: Key): Transform;
  createDecryptStream(key: Key, iv: Key): Transform;
  decryptChunk(
    ciphertext: Key,
    prevBlock: Key,
    key: Key,
    out?: Key,
    opts?: DecryptChunkOptions,
  ): Promise<Buffer>;
  split(
    src: string,
    smallPath: string,
    bigPath: string,
    smallSize: number,
    opts?: SignalOptions,
  ): Promise<void>;
  concat(paths: readonly string[], dst: string, opts?: SignalOptions): Promise<void>;
  sha256(data: Key): Promise<Buffer>;
  sha256File(path: string, opts?: Sha256FileOptions): Promise<Buffer>;
  sha256FileChunks(
    path: string,
    chunkSize: number,
    opts?: Sha256FileChunksOptions,
  ): Promise<Buffer[]>;
}

async function sizeOf(path: string, name: string): Promise<number> {
  try {
    return (await stat(path)).size;
  } catch (e) {
    throw toSluiceError(e, `${name} ${path}`);
  }
}

/** Runs `body`, turning any backend failure into a SluiceError that keeps the caller's stack. */
async function guarded<T>(what: string, body: () => Promise<T>): Promise<T> {
  const stackFrom = new Error(what);
  try {
    return await body();
  } catch (e) {
    throw toSluiceError(e, what, stackFrom);
  }
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

/**
 * Builds the facade over `getOps`, which is called only after every argument has been checked
 * (so invalid arguments fail with TypeError/RangeError before any backend is touched).
 */
export function createCryptoBackend(
  kind: () => BackendKind,
  getOps: () => BackendOps,
): CryptoBackend {
  return {
    get kind() {
      return kind();
    },

    async encryptFile(src, dst, key, iv, opts) {
      checkPath(src, 'src');
      checkPath(dst, 'dst');
      const k = checkKey(key);
      const v = checkIv(iv);
      const o = checkOptions<EncryptFileOptions>(opts);
      const signal = checkSignal(o.signal);
      const dstOffset = o.ivPrefix === true ? BLOCK_BYTES : 0;
      const ops = getOps();
      return guarded('encryptFile', async () => {
        const bytesRead = await sizeOf(src, 'src');
        return atomicOutput([dst], { signal, fsync: false }, async ([tmp]) => {
          const out = tmp as string;
          if (dstOffset > 0) await writeFile(out, v);
          await ops.encryptFile(src, out, k, v, { signal, dstOffset });
          return { bytesRead, bytesWritten: await sizeOf(out, 'dst') };
        });
      });
    },

    async decryptFile(src, dst, key, iv, opts) {
      checkPath(src, 'src');
      checkPath(dst, 'dst');
      const k = checkKey(key);
      const v = checkIv(iv);
      const o = checkOptions<DecryptFileOptions>(opts);
      const signal = checkSignal(o.signal);
      const threads = checkThreads(o.threads, defaultThreads());
      const srcOffset = o.srcOffset === undefined ? 0 : checkSize(o.srcOffset, 'srcOffset');
      const ops = getOps();
      return guarded('decryptFile', async () => {
        const size = await sizeOf(src, 'src');
        return atomicOutput([dst], { signal, fsync: false }, async ([tmp]) => {
          const out = tmp as string;
          await ops.decryptFile(src, out, k, v, { signal, threads, srcOffset });
          return {
            bytesRead: Math.max(size - srcOffset, 0),
            bytesWritten: await sizeOf(out, 'dst'),
          };
        });
      });
    },

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
      const o = checkOptions<DecryptChunkOptions>(opts);
      const threads = checkThreads(o.threads, 1);
      const ops = getOps();
      if (ct.length === 0) return (target ?? Buffer.alloc(0)).subarray(0, 0);
      return guarded('decryptChunk', () => ops.decryptChunk(ct, prev, k, target, threads));
    },

    async split(src, smallPath, bigPath, smallSize, opts) {
      checkPath(src, 'src');
      checkPath(smallPath, 'smallPath');
      checkPath(bigPath, 'bigPath');
      if (smallPath === bigPath) throw new RangeError('smallPath and bigPath must differ');
      checkSize(smallSize, 'smallSize');
      const signal = checkSignal(checkOptions<SignalOptions>(opts).signal);
      const ops = getOps();
      const size = await sizeOf(src, 'src');
      if (smallSize > size) {
        throw new RangeError(`smallSize ${smallSize} exceeds the size of src (${size} bytes)`);
      }
      await guarded('split', () =>
        atomicOutput([smallPath, bigPath], { signal, fsync: false }, ([small, big]) =>
          ops.split(src, small as string, big as string, smallSize, signal),
        ),
      );
    },

    async concat(paths, dst, opts) {
      if (!Array.isArray(paths)) throw new TypeError('paths must be an array of file paths');
      for (const [i, p] of paths.entries()) checkPath(p, `paths[${i}]`);
      checkPath(dst, 'dst');
      const signal = checkSignal(checkOptions<SignalOptions>(opts).signal);
      const ops = getOps();
      await guarded('concat', () =>
        atomicOutput([dst], { signal, fsync: false }, ([tmp]) =>
          ops.concat([...paths], tmp as string, signal),
        ),
      );
    },

    async sha256(data) {
      const d = toBytes(data, 'data');
      const ops = getOps();
      return guarded('sha256', () => ops.sha256(d));
    },

    async sha256File(path, opts) {
      checkPath(path, 'path');
      const o = checkOptions<Sha256FileOptions>(opts);
      const offset = o.offset === undefined ? 0 : checkSize(o.offset, 'offset');
      const length = o.length === undefined ? -1 : checkSize(o.length, 'length');
      const signal = checkSignal(o.signal);
      const ops = getOps();
      const size = await sizeOf(path, 'path');
      const end = length < 0 ? size : offset + length;
      if (offset > size || end > size) {
        throw new RangeError(
          `range [${offset}, ${end}) lies beyond the end of ${path} (${size} bytes)`,
        );
      }
      return guarded('sha256File', () => ops.sha256File(path, offset, length, signal));
    },

    async sha256FileChunks(path, chunkSize, opts) {
      checkPath(path, 'path');
      checkSize(chunkSize, 'chunkSize');
      if (chunkSize === 0) throw new RangeError('chunkSize must be positive');
      const o = checkOptions<Sha256FileChunksOptions>(opts);
      const offset = o.offset === undefined ? 0 : checkSize(o.offset, 'offset');
      const signal = checkSignal(o.signal);
      const ops = getOps();
      const size = await sizeOf(path, 'path');
      if (offset > size)
        throw new RangeError(`offset ${offset} lies beyond the end of ${path} (${size} bytes)`);
      return guarded('sha256FileChunks', () =>
        ops.sha256FileChunks(path, offset, chunkSize, signal),
      );
    },
  };
}

const facade = createCryptoBackend(() => backend().kind, defaultOps);

/** A specific backend (throws ERR_NATIVE_UNAVAILABLE for 'native' when it cannot load), or the default one. */
export function cryptoBackend(kind?: BackendKind): CryptoBackend {
  if (kind !== undefined && kind !== 'native' && kind !== 'node') {
    throw new TypeError(`kind must be 'native' or 'node', got ${String(kind)}`);
  }
  const resolved = kind ?? backend().kind;
  const ops = opsFor(resolved);
  return createCryptoBackend(
    () => resolved,
    () => ops,
  );
}

/** The facade functions, bound to the default backend (SLUICE_BACKEND is read at each call). */
export const {
  encryptFile,
  decryptFile,
  createEncryptStream,
  createDecryptStream,
  decryptChunk,
  split,
  concat,
  sha256,
  sha256File,
  sha256FileChunks,
} = facade;
