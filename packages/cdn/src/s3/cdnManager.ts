import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { Agent } from 'node:http';
import { Agent as HttpsAgent } from 'node:https';
import { Readable } from 'node:stream';
import {
  CreateBucketCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  type GetObjectCommandOutput,
  HeadBucketCommand,
  HeadObjectCommand,
  S3Client,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { isSluiceError, type S3Credentials, SluiceError } from '@sluice/protocol';
import {
  abortedError,
  chunkedDownload,
  describe,
  Transient,
  validateDownloadOptions,
} from '../chunkedDownload.js';
import type { Downloader, DownloadOptions } from '../downloader.js';
import { ResumeState } from '../resumeState.js';
import { isTransientS3Error, type S3Context, s3Error, s3Status } from './s3Error.js';

/** The CDN settings (the seed's `cdn.yaml`): one bucket, separate read and write key pairs. */
export interface CdnSettings {
  endpoint: string;
  /** Default us-east-1 (Ceph RGW accepts any). */
  region?: string;
  bucket: string;
  /** Read keys: download, exists, openRead. Default: the uploader keys. */
  downloader?: S3Credentials;
  /** Write keys: upload, remove, ensureBucket. */
  uploader?: S3Credentials;
}

/** One S3 request attempt, as seen by `CdnManagerOptions.onRequest`. */
export interface S3RequestInfo {
  /** The SDK command, e.g. "GetObjectCommand". */
  command: string;
  key?: string;
  range?: string;
}

export interface CdnManagerOptions {
  /** Attempts per S3 call inside the SDK (default 3); downloads retry chunks on top of that. */
  maxAttempts?: number;
  /** A request whose socket is idle this long fails and is retried (default 30000 ms). */
  requestTimeoutMs?: number;
  /** First retry delay of a chunk in ms, doubled per attempt (default 200). */
  backoffMs?: number;
  /** Upper bound of one chunk retry delay in ms (default 5000). */
  maxBackoffMs?: number;
  /** Called for every HTTP attempt (retries included), e.g. to count GETs. */
  onRequest?: (request: S3RequestInfo) => void;
}

/** `url` is the object key; `headers` do not apply to S3 and are ignored. */
export interface S3DownloadOptions extends DownloadOptions {
  /**
   * A small state file recording the chunks already handed to `onChunk`. A download started again
   * with the same file skips those chunks: the caller must have kept their bytes (e.g. written them
   * to the output file) before `onChunk` resolved. A file for another object, ETag, size or chunk
   * size is ignored and replaced; the file is deleted when the download completes.
   */
  resumeFile?: string;
  /** The object's expected ETag; default the current one (fetched first when resuming). */
  etag?: string;
}

export interface UploadProgress {
  loaded: number;
  total?: number;
}

export interface UploadOptions {
  signal?: AbortSignal;
  onProgress?: (progress: UploadProgress) => void;
  /** Bytes per part (default 8 MiB, at least 5 MiB). */
  partSize?: number;
  /** Parts in flight at once (default 4); memory is about queueSize × partSize. */
  queueSize?: number;
  /** Total bytes of a stream source, when known (for progress and a single PUT when small). */
  contentLength?: number;
}

export interface UploadResult {
  key: string;
  size: number;
  etag: string;
}

const DEFAULT_PART_SIZE = 8 * 1024 * 1024;

/**
 * The S3 CDN driver (Ceph RGW, MinIO, AWS S3): parallel ranged GETs with retries and resume,
 * multipart uploads that leave nothing behind on failure, and the small object operations the
 * server needs. Reads use the downloader keys, writes the uploader keys. Errors are SluiceErrors
 * that name the endpoint and bucket, never a secret.
 */
export class CdnManager implements Downloader {
  readonly endpoint: string;
  readonly bucket: string;
  readonly #settings: CdnSettings;
  readonly #reader: S3Client;
  readonly #writer: S3Client | undefined;
  readonly #backoffMs: number;
  readonly #maxBackoffMs: number;

  constructor(settings: CdnSettings, options: CdnManagerOptions = {}) {
    if (typeof settings.endpoint !== 'string' || !/^https?:\/\//.test(settings.endpoint)) {
      throw new SluiceError('ERR_INVALID_ARG', 'CDN endpoint must be an http(s) URL');
    }
    if (typeof settings.bucket !== 'string' || settings.bucket === '') {
      throw new SluiceError('ERR_INVALID_ARG', 'CDN bucket must be a non-empty string');
    }
    this.endpoint = settings.endpoint.replace(/\/+$/, '');
    this.bucket = settings.bucket;
    this.#settings = settings;
    this.#backoffMs = options.backoffMs ?? 200;
    this.#maxBackoffMs = options.maxBackoffMs ?? 5000;
    const readKeys = settings.downloader ?? settings.uploader;
    this.#reader = makeClient(this.endpoint, settings.region, readKeys, options);
    this.#writer =
      settings.uploader === undefined
        ? undefined
        : settings.uploader === readKeys
          ? this.#reader
          : makeClient(this.endpoint, settings.region, settings.uploader, options);
  }

  /** Fetches `options.url` (the object key) as parallel ranged GETs; see `S3DownloadOptions`. */
  async download(options: S3DownloadOptions): Promise<void> {
    validateDownloadOptions(options);
    const { url: key, size, chunkSize, signal } = options;
    if (signal?.aborted) throw abortedError(signal);
    let etag = options.etag;
    let state: ResumeState | undefined;
    if (options.resumeFile !== undefined) {
      if (etag === undefined) {
        const head = await this.exists(key, signal === undefined ? {} : { signal });
        if (head === null) throw this.#notFound(key, 'download');
        if (head.size !== size) throw this.#sizeChanged(key, head.size, size);
        etag = head.etag;
      }
      state = await ResumeState.open(options.resumeFile, {
        source: `${this.endpoint}/${this.bucket}/${key}`,
        etag,
        size,
        chunkSize,
      });
    }
    const recordEtag = (e: string | undefined): string | undefined => {
      etag ??= e;
      return etag;
    };
    try {
      await chunkedDownload(options, {
        what: `s3://${this.bucket}/${key} at ${this.endpoint}`,
        backoffMs: this.#backoffMs,
        maxBackoffMs: this.#maxBackoffMs,
        ...(state === undefined ? {} : { skip: state.done, onDelivered: (i) => state.record(i) }),
        fetchRange: (start, end, stop, into) =>
          this.#fetchRange(key, start, end, size, etag, stop, recordEtag, into),
      });
    } catch (e) {
      await state?.flush();
      throw e;
    }
    await state?.remove();
  }

  async #fetchRange(
    key: string,
    start: number,
    end: number,
    size: number,
    etag: string | undefined,
    signal: AbortSignal,
    recordEtag: (etag: string | undefined) => string | undefined,
    into?: Buffer,
  ): Promise<Buffer> {
    let out: GetObjectCommandOutput;
    try {
      out = await this.#reader.send(
        new GetObjectCommand({
          Bucket: this.bucket,
          Key: key,
          Range: `bytes=${start}-${end}`,
          ...(etag === undefined ? {} : { IfMatch: etag }),
        }),
        { abortSignal: signal },
      );
    } catch (e) {
      if (signal.aborted) throw e;
      if (isTransientS3Error(e)) throw new Transient(describe(e), { cause: e });
      if (s3Status(e) === 416) throw this.#sizeChanged(key, undefined, size, e);
      throw this.#error(e, key, 'download');
    }
    const body = out.Body;
    try {
      const got = out;
      const expected = `bytes ${start}-${end}/`;
      const total = got.ContentRange?.startsWith(expected)
        ? got.ContentRange.slice(expected.length)
        : undefined;
      if (total === undefined) {
        throw new SluiceError(
          'ERR_BAD_RESPONSE',
          `s3://${this.bucket}/${key} at ${this.endpoint} answered bytes ${start}-${end} with Content-Range ${got.ContentRange ?? '(none)'}`,
        );
      }
      if (total !== '*' && Number(total) !== size) {
        throw this.#sizeChanged(key, Number(total), size);
      }
      if (got.ETag !== undefined && recordEtag(got.ETag) !== got.ETag) {
        throw new SluiceError(
          'ERR_SOURCE_CHANGED',
          `s3://${this.bucket}/${key} at ${this.endpoint} changed during the download (ETag ${got.ETag})`,
        );
      }
      if (!(body instanceof Readable)) {
        throw new SluiceError('ERR_BAD_RESPONSE', `GetObject of ${key} returned no body stream`);
      }
      return await readExactly(body, end - start + 1, signal, into);
    } finally {
      if (body instanceof Readable && !body.destroyed) body.destroy();
    }
  }

  /**
   * Uploads a file (path), stream or buffer to `key` as a multipart upload fed as the source
   * produces data (a single PUT when it fits one part). On failure or abort the multipart upload
   * is aborted, so no parts are left behind; an abort that arrives after the last part also
   * removes the finished object. A stream source is consumed and destroyed. Resolves with the
   * stored size and ETag (from HeadObject: Ceph's CompleteMultipartUpload returns none).
   */
  async upload(
    key: string,
    source: string | Readable | Buffer,
    options: UploadOptions = {},
  ): Promise<UploadResult> {
    const client = this.#writeClient('upload', key);
    const { signal } = options;
    const partSize = options.partSize ?? DEFAULT_PART_SIZE;
    if (!Number.isSafeInteger(partSize) || partSize < 5 * 1024 * 1024) {
      throw new SluiceError('ERR_INVALID_ARG', `partSize must be at least 5 MiB, got ${partSize}`);
    }
    if (signal?.aborted) throw abortedError(signal, 'upload');
    let contentLength = options.contentLength;
    let body: Readable;
    if (typeof source === 'string') {
      try {
        contentLength ??= (await stat(source)).size;
      } catch (e) {
        throw new SluiceError('ERR_IO', `cannot read upload source ${source}: ${describe(e)}`, {
          cause: e,
        });
      }
      body = createReadStream(source, { highWaterMark: 1024 * 1024 });
    } else if (Buffer.isBuffer(source)) {
      contentLength ??= source.length;
      body = Readable.from(slices(source, 1024 * 1024));
    } else if (source instanceof Readable) {
      body = source;
    } else {
      throw new SluiceError(
        'ERR_INVALID_ARG',
        'upload source must be a file path, Readable or Buffer',
      );
    }

    const feed = Readable.from(guarded(body, key, signal));
    const upload = new Upload({
      client,
      params: {
        Bucket: this.bucket,
        Key: key,
        Body: feed,
        ...(contentLength === undefined ? {} : { ContentLength: contentLength }),
      },
      partSize,
      queueSize: options.queueSize ?? 4,
      leavePartsOnError: false,
    });
    if (options.onProgress) {
      const onProgress = options.onProgress;
      upload.on('httpUploadProgress', (p) =>
        onProgress({ loaded: p.loaded ?? 0, ...(p.total === undefined ? {} : { total: p.total }) }),
      );
    }
    try {
      await upload.done();
    } catch (e) {
      if (signal?.aborted) throw abortedError(signal, 'upload');
      if (isSluiceError(e)) throw e;
      throw this.#error(e, key, 'upload', true);
    } finally {
      // a failed upload stops reading: end the source (and the guard's abort listener) here
      if (!feed.destroyed) feed.destroy();
      if (!body.destroyed) body.destroy();
    }
    if (signal?.aborted) {
      await this.remove(key).catch(() => {});
      throw abortedError(signal, 'upload');
    }
    const head = await this.#head(client, key, 'upload', true, signal);
    if (head === null) throw this.#notFound(key, 'upload');
    return { key, ...head };
  }

  /** Size and ETag of `key`, or null when it does not exist. */
  async exists(
    key: string,
    options: { signal?: AbortSignal } = {},
  ): Promise<{ size: number; etag: string } | null> {
    return this.#head(this.#reader, key, 'head', false, options.signal);
  }

  async #head(
    client: S3Client,
    key: string,
    operation: string,
    write: boolean,
    signal: AbortSignal | undefined,
  ): Promise<{ size: number; etag: string } | null> {
    if (signal?.aborted) throw abortedError(signal, operation);
    try {
      const head = await client.send(
        new HeadObjectCommand({ Bucket: this.bucket, Key: key }),
        signal === undefined ? {} : { abortSignal: signal },
      );
      return { size: head.ContentLength ?? 0, etag: head.ETag ?? '' };
    } catch (e) {
      if (signal?.aborted) throw abortedError(signal, operation);
      if (s3Status(e) === 404) return null;
      throw this.#error(e, key, operation, write);
    }
  }

  /** Deletes `key`; a missing key is not an error. */
  async remove(key: string, options: { signal?: AbortSignal } = {}): Promise<void> {
    const client = this.#writeClient('remove', key);
    const { signal } = options;
    if (signal?.aborted) throw abortedError(signal, 'remove');
    try {
      await client.send(
        new DeleteObjectCommand({ Bucket: this.bucket, Key: key }),
        signal === undefined ? {} : { abortSignal: signal },
      );
    } catch (e) {
      if (signal?.aborted) throw abortedError(signal, 'remove');
      throw this.#error(e, key, 'remove', true);
    }
  }

  /**
   * A stream of `key`, or of bytes `range.start`..`range.end` (inclusive) of it. Missing object:
   * ERR_NOT_FOUND before any byte is read.
   */
  async openRead(
    key: string,
    options: { signal?: AbortSignal; range?: { start: number; end: number } } = {},
  ): Promise<Readable> {
    const { signal, range } = options;
    if (range !== undefined) {
      const { start, end } = range;
      if (!Number.isSafeInteger(start) || !Number.isSafeInteger(end) || start < 0 || end < start) {
        throw new SluiceError('ERR_INVALID_ARG', `bad range ${start}-${end}`);
      }
    }
    if (signal?.aborted) throw abortedError(signal, 'read');
    try {
      const out = await this.#reader.send(
        new GetObjectCommand({
          Bucket: this.bucket,
          Key: key,
          ...(range === undefined ? {} : { Range: `bytes=${range.start}-${range.end}` }),
        }),
        signal === undefined ? {} : { abortSignal: signal },
      );
      if (!(out.Body instanceof Readable)) {
        throw new SluiceError('ERR_BAD_RESPONSE', `GetObject of ${key} returned no body stream`);
      }
      return out.Body;
    } catch (e) {
      if (signal?.aborted) throw abortedError(signal, 'read');
      if (isSluiceError(e)) throw e;
      throw this.#error(e, key, 'read');
    }
  }

  /** Creates the bucket with the uploader keys unless it exists. */
  async ensureBucket(): Promise<void> {
    const client = this.#writeClient('create bucket');
    try {
      await client.send(new HeadBucketCommand({ Bucket: this.bucket }));
      return;
    } catch (e) {
      if (s3Status(e) !== 404) throw this.#error(e, undefined, 'check bucket', true);
    }
    try {
      await client.send(new CreateBucketCommand({ Bucket: this.bucket }));
    } catch (e) {
      const name = (e as { name?: unknown }).name;
      if (name === 'BucketAlreadyOwnedByYou') return;
      throw this.#error(e, undefined, 'create bucket', true);
    }
  }

  /** Closes the kept-alive connections. The manager must not be used afterwards. */
  destroy(): void {
    this.#reader.destroy();
    if (this.#writer !== this.#reader) this.#writer?.destroy();
  }

  #writeClient(operation: string, key?: string): S3Client {
    if (this.#writer === undefined) {
      throw new SluiceError(
        'ERR_INVALID_ARG',
        `${operation}${key === undefined ? '' : ` of ${key}`}: no uploader credentials for bucket ${this.bucket} at ${this.endpoint}`,
      );
    }
    return this.#writer;
  }

  #error(e: unknown, key: string | undefined, operation: string, write = false): SluiceError {
    const keys = write
      ? this.#settings.uploader
      : (this.#settings.downloader ?? this.#settings.uploader);
    const ctx: S3Context = {
      endpoint: this.endpoint,
      bucket: this.bucket,
      operation,
      role: write || this.#settings.downloader === undefined ? 'uploader' : 'downloader',
      ...(key === undefined ? {} : { key }),
      ...(keys === undefined ? {} : { accessKeyId: keys.accessKeyId }),
    };
    return s3Error(e, ctx);
  }

  #notFound(key: string, operation: string): SluiceError {
    return new SluiceError(
      'ERR_NOT_FOUND',
      `${operation}: s3://${this.bucket}/${key} at ${this.endpoint} does not exist`,
    );
  }

  #sizeChanged(
    key: string,
    actual: number | undefined,
    expected: number,
    cause?: unknown,
  ): SluiceError {
    const is = actual === undefined ? 'is shorter than' : `is ${actual} bytes, not`;
    return new SluiceError(
      'ERR_SOURCE_CHANGED',
      `s3://${this.bucket}/${key} at ${this.endpoint} ${is} the expected ${expected} bytes`,
      cause === undefined ? {} : { cause },
    );
  }
}

