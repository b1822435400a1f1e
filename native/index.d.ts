/**
 * @sluice/native — the raw binding. Callers (the @sluice/core facade) validate every argument
 * before calling: key is a 32-byte Buffer, iv/prevBlock 16 bytes, paths non-empty strings,
 * sizes/offsets non-negative safe integers, threads an integer in [1, 64]. The binding trusts them.
 *
 * Every function that does work runs it on a worker thread and returns a Promise. A rejected
 * Promise carries an Error whose `code` is one of:
 *   ERR_BAD_DECRYPT   padding/ciphertext-length check failed (wrong key, truncated or tampered input)
 *   ERR_CRYPTO        any other OpenSSL failure
 *   ERR_IO            a syscall failed; `syscall`, `errno` (positive) and `path` are set when known
 */

export interface NativeError extends Error {
  code: 'ERR_BAD_DECRYPT' | 'ERR_CRYPTO' | 'ERR_IO';
  syscall?: string;
  errno?: number;
  path?: string;
}

/** Streaming AES-256-CBC with PKCS#7, like node's Cipheriv: update() returns whole blocks, final() the rest. */
export interface CipherContext {
  /** Encrypts/decrypts `data`; resolves with the output produced so far (may be empty). */
  update(data: Buffer): Promise<Buffer>;
  /** Flushes padding (encrypt) or checks and strips it (decrypt → ERR_BAD_DECRYPT). Call once. */
  final(): Promise<Buffer>;
}

export interface FileResult {
  /** Bytes consumed from `src`: the plaintext (encryptFile) or the ciphertext after srcOffset (decryptFile). */
  bytesRead: number;
  /** Bytes produced in `dst`: the ciphertext after dstOffset (encryptFile) or the plaintext (decryptFile). */
  bytesWritten: number;
}

export interface DecryptFileOptions {
  /** Worker threads for the parallel CBC decryption. */
  threads: number;
  /** Byte offset in `src` where the ciphertext starts (16 for a sealed blob whose IV leads). */
  srcOffset: number;
}

export interface EncryptFileOptions {
  /** Byte offset in `dst` where the ciphertext is written; bytes before it are left as they are
   *  (the facade writes the IV there for a sealed blob). `dst` is created if missing and
   *  truncated to exactly dstOffset + ciphertext length. */
  dstOffset: number;
}

export interface Binding {
  /** OpenSSL version string the addon is running against (the node binary's). */
  readonly opensslVersion: string;
  createCipher(mode: 'encrypt' | 'decrypt', key: Buffer, iv: Buffer): CipherContext;
  /**
   * Pipelined file→file encryption (reading, AES and writing overlap). fsyncs dst before resolving.
   * Encrypts the `src` size seen when it is opened; `src` must not shrink meanwhile (ERR_IO).
   * Refuses (ERR_IO, errno EINVAL) a `dst` that is `src` itself.
   */
  encryptFile(
    src: string,
    dst: string,
    key: Buffer,
    iv: Buffer,
    opts: EncryptFileOptions,
  ): Promise<FileResult>;
  /**
   * Parallel file→file decryption; validates PKCS#7 (from the last block, before `dst` is
   * created or touched) and writes exactly the plaintext. fsyncs dst. Output is written with
   * O_DIRECT where the filesystem supports it, so it does not fill the page cache.
   */
  decryptFile(
    src: string,
    dst: string,
    key: Buffer,
    iv: Buffer,
    opts: DecryptFileOptions,
  ): Promise<FileResult>;
  /**
   * Raw CBC decryption (no padding handling) of `ciphertext` (length a multiple of 16) into
   * `out` (length ≥ ciphertext length), given the 16 ciphertext bytes that precede it
   * (the IV for the first chunk). Resolves with the number of bytes written. Both buffers are
   * pinned until the promise settles; `out` must not overlap `ciphertext`.
   */
  decryptChunk(
    ciphertext: Buffer,
    prevBlock: Buffer,
    key: Buffer,
    out: Buffer,
    opts: { threads: number },
  ): Promise<number>;
  /** Copies src[0, smallSize) to smallPath and src[smallSize, end) to bigPath (copy_file_range when possible). fsyncs both.
   *  smallSize past the end of src gives the whole file as the small part and an empty big part. */
  split(src: string, smallPath: string, bigPath: string, smallSize: number): Promise<void>;
  /** Writes the concatenation of `paths` to dst (copy_file_range when possible). fsyncs dst.
   *  Every input is opened before dst is truncated, so a missing input leaves dst untouched. */
  concat(paths: string[], dst: string): Promise<void>;
  sha256(data: Buffer): Promise<Buffer>;
  /** SHA-256 of `length` bytes of the file starting at `offset` (length -1 → to end of file;
   *  a range running past the end is hashed up to the end). */
  sha256File(path: string, offset: number, length: number): Promise<Buffer>;
  /** SHA-256 of each consecutive `chunkSize` slice of the file from `offset` to its end (last may be short). */
  sha256FileChunks(path: string, offset: number, chunkSize: number): Promise<Buffer[]>;
  /**
   * Opens an anonymous file (O_TMPFILE, 0600, read-write) in directory `dir` and resolves with its
   * fd, which the caller owns and closes. It has no name until linkAnonymous gives it one, so
   * if the process dies first nothing is left on disk. ERR_IO (errno EOPNOTSUPP, EISDIR or
   * EINVAL) where the kernel or filesystem has no O_TMPFILE: the caller then uses a named temp.
   */
  openAnonymous(dir: string): Promise<number>;
  /** Gives the anonymous file open as `fd` the name `path` (created; ERR_IO EEXIST if it exists). */
  linkAnonymous(fd: number, path: string): Promise<void>;
}

export interface LoadResult {
  binding: Binding | null;
  /** Where it was loaded from, or why each candidate failed. */
  path: string | null;
  errors: { candidate: string; message: string }[];
}

/** Tries each candidate (SLUICE_NATIVE_PATH, abiDir(), build/Debug) and reports every failure. Never throws. */
export function load(): LoadResult;

/** build/<platform>-<arch>-abi-<N>: the Release build (or the packed prebuilt) for the running Node. */
export function abiDir(): string;
