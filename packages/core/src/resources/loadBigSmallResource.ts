import { type FileHandle, open, rename, rm } from 'node:fs/promises';
import type { Downloader } from '@sluice/cdn';
import {
  cdnObjectKey,
  type DeliveredCdnConfig,
  deriveEnvelopeKey,
  type EnvelopeResource,
  envelopeAad,
  isSluiceError,
  type Manifest,
  openEnvelope,
  SluiceError,
} from '@sluice/protocol';
import { BigPartCache } from '../cache/bigPartCache.js';
import {
  BlobChunkDecryptor,
  chunkBlobOffset,
  type PlainPiece,
} from '../format/blobChunkDecryptor.js';
import { verifyChunkAsync } from '../format/manifest.js';
import type { Session } from '../http/session.js';
import { abortError, throwIfAborted } from '../platform/abort.js';
import { removeStaleTemps, tempPathFor } from '../platform/atomicOutput.js';
import type { LockOwner } from '../platform/fileLock.js';
import { toSluiceError } from '../platform/toSluiceError.js';
import { apiRangeDriver } from './apiRangeDriver.js';
import { cdnPrefix, fetchCdnConfig } from './cdnConfig.js';
import { checkResourceName } from './resourceName.js';

export interface LoadProgress {
  /** Sealed-blob bytes checked and decrypted so far (small part included). */
  loaded: number;
  /** Sealed-blob bytes in all. */
  total: number;
}

export interface LoadBigSmallOptions {
  /** A file path (written beside, renamed into place when complete) or 'buffer'. */
  to: string;
  /** The user's password: it unlocks the device envelope together with the hardware hash. */
  password: string;
  /** This device's hardware hash. */
  hardware: string;
  signal?: AbortSignal;
  onProgress?: (progress: LoadProgress) => void;
  /**
   * Keep verified big parts in this shared cache (see BigPartCache) and reuse them. Processes
   * that pull the same part into one cache at once download it once: the others wait for it.
   */
  cacheDir?: string;
  /** With `cacheDir`: keep the cache under this many bytes, evicting least recently used entries. */
  cacheMaxBytes?: number;
  /** With `cacheDir`: called when another process (or call) is fetching this big part and this one waits. */
  onCacheWait?: (owner: LockOwner) => void;
  /** Ranged requests in flight for the big part (default 4 from the API, 8 from an S3 CDN). */
  concurrency?: number;
  /** Transport for the big part (default: the API's own big-part route over HTTP ranges). */
  downloader?: Downloader;
  /** Where `downloader` finds the big part (default the API's big-part URL of this version). */
  bigUrl?: string;
  /**
   * The CDN settings with read keys, when the caller already has them (e.g. a batch sharing one
   * `fetchCdnConfig`). By default they are fetched when a resource's big part is on an S3 CDN.
   */
  cdn?: DeliveredCdnConfig;
  /**
   * Limits shared by a batch (loadMany): `api` runs each API request of this load, `transport`
   * wraps the big part's transport.
   */
  limits?: {
    api: <T>(run: () => Promise<T>) => Promise<T>;
    transport: (downloader: Downloader) => Downloader;
  };
  /**
   * Gives the envelope key of (email, password, hardware) as a fresh copy, zeroed after use, when
   * the caller derives it once for many loads (loadMany): one scrypt per batch, not per resource.
   */
  envelopeKey?: (email: string) => Promise<Buffer>;
}

export interface LoadResult {
  resource: EnvelopeResource;
  /** Plaintext bytes. */
  size: number;
  /** Whether the big part came from the local cache. */
  fromCache: boolean;
}

/** Destination of plaintext pieces: a temp file (pwrite) or a buffer. */
interface Sink {
  write(piece: PlainPiece): Promise<void>;
}

/**
 * Fetches a big/small resource as a bound device: the device envelope from the API, the big part
 * from the cache (when every chunk digest matches) or over HTTP ranges. Every chunk is verified
 * against the manifest before it is decrypted at its offset. A file output appears at `to` only
 * when complete; on any failure there is neither a file at `to` nor a temp file beside it.
 */