function makeClient(
  endpoint: string,
  region: string | undefined,
  credentials: S3Credentials | undefined,
  options: CdnManagerOptions,
): S3Client {
  const agentOptions = { keepAlive: true, maxSockets: 64 };
  const client = new S3Client({
    endpoint,
    region: region ?? 'us-east-1',
    forcePathStyle: true,
    ...(credentials === undefined
      ? {}
      : {
          credentials: {
            accessKeyId: credentials.accessKeyId,
            secretAccessKey: credentials.secretAccessKey,
          },
        }),
    maxAttempts: options.maxAttempts ?? 3,
    // Ceph RGW answers 411 to a streamed body sent with a checksum trailer.
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    requestHandler: {
      requestTimeout: options.requestTimeoutMs ?? 30_000,
      connectionTimeout: 10_000,
      httpAgent: new Agent(agentOptions),
      httpsAgent: new HttpsAgent(agentOptions),
    },
  });
  const onRequest = options.onRequest;
  if (onRequest) {
    client.middlewareStack.add(
      (next, context) => async (args) => {
        const input = args.input as { Key?: unknown; Range?: unknown };
        onRequest({
          command: context.commandName ?? 'unknown',
          ...(typeof input.Key === 'string' ? { key: input.Key } : {}),
          ...(typeof input.Range === 'string' ? { range: input.Range } : {}),
        });
        return next(args);
      },
      // inside the retry middleware, so every attempt is seen
      { step: 'finalizeRequest', priority: 'low', name: 'sluiceRequestCounter' },
    );
  }
  return client;
}

