import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { type Manifest, SluiceError, validateManifest } from '@sluice/protocol';
import { createEncryptStream } from '../crypto/cryptoBackend.js';
import { blobSize, IV_BYTES } from '../format/sealedBlob.js';
import { smallPartSize } from '../format/smallPartSize.js';

export interface SealedStream {
  /** The fresh data key (fill it with zeros when done). */
  key: Buffer;
  blobSize: number;
  smallSize: number;
  bigSize: number;
  /** The big part's bytes as they are encrypted; iterate it exactly once. */
  big: AsyncIterable<Buffer>;
  /** After `big` is exhausted: the small part and the manifest of what was produced. */
  finish(): { small: Buffer; manifest: Manifest };
}

/**
 * Seals `path` with a fresh data key as a stream: the sealed blob (`IV ‖ AES-256-CBC`) is cut at
 * the split point as it is produced, the small part kept in memory (at most `smallSizeKB` KiB),
 * the big part handed on chunk by chunk with each chunk's SHA-256 taken on the way. No temp file
 * and one pass over the data, so an upload can run at the speed of the network.
 */
export async function sealedStream(
  path: string,
  options: { smallSizeKB: number; chunkSize: number; signal?: AbortSignal },
): Promise<SealedStream> {
  const plainSize = (await stat(path)).size;
  const total = blobSize(plainSize);
  const smallSize = smallPartSize(total, options.smallSizeKB);
  const bigSize = total - smallSize;
  const { chunkSize } = options;
  const key = randomBytes(32);
  const small = Buffer.alloc(smallSize);
  const chunks = new ChunkHasher(chunkSize);
  let produced = 0; // blob bytes seen
  let done = false;

  async function* big(): AsyncGenerator<Buffer> {
    for await (const piece of sealedBlob(path, key, options.signal)) {
      let p = piece;
      if (produced < smallSize) {
        const take = Math.min(smallSize - produced, p.length);
        p.copy(small, produced, 0, take);
        produced += take;
        p = p.subarray(take);
      }
      for (const part of chunks.cut(p)) {
        produced += part.length;
        yield part;
      }
    }
    chunks.end();
    if (produced !== total) {
      throw new SluiceError(
        'ERR_IO',
        `${path} changed while it was sealed: ${produced} sealed bytes, expected ${total}`,
      );
    }
    done = true;
  }

  return {
    key,
    blobSize: total,
    smallSize,
    bigSize,
    big: big(),
    finish() {
      if (!done) throw new Error('finish() before the big part was consumed');
      const manifest = validateManifest({
        version: 1,
        algorithm: 'AES-256-CBC',
        blobSize: total,
        smallSize,
        bigSize,
        chunkSize,
        chunks: chunks.digests,
      });
      return { small, manifest };
    },
  };
}

/** The sealed blob of the file at `path` as it is produced: a fresh IV, then AES-256-CBC. */
async function* sealedBlob(
  path: string,
  key: Buffer,
  signal: AbortSignal | undefined,
): AsyncGenerator<Buffer> {
  const iv = randomBytes(IV_BYTES);
  yield iv;
  const source = createReadStream(path, { highWaterMark: 1 << 20, signal });
  const cipher = createEncryptStream(key, iv);
  source.on('error', (e) => cipher.destroy(e));
  source.pipe(cipher);
  for await (const c of cipher) yield c as Buffer;
}

/** The SHA-256 of every `chunkSize` bytes of a stream that arrives in pieces of any size. */
class ChunkHasher {
  readonly digests: string[] = [];
  readonly #chunkSize: number;
  #hash = createHash('sha256');
  #inChunk = 0;

  constructor(chunkSize: number) {
    this.#chunkSize = chunkSize;
  }

  /** Hashes `piece`, handing it on cut at the chunk boundaries. */
  *cut(piece: Buffer): Generator<Buffer> {
    let p = piece;
    while (p.length > 0) {
      const take = Math.min(this.#chunkSize - this.#inChunk, p.length);
      const part = p.subarray(0, take);
      this.#hash.update(part);
      this.#inChunk += take;
      p = p.subarray(take);
      yield part;
      if (this.#inChunk === this.#chunkSize) {
        this.digests.push(this.#hash.digest('hex'));
        this.#hash = createHash('sha256');
        this.#inChunk = 0;
      }
    }
  }

  /** Takes the digest of the last, shorter chunk, if there is one. */
  end(): void {
    if (this.#inChunk > 0) this.digests.push(this.#hash.digest('hex'));
  }
}