export function loadBigSmallResource(
  session: Session,
  name: string,
  folder: string,
  options: LoadBigSmallOptions & { to: 'buffer' },
): Promise<LoadResult & { data: Buffer }>;
export function loadBigSmallResource(
  session: Session,
  name: string,
  folder: string,
  options: LoadBigSmallOptions,
): Promise<LoadResult & { path?: string; data?: Buffer }>;
export async function loadBigSmallResource(
  session: Session,
  name: string,
  folder: string,
  options: LoadBigSmallOptions,
): Promise<LoadResult & { path?: string; data?: Buffer }> {
  const { signal, to } = options;
  if (typeof to !== 'string' || to === '') throw new TypeError("to must be a path or 'buffer'");
  checkResourceName(folder, 'folder');
  checkResourceName(name, 'name');
  throwIfAborted(signal);
  const withSignal = signal ? { signal } : {};
  const api = <T>(run: () => Promise<T>) => (options.limits ? options.limits.api(run) : run());
  const sealed = await api(() =>
    session.request<Record<string, unknown>>(
      'POST',
      `/resources/get/${encodeURIComponent(folder)}`,
      {
        json: { fileName: name, password: options.password, hardware: options.hardware },
        ...withSignal,
      },
    ),
  );
  const resource = readResource(sealed.resource);
  const email = session.user?.email;
  if (email === undefined) throw new SluiceError('ERR_NOT_LOGGED_IN', 'no signed-in user');
  const envelopeKey = await (options.envelopeKey?.(email) ??
    deriveEnvelopeKey(email, options.password, options.hardware));
  let payload: ReturnType<typeof openEnvelope>;
  try {
    payload = openEnvelope(envelopeKey, sealed, envelopeAad(resource));
  } finally {
    envelopeKey.fill(0);
  }
  const { manifest, dataKey, small, cdnKey } = payload;
  try {
    throwIfAborted(signal);
    const blobSize = manifest === null ? small.length : manifest.blobSize;
    if (to === 'buffer') {
      const out = Buffer.alloc(blobSize);
      const sink: Sink = {
        write: async (p) => {
          p.data.copy(out, p.offset);
        },
      };
      const { size, fromCache } = await decryptInto(sink);
      return { resource, size, fromCache, data: out.subarray(0, size) };
    }
    const tmp = tempPathFor(to);
    let fh: FileHandle | undefined;
    try {
      fh = await open(tmp, 'wx', 0o600);
      const handle = fh;
      const sink: Sink = {
        write: async (p) => {
          let done = 0;
          while (done < p.data.length) {
            const { bytesWritten } = await handle.write(
              p.data,
              done,
              p.data.length - done,
              p.offset + done,
            );
            done += bytesWritten;
          }
        },
      };
      const { size, fromCache } = await decryptInto(sink);
      await handle.truncate(size);
      await handle.sync();
      await handle.close();
      fh = undefined;
      throwIfAborted(signal);
      await rename(tmp, to);
      await removeStaleTemps(to);
      return { resource, size, fromCache, path: to };
    } catch (e) {
      await fh?.close().catch(() => {});
      await rm(tmp, { force: true });
      throw e;
    }
  } catch (e) {
    throw toLoadError(e, signal);
  } finally {
    dataKey.fill(0);
  }

  /** Decrypts the small part and the big part (cache or download) into `sink`. */
  async function decryptInto(sink: Sink): Promise<{ size: number; fromCache: boolean }> {
    const total = manifest === null ? small.length : manifest.blobSize;
    let decryptor = new BlobChunkDecryptor(total, dataKey);
    let loaded = 0;
    // One push at a time: a push decrypts blocks that cross into pieces pushed before it.
    let turn: Promise<unknown> = Promise.resolve();
    const push = async (offset: number, data: Buffer, out?: Buffer) => {
      const d = decryptor;
      const pieces = turn.then(() => d.push(offset, data, out));
      turn = pieces.catch(() => {});
      for (const piece of await pieces) await sink.write(piece);
      loaded += data.length;
      options.onProgress?.({ loaded, total });
    };
    await push(0, small);
    let fromCache = false;
    if (manifest !== null) {
      const m = manifest;
      // Plaintext into a pooled buffer: push has written it when it resolves.
      const spare: Buffer[] = [];
      const pushChunk = async (index: number, data: Buffer) => {
        const out = spare.pop() ?? Buffer.allocUnsafe(m.chunkSize);
        try {
          await push(chunkBlobOffset(m, index), data, out);
        } finally {
          spare.push(out);
        }
      };
      if (options.cacheDir === undefined) {
        await download(m, new Set(), undefined, pushChunk);
      } else {
        const cache = await BigPartCache.open(
          options.cacheDir,
          options.cacheMaxBytes === undefined ? {} : { maxBytes: options.cacheMaxBytes },
        );
        fromCache = await cache.provide(
          m,
          {
            replay: pushChunk,
            restart: async () => {
              // The cache fed some chunks before one failed its digest: start over.
              decryptor = new BlobChunkDecryptor(total, dataKey);
              loaded = 0;
              await push(0, small);
            },
            download: (skip, store) => download(m, skip, store, pushChunk),
          },
          { resource, signal, onWait: options.onCacheWait },
        );
      }
    }
    const size = decryptor.plainSize;
    if (!decryptor.complete || size === undefined) {
      throw new SluiceError('ERR_BAD_BLOB', 'the resource did not decrypt completely');
    }
    return { size, fromCache };
  }

  /** The S3 CDN that holds this version's big part, with the account's read keys. */
  async function s3Source(key: string): Promise<{ downloader: Downloader; url: string }> {
    const config =
      options.cdn ??
      (await api(() =>
        fetchCdnConfig(session, {
          password: options.password,
          hardware: options.hardware,
          ...withSignal,
        }),
      ));
    if (config.kind !== 's3') {
      throw new SluiceError(
        'ERR_BAD_RESPONSE',
        `the big part is on an S3 CDN but the server's CDN config is '${config.kind}'`,
      );
    }
    if (config.downloader === undefined) {
      throw new SluiceError('ERR_CDN', 'the CDN config holds no read keys');
    }
    const { S3Downloader } = await import('@sluice/cdn');
    let downloader: Downloader;
    try {
      downloader = new S3Downloader({
        endpoint: config.endpoint,
        region: config.region,
        bucket: config.bucket,
        downloader: config.downloader,
      });
    } catch (e) {
      throw fromTransport(e);
    }
    return { downloader, url: cdnObjectKey(cdnPrefix(config), key) };
  }

  /** Fetches the chunks not in `skip`; each is verified, then stored (cache) and decrypted. */
  async function download(
    m: Manifest,
    skip: ReadonlySet<number>,
    store: ((index: number, data: Buffer) => Promise<void>) | undefined,
    pushChunk: (index: number, data: Buffer) => Promise<void>,
  ): Promise<void> {
    const path = `/resources/${encodeURIComponent(folder)}/${encodeURIComponent(name)}/big?version=${resource.version}`;
    // Our own callback's failures (a bad digest, a full disk) pass through the transport as they
    // are; everything else the transport throws is translated.
    const { downloader, url } =
      options.downloader !== undefined
        ? {
            downloader: options.downloader,
            url: options.bigUrl ?? `${session.apiUrl.replace(/\/+$/, '')}${path}`,
          }
        : typeof cdnKey === 'string'
          ? await s3Source(cdnKey)
          : {
              downloader: await apiRangeDriver(session),
              url: `${session.apiUrl.replace(/\/+$/, '')}${path}`,
            };
    let own: unknown;
    try {
      await (options.limits?.transport(downloader) ?? downloader).download({
        url,
        size: m.bigSize,
        chunkSize: m.chunkSize,
        skip: new Set(skip),
        // onChunk is done with the bytes when it resolves: the decryptor copies the edges it keeps.
        reuseBuffers: true,
        // From the API itself 4 ranges in flight (8 were no faster on loopback and held more
        // memory); an S3 CDN gets its driver's default (8) for the higher latency.
        ...(options.concurrency !== undefined
          ? { concurrency: options.concurrency }
          : typeof cdnKey === 'string' && options.downloader === undefined
            ? {}
            : { concurrency: 4 }),
        ...withSignal,
        onChunk: async (index, data) => {
          try {
            await verifyChunkAsync(m, index, data);
            await store?.(index, data);
            await pushChunk(index, data);
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

/** The cache key of a big part (kept here too for existing imports). */
export { manifestDigest } from '../cache/manifestDigest.js';

function readResource(v: unknown): EnvelopeResource {
  const r = v as Partial<EnvelopeResource> | null;
  if (
    typeof r !== 'object' ||
    r === null ||
    typeof r.folder !== 'string' ||
    typeof r.name !== 'string' ||
    typeof r.version !== 'number'
  ) {
    throw new SluiceError('ERR_BAD_ENVELOPE', 'device envelope rejected: no resource description');
  }
  return { folder: r.folder, name: r.name, version: r.version };
}

function toLoadError(e: unknown, signal: AbortSignal | undefined): unknown {
  if (signal?.aborted) return abortError(signal);
  // A file-system failure (ENOSPC on the destination or the cache, EACCES…): ERR_IO with its
  // syscall, errno and path, like the rest of core.
  const err = e as { syscall?: unknown } | null;
  if (typeof err?.syscall === 'string' && !isSluiceError(e)) return toSluiceError(e, 'pull');
  return e;
}

/**
 * A transport's failure (the CDN driver's or the API range driver's, never one of our own chunk
 * callbacks) as a pull reports it: the refusal or the missing part by its meaning, anything else
 * about the CDN as ERR_CDN.
 */
function fromTransport(e: unknown): unknown {
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
