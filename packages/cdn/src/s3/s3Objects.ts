import { Readable } from 'node:stream';
import {
  CreateBucketCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  HeadBucketCommand,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { isSluiceError, SluiceError } from '@sluice/protocol';
import { abortedError } from '../engine/errors.js';
import { S3Bucket, type S3BucketSettings, type S3ObjectHead } from './s3Bucket.js';
import type { S3ClientOptions } from './s3Client.js';
import { s3Status } from './s3Error.js';
import {
  abortUpload,
  listObjects,
  listUploads,
  type S3ListedObject,
  type S3ListOptions,
  type S3OpenUpload,
  statObject,
} from './s3Listing.js';
import { guardedSource, openUploadSource, type UploadSource } from './uploadSource.js';

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
 * The object operations on one S3 bucket (Ceph RGW, MinIO, AWS S3): multipart uploads that leave
 * nothing behind on failure, head, remove, ranged reads and creating the bucket; listing objects
 * and open multipart uploads, and aborting those (for sweeps). Reads use the downloader keys,
 * writes and listings the uploader keys.
 */
export class S3Objects {
  readonly #s3: S3Bucket;

  constructor(settings: S3BucketSettings, options: S3ClientOptions = {}) {
    this.#s3 = new S3Bucket(settings, options);
  }

  get endpoint(): string {
    return this.#s3.endpoint;
  }

  get bucket(): string {
    return this.#s3.bucket;
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
    source: UploadSource,
    options: UploadOptions = {},
  ): Promise<UploadResult> {
    const client = this.#s3.writer('upload', key);
    const { signal } = options;
    const partSize = options.partSize ?? DEFAULT_PART_SIZE;
    if (!Number.isSafeInteger(partSize) || partSize < 5 * 1024 * 1024) {
      throw new SluiceError('ERR_INVALID_ARG', `partSize must be at least 5 MiB, got ${partSize}`);
    }
    if (signal?.aborted) throw abortedError(signal, 'upload');
    const { body, contentLength } = await openUploadSource(source, options.contentLength);
    const feed = Readable.from(guardedSource(body, key, signal));
    const upload = new Upload({
      client,
      params: { Bucket: this.#s3.bucket, Key: key, Body: feed, ContentLength: contentLength },
      partSize,
      queueSize: options.queueSize ?? 4,
      leavePartsOnError: false,
    });
    const onProgress = options.onProgress;
    if (onProgress) {
      upload.on('httpUploadProgress', (p) => onProgress({ loaded: p.loaded ?? 0, total: p.total }));
    }
    try {
      await upload.done();
    } catch (e) {
      if (signal?.aborted) throw abortedError(signal, 'upload');
      if (isSluiceError(e)) throw e;
      throw this.#s3.error(e, key, 'upload', true);
    } finally {
      // a failed upload stops reading: end the source (and the guard's abort listener) here
      if (!feed.destroyed) feed.destroy();
      if (!body.destroyed) body.destroy();
    }
    if (signal?.aborted) {
      await this.remove(key).catch(() => {});
      throw abortedError(signal, 'upload');
    }
    const head = await this.#s3.head(client, key, 'upload', true, signal);
    if (head === null) throw this.#s3.notFound(key, 'upload');
    return { key, ...head };
  }

  /** Size and ETag of `key`, or null when it does not exist. */
  exists(key: string, options: { signal?: AbortSignal } = {}): Promise<S3ObjectHead | null> {
    return this.#s3.head(this.#s3.reader, key, 'head', false, options.signal);
  }

  /** Deletes `key`; a missing key is not an error. */
  async remove(key: string, options: { signal?: AbortSignal } = {}): Promise<void> {
    const client = this.#s3.writer('remove', key);
    const { signal } = options;
    if (signal?.aborted) throw abortedError(signal, 'remove');
    try {
      await client.send(new DeleteObjectCommand({ Bucket: this.#s3.bucket, Key: key }), {
        abortSignal: signal,
      });
    } catch (e) {
      if (signal?.aborted) throw abortedError(signal, 'remove');
      throw this.#s3.error(e, key, 'remove', true);
    }
  }

  /**
   * Every object under `prefix` (a plain key prefix: "parts/" for a folder, "" for the bucket)
   * with its size and last-modified time, paging through the listing. Uploader keys.
   */
  listObjects(prefix: string, options: S3ListOptions = {}): AsyncGenerator<S3ListedObject> {
    return listObjects(this.#s3, prefix, options);
  }

  /** Every multipart upload under `prefix` that was begun and never completed or aborted. */
  listUploads(prefix: string, options: S3ListOptions = {}): AsyncGenerator<S3OpenUpload> {
    return listUploads(this.#s3, prefix, options);
  }

  /** Aborts a multipart upload and drops its parts; false when it was no longer open. */
  abortUpload(
    key: string,
    uploadId: string,
    options: { signal?: AbortSignal } = {},
  ): Promise<boolean> {
    return abortUpload(this.#s3, key, uploadId, options.signal);
  }

  /** Size and last-modified time of `key` (uploader keys), or null when it does not exist. */
  stat(key: string, options: { signal?: AbortSignal } = {}): Promise<S3ListedObject | null> {
    return statObject(this.#s3, key, options.signal);
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
      const out = await this.#s3.reader.send(
        new GetObjectCommand({
          Bucket: this.#s3.bucket,
          Key: key,
          Range: range && `bytes=${range.start}-${range.end}`,
        }),
        { abortSignal: signal },
      );
      if (!(out.Body instanceof Readable)) {
        throw new SluiceError('ERR_BAD_RESPONSE', `GetObject of ${key} returned no body stream`);
      }
      return out.Body;
    } catch (e) {
      if (signal?.aborted) throw abortedError(signal, 'read');
      if (isSluiceError(e)) throw e;
      throw this.#s3.error(e, key, 'read');
    }
  }

  /**
   * One HeadBucket with the read keys: resolves when the bucket exists and those keys may use
   * it (a readiness check), else the same typed errors as the other operations.
   */
  async ping(options: { signal?: AbortSignal } = {}): Promise<void> {
    const { signal } = options;
    if (signal?.aborted) throw abortedError(signal, 'ping');
    try {
      await this.#s3.reader.send(new HeadBucketCommand({ Bucket: this.#s3.bucket }), {
        abortSignal: signal,
      });
    } catch (e) {
      if (signal?.aborted) throw abortedError(signal, 'ping');
      throw this.#s3.error(e, undefined, 'ping');
    }
  }

  /** Creates the bucket with the uploader keys unless it exists. */
  async ensureBucket(): Promise<void> {
    const client = this.#s3.writer('create bucket');
    const Bucket = this.#s3.bucket;
    try {
      await client.send(new HeadBucketCommand({ Bucket }));
      return;
    } catch (e) {
      if (s3Status(e) !== 404) throw this.#s3.error(e, undefined, 'check bucket', true);
    }
    try {
      await client.send(new CreateBucketCommand({ Bucket }));
    } catch (e) {
      const name = (e as { name?: unknown }).name;
      if (name === 'BucketAlreadyOwnedByYou') return;
      throw this.#s3.error(e, undefined, 'create bucket', true);
    }
  }

  /** Closes the kept-alive connections. The object must not be used afterwards. */
  destroy(): void {
    this.#s3.destroy();
  }
}
