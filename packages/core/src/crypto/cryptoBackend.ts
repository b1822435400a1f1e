import { type BackendKind, backend, defaultOps, opsFor } from './backend.js';
import type { BackendOps } from './backendOps.js';
import { type FileCipherFacade, fileCipherFacade } from './fileCipherFacade.js';
import { type HashFacade, hashFacade } from './hashFacade.js';
import { type SplitConcatFacade, splitConcatFacade } from './splitConcatFacade.js';
import { type StreamCipherFacade, streamCipherFacade } from './streamCipherFacade.js';

/** One backend's implementation of the crypto facade; validation and atomic outputs included. */
export interface CryptoBackend
  extends FileCipherFacade,
    StreamCipherFacade,
    SplitConcatFacade,
    HashFacade {
  readonly kind: BackendKind;
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
    ...fileCipherFacade(getOps),
    ...streamCipherFacade(getOps),
    ...splitConcatFacade(getOps),
    ...hashFacade(getOps),
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
