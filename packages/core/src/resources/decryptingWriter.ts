import { type Manifest, SluiceError } from '@sluice/protocol';
import { BlobChunkDecryptor, chunkBlobOffset } from '../format/blobChunkDecryptor.js';
import type { ChunkWriter } from './bigPartSource.js';
import type { PullProgress } from './pullOptions.js';
import type { Sink } from './sink.js';

/** A sealed blob as the device envelope gives it: manifest (null without a big part), key, small part. */
export interface SealedParts {
  manifest: Manifest | null;
  dataKey: Buffer;
  small: Buffer;
}

/**
 * Decrypts a sealed blob into a sink as its parts arrive: the small part first, then the big
 * part's chunks, each at its offset, in whatever order they come. Reports progress in sealed-blob
 * bytes.
 */
export class DecryptingWriter implements ChunkWriter {
  readonly #parts: SealedParts;
  readonly #sink: Sink;
  readonly #onProgress: ((progress: PullProgress) => void) | undefined;
  readonly #total: number;
  #decryptor: BlobChunkDecryptor;
  #loaded = 0;
  /** One push at a time: a push decrypts blocks that cross into pieces pushed before it. */
  #turn: Promise<unknown> = Promise.resolve();
  /** Plaintext into a pooled buffer: push has written it when it resolves. */
  readonly #spare: Buffer[] = [];

  constructor(parts: SealedParts, sink: Sink, onProgress?: (progress: PullProgress) => void) {
    this.#parts = parts;
    this.#sink = sink;
    this.#onProgress = onProgress;
    this.#total = parts.manifest === null ? parts.small.length : parts.manifest.blobSize;
    this.#decryptor = new BlobChunkDecryptor(this.#total, parts.dataKey);
  }

  /** Decrypts the small part: the blob's first bytes. */
  start(): Promise<void> {
    return this.#push(0, this.#parts.small);
  }

  async write(index: number, data: Buffer): Promise<void> {
    // Chunks come only for a resource with a big part, which has a manifest.
    const m = this.#parts.manifest as Manifest;
    const out = this.#spare.pop() ?? Buffer.allocUnsafe(m.chunkSize);
    try {
      await this.#push(chunkBlobOffset(m, index), data, out);
    } finally {
      this.#spare.push(out);
    }
  }

  /** The cache fed some chunks before one failed its digest: start over. */
  async restart(): Promise<void> {
    this.#decryptor = new BlobChunkDecryptor(this.#total, this.#parts.dataKey);
    this.#loaded = 0;
    await this.start();
  }

  /** The plaintext size, once the whole blob has decrypted. */
  finish(): number {
    const size = this.#decryptor.plainSize;
    if (!this.#decryptor.complete || size === undefined) {
      throw new SluiceError('ERR_BAD_BLOB', 'the resource did not decrypt completely');
    }
    return size;
  }

  async #push(offset: number, data: Buffer, out?: Buffer): Promise<void> {
    const d = this.#decryptor;
    const pieces = this.#turn.then(() => d.push(offset, data, out));
    this.#turn = pieces.catch(() => {});
    for (const piece of await pieces) await this.#sink.write(piece);
    this.#loaded += data.length;
    this.#onProgress?.({ loaded: this.#loaded, total: this.#total });
  }
}