/** Reads exactly `length` bytes of `body`; fewer is a transient failure, more a bad response. */
async function readExactly(
  body: Readable,
  length: number,
  signal: AbortSignal,
  into?: Buffer,
): Promise<Buffer> {
  const buf = into !== undefined && into.length === length ? into : Buffer.allocUnsafe(length);
  let offset = 0;
  try {
    for await (const piece of body as AsyncIterable<Buffer>) {
      if (offset + piece.length > length) {
        throw new SluiceError('ERR_BAD_RESPONSE', `body longer than the ${length} bytes asked for`);
      }
      piece.copy(buf, offset);
      offset += piece.length;
    }
  } catch (e) {
    if (signal.aborted || isSluiceError(e)) throw e;
    throw new Transient(`body broke off after ${offset} of ${length} bytes: ${describe(e)}`, {
      cause: e,
    });
  }
  if (offset !== length) throw new Transient(`short body: ${offset} of ${length} bytes`);
  return buf;
}

function* slices(buf: Buffer, size: number): Generator<Buffer> {
  for (let i = 0; i < buf.length; i += size) yield buf.subarray(i, i + size);
}

/**
 * The upload source as an async iterable that ends with ERR_ABORTED as soon as `signal` fires
 * (even while the source is stalled) and turns a read failure into ERR_IO.
 */
async function* guarded(
  source: Readable,
  key: string,
  signal: AbortSignal | undefined,
): AsyncGenerator<Buffer> {
  // Abort by destroying the source, which rejects a pending read at once. (Racing every read
  // against one long-lived abort promise kept every chunk reachable: `pnpm bench:pull --s3` saw
  // a 2 GiB push peak at 2199 MB of RSS, about 200 MB without it.)
  const onAbort = () => {
    if (signal !== undefined) source.destroy(abortedError(signal, 'upload'));
  };
  if (signal?.aborted) onAbort();
  else signal?.addEventListener('abort', onAbort, { once: true });
  try {
    const it = (source as AsyncIterable<Buffer>)[Symbol.asyncIterator]();
    for (;;) {
      let next: IteratorResult<Buffer>;
      try {
        next = await it.next();
      } catch (e) {
        if (isSluiceError(e)) throw e;
        throw new SluiceError(
          'ERR_IO',
          `reading the upload source of ${key} failed: ${describe(e)}`,
          {
            cause: e,
          },
        );
      }
      if (next.done) return;
      yield next.value;
    }
  } finally {
    signal?.removeEventListener('abort', onAbort);
  }
}
