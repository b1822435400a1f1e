import type { Binding } from '@sluice/native';
import { throwIfAborted } from '../platform/abort.js';
import { toSluiceError } from '../platform/toSluiceError.js';
import type { BackendOps, CipherOps } from './backendOps.js';

/**
 * Calls into the binding with an Error created first, so a native failure keeps the caller's
 * JS stack (the binding's own errors carry none) — sharp's pattern.
 */
async function callNative<T>(what: string, call: () => Promise<T>): Promise<T> {
  const stackFrom = new Error(what);
  try {
    return await call();
  } catch (e) {
    throw toSluiceError(e, what, stackFrom);
  }
}

// The binding cannot be interrupted: an abort is honoured when the current native call returns,
// so no native write is still in flight when the caller removes the temp file.
export function nativeOps(binding: Binding): BackendOps {
  return {
    kind: 'native',

    createCipher(mode, key, iv): CipherOps {
      const ctx = binding.createCipher(mode, key, iv);
      return {
        update: (data) => callNative(`${mode} update`, () => ctx.update(data)),
        final: () => callNative(`${mode} final`, () => ctx.final()),
      };
    },

    async encryptFile(src, dst, key, iv, { signal, dstOffset }) {
      await callNative('encryptFile', () => binding.encryptFile(src, dst, key, iv, { dstOffset }));
      throwIfAborted(signal);
    },

    async decryptFile(src, dst, key, iv, { signal, threads, srcOffset }) {
      await callNative('decryptFile', () =>
        binding.decryptFile(src, dst, key, iv, { threads, srcOffset }),
      );
      throwIfAborted(signal);
    },

    async decryptChunk(ciphertext, prevBlock, key, out, threads) {
      const target = out ?? Buffer.allocUnsafe(ciphertext.length);
      const n = await callNative('decryptChunk', () =>
        binding.decryptChunk(ciphertext, prevBlock, key, target, { threads }),
      );
      return target.subarray(0, n);
    },

    async split(src, smallPath, bigPath, smallSize, signal) {
      await callNative('split', () => binding.split(src, smallPath, bigPath, smallSize));
      throwIfAborted(signal);
    },

    async concat(paths, dst, signal) {
      await callNative('concat', () => binding.concat(paths, dst));
      throwIfAborted(signal);
    },

    sha256(data) {
      return callNative('sha256', () => binding.sha256(data));
    },

    async sha256File(path, offset, length, signal) {
      const digest = await callNative('sha256File', () => binding.sha256File(path, offset, length));
      throwIfAborted(signal);
      return digest;
    },

    async sha256FileChunks(path, offset, chunkSize, signal) {
      const digests = await callNative('sha256FileChunks', () =>
        binding.sha256FileChunks(path, offset, chunkSize),
      );
      throwIfAborted(signal);
      return digests;
    },
  };
}
