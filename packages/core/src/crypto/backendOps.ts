// The raw operations each backend implements. Arguments are already validated and outputs are
// already temp paths (the facade in cryptoBackend.ts owns validation, atomicity and errors).

export interface CipherOps {
  update(data: Buffer): Buffer | Promise<Buffer>;
  final(): Buffer | Promise<Buffer>;
}

export interface RawEncryptOptions {
  signal: AbortSignal | undefined;
  /** Bytes before this offset in `dst` are left as they are (the IV of a sealed blob). */
  dstOffset: number;
}

export interface RawDecryptOptions {
  signal: AbortSignal | undefined;
  threads: number;
  /** Where the ciphertext starts in `src`. */
  srcOffset: number;
}

export interface BackendOps {
  readonly kind: 'native' | 'node';
  createCipher(mode: 'encrypt' | 'decrypt', key: Buffer, iv: Buffer): CipherOps;
  /** Writes the ciphertext of `src` at `dstOffset` of `dst` and fsyncs it. */
  encryptFile(
    src: string,
    dst: string,
    key: Buffer,
    iv: Buffer,
    opts: RawEncryptOptions,
  ): Promise<void>;
  /** Writes exactly the plaintext to `dst` (validating PKCS#7) and fsyncs it. */
  decryptFile(
    src: string,
    dst: string,
    key: Buffer,
    iv: Buffer,
    opts: RawDecryptOptions,
  ): Promise<void>;
  /** Raw CBC decryption of whole blocks into `out` (allocated when undefined); resolves with the plaintext view. */
  decryptChunk(
    ciphertext: Buffer,
    prevBlock: Buffer,
    key: Buffer,
    out: Buffer | undefined,
    threads: number,
  ): Promise<Buffer>;
  split(
    src: string,
    smallPath: string,
    bigPath: string,
    smallSize: number,
    signal: AbortSignal | undefined,
  ): Promise<void>;
  concat(paths: string[], dst: string, signal: AbortSignal | undefined): Promise<void>;
  sha256(data: Buffer): Promise<Buffer>;
  /** length -1 → to the end of the file. */
  sha256File(
    path: string,
    offset: number,
    length: number,
    signal: AbortSignal | undefined,
  ): Promise<Buffer>;
  sha256FileChunks(
    path: string,
    offset: number,
    chunkSize: number,
    signal: AbortSignal | undefined,
  ): Promise<Buffer[]>;
}
