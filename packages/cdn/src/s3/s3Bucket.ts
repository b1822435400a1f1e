import { HeadObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { type S3Credentials, SluiceError } from '@sluice/protocol';
import { abortedError } from '../engine/errors.js';
import { createS3Client, type S3ClientOptions, type S3RequestInfo } from './s3Client.js';
import { type S3Context, s3Error, s3Status } from './s3Error.js';

/** One bucket of an S3 store (the seed's `cdn.yaml`): separate read and write key pairs. */
export interface S3BucketSettings {
  endpoint: string;
  /** Default us-east-1 (Ceph RGW accepts any). */
  region?: string;
  bucket: string;
  /** Read keys: download, exists, openRead. Default: the uploader keys. */
  downloader?: S3Credentials;
  /** Write keys: upload, remove, ensureBucket. */
  uploader?: S3Credentials;
}

/** Size and ETag of a stored object. */
export interface S3ObjectHead {
  size: number;
  etag: string;
}

/**
 * The client setup S3Downloader and S3Objects share: the checked settings, a reader client with
 * the downloader keys, a writer with the uploader keys (made on first write), and the errors that
 * name the endpoint and bucket, never a secret.
 */
export class S3Bucket {
  readonly endpoint: string;
  readonly bucket: string;
  readonly reader: S3Client;
  readonly #settings: S3BucketSettings;
  readonly #options: S3ClientOptions;
  #writer: S3Client | undefined;

  constructor(settings: S3BucketSettings, options: S3ClientOptions) {
    if (typeof settings.endpoint !== 'string' || !/^https?:\/\//.test(settings.endpoint)) {
      throw new SluiceError('ERR_INVALID_ARG', 'CDN endpoint must be an http(s) URL');
    }
    if (typeof settings.bucket !== 'string' || settings.bucket === '') {
      throw new SluiceError('ERR_INVALID_ARG', 'CDN bucket must be a non-empty string');
    }
    this.endpoint = settings.endpoint.replace(/\/+$/, '');
    this.bucket = settings.bucket;
    this.#settings = settings;
    this.#options = options;
    const readKeys = settings.downloader ?? settings.uploader;
    this.reader = createS3Client(this.endpoint, settings.region, readKeys, options);
  }

  /** The region requests are signed for. */
  get region(): string {
    return this.#settings.region ?? 'us-east-1';
  }

  /** The key pair reads are signed with (none: anonymous reads). */
  get readKeys(): S3Credentials | undefined {
    return this.#settings.downloader ?? this.#settings.uploader;
  }

  /** Idle time after which a request is cut off and retried (ms). */
  get requestTimeoutMs(): number {
    return this.#options.requestTimeoutMs ?? 30_000;
  }

  /** Tells `onRequest` of a request made outside the SDK (the socket path of ranged GETs). */
  notifyRequest(info: S3RequestInfo): void {
    this.#options.onRequest?.(info);
  }

  /** The client with the uploader keys; ERR_INVALID_ARG naming `operation` when there are none. */
  writer(operation: string, key?: string): S3Client {
    const { uploader, downloader, region } = this.#settings;
    if (uploader === undefined) {
      throw new SluiceError(
        'ERR_INVALID_ARG',
        `${operation}${key === undefined ? '' : ` of ${key}`}: no uploader credentials for bucket ${this.bucket} at ${this.endpoint}`,
      );
    }
    // one key pair for both: the reader is the writer
    this.#writer ??=
      downloader === undefined || downloader === uploader
        ? this.reader
        : createS3Client(this.endpoint, region, uploader, this.#options);
    return this.#writer;
  }

  /** `s3://bucket/key at endpoint`, for messages. */
  where(key: string): string {
    return `s3://${this.bucket}/${key} at ${this.endpoint}`;
  }

  /** Size and ETag of `key`, or null when it does not exist. */
  async head(
    client: S3Client,
    key: string,
    operation: string,
    write: boolean,
    signal: AbortSignal | undefined,
  ): Promise<S3ObjectHead | null> {
    if (signal?.aborted) throw abortedError(signal, operation);
    try {
      const head = await client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: key }), {
        abortSignal: signal,
      });
      return { size: head.ContentLength ?? 0, etag: head.ETag ?? '' };
    } catch (e) {
      if (signal?.aborted) throw abortedError(signal, operation);
      if (s3Status(e) === 404) return null;
      throw this.error(e, key, operation, write);
    }
  }

  /** An SDK failure of `operation` as a SluiceError naming the key pair used (by its id). */
  error(e: unknown, key: string | undefined, operation: string, write = false): SluiceError {
    const { uploader, downloader } = this.#settings;
    const keys = write ? uploader : (downloader ?? uploader);
    const ctx: S3Context = {
      endpoint: this.endpoint,
      bucket: this.bucket,
      operation,
      role: write || downloader === undefined ? 'uploader' : 'downloader',
      key,
      accessKeyId: keys?.accessKeyId,
    };
    return s3Error(e, ctx);
  }

  notFound(key: string, operation: string): SluiceError {
    return new SluiceError('ERR_NOT_FOUND', `${operation}: ${this.where(key)} does not exist`);
  }

  sizeChanged(key: string, actual: number | undefined, expected: number, cause?: unknown) {
    const is = actual === undefined ? 'is shorter than' : `is ${actual} bytes, not`;
    return new SluiceError(
      'ERR_SOURCE_CHANGED',
      `${this.where(key)} ${is} the expected ${expected} bytes`,
      { cause },
    );
  }

  /** Closes the kept-alive connections. The bucket must not be used afterwards. */
  destroy(): void {
    this.reader.destroy();
    if (this.#writer !== this.reader) this.#writer?.destroy();
  }
}
