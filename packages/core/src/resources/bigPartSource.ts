import type { Downloader } from '@sluice/cdn';
import { isSluiceError, type Manifest, SluiceError } from '@sluice/protocol';
import { verifyChunkAsync } from '../format/manifest.js';

/** What a big part's source hands the chunks to (a pull's DecryptingWriter). */
export interface ChunkWriter {
  /** A chunk already checked against the manifest; `data` is reused once this resolves. */
  write(index: number, data: Buffer): Promise<void>;
  /** Every chunk written so far is void (a cache entry failed a digest part-way): start over. */
  restart(): Promise<void>;
}

/** Where a pull's big part comes from: the local cache (throughCache.ts), the API or an S3 CDN. */
export interface BigPartSource {
  /**
   * Hands every chunk of the big part, checked against its manifest, to `writer`. True when the
   * chunks came from the local cache.
   */
  deliver(writer: ChunkWriter): Promise<boolean>;
}

/** A transport, where it finds the big part, and its ranges in flight (its default if unset). */
export interface Transport {
  downloader: Downloader;
  url: string;
  concurrency?: number;
}

/**
 * The big part over ranged requests, from the API's own big-part route or an S3 CDN (see
 * bigPartTransport.ts). The transport is picked on each fetch, not before: a pull that the cache
 * serves never asks for the CDN's settings.
 */
export class RangedBigPart implements BigPartSource {
  readonly #manifest: Manifest;
  readonly #transport: () => Promise<Transport>;
  readonly #options: { signal?: AbortSignal; wrap?: (downloader: Downloader) => Downloader };

  constructor(
    manifest: Manifest,
    transport: () => Promise<Transport>,
    options: { signal?: AbortSignal; wrap?: (downloader: Downloader) => Downloader },
  ) {
    this.#manifest = manifest;
    this.#transport = transport;
    this.#options = options;
  }

  async deliver(writer: ChunkWriter): Promise<boolean> {
    await this.fetch(new Set(), (index, data) => writer.write(index, data));
    return false;
  }

  /** Fetches the chunks not in `skip`; each is verified against the manifest, then `onChunk` gets it. */
  async fetch(
    skip: ReadonlySet<number>,
    onChunk: (index: number, data: Buffer) => Promise<void>,
  ): Promise<void> {
    const m = this.#manifest;
    const { signal, wrap } = this.#options;
    const { downloader, url, concurrency } = await this.#transport();
    // Our own callback's failures (a bad digest, a full disk) pass through the transport as they
    // are; everything else the transport throws is translated.
    let own: unknown;
    try {
      await (wrap?.(downloader) ?? downloader).download({
        url,
        size: m.bigSize,
        chunkSize: m.chunkSize,
        skip: new Set(skip),
        // onChunk is done with the bytes when it resolves: the decryptor copies the edges it keeps.
        reuseBuffers: true,
        concurrency,
        signal,
        onChunk: async (index, data) => {
          try {
            await verifyChunkAsync(m, index, data);
            await onChunk(index, data);
          } catch (e) {
            own ??= e;
            throw e;
          }
        },
      });
    } catch (e) {
      throw e === own ? e : fromTransport(e);
    }
  }
}

/**
 * A transport's failure (the CDN driver's or the API range driver's, never one of our own chunk
 * callbacks) as a pull reports it: the refusal or the missing part by its meaning, anything else
 * about the CDN as ERR_CDN.
 */
export function fromTransport(e: unknown): unknown {
  if (!isSluiceError(e)) return e;
  const { message, status } = e;
  switch (e.code) {
    case 'ERR_ABORTED':
    case 'ERR_NETWORK':
      return e;
    case 'ERR_SOURCE_CHANGED':
      return new SluiceError(
        'ERR_SOURCE_CHANGED',
        `the big part changed on the CDN during the download: ${message}`,
        { cause: e },
      );
    case 'ERR_HTTP':
      if (status === 401 || status === 403) {
        return new SluiceError(
          status === 401 ? 'ERR_UNAUTHORIZED' : 'ERR_FORBIDDEN',
          `the big part was refused: ${message}`,
          { cause: e },
        );
      }
      if (status === 404) return missingBigPart(e);
      break;
    case 'ERR_NOT_FOUND':
      return missingBigPart(e);
  }
  return new SluiceError('ERR_CDN', `big part download failed: ${message}`, { cause: e });
}

function missingBigPart(e: SluiceError): SluiceError {
  return new SluiceError('ERR_NOT_FOUND', `big part missing on the CDN: ${e.message}`, {
    cause: e,
  });
}
