import { Readable } from 'node:stream';
import { GetObjectCommand, type GetObjectCommandOutput } from '@aws-sdk/client-s3';
import { SluiceError } from '@sluice/protocol';
import { chunkedDownload } from '../engine/chunkedDownload.js';
import { parseContentRange } from '../engine/contentRange.js';
import type { Downloader, DownloadOptions } from '../engine/downloader.js';
import { abortedError, describe, Transient } from '../engine/errors.js';
import { EtagPin } from '../engine/etagPin.js';
import { readExactly } from '../engine/readExactly.js';
import { validateDownloadOptions } from '../engine/validateDownloadOptions.js';
import { proxyAgentFor } from '../http/proxyAgent.js';
import { Unsupported } from '../http/rangeSocket.js';
import { ResumeState } from '../resumeState.js';
import { S3Bucket, type S3BucketSettings } from './s3Bucket.js';
import type { S3ClientOptions } from './s3Client.js';
import { isTransientS3Error, s3Status } from './s3Error.js';
import { socketRange } from './s3SocketRange.js';

export interface S3DownloaderOptions extends S3ClientOptions {
  /** First retry delay of a chunk in ms, doubled per attempt (default 200). */
  backoffMs?: number;
  /** Upper bound of one chunk retry delay in ms (default 5000). */
  maxBackoffMs?: number;
  /**
   * Ranged GETs over the socket receiver, signed here (`s3SocketRange.ts`), where no proxy is in
   * the way (default true; `SLUICE_HTTP_RECEIVE=node` in the environment makes it false). False,
   * or an endpoint whose ranges that path cannot read, goes through the SDK.
   */
  socketReceive?: boolean;
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

/**
 * Downloads objects of one S3 bucket (Ceph RGW, MinIO, AWS S3) with the downloader keys, as
 * parallel ranged GETs with retries, pinned to one ETag, and resumable through a state file.
 */
export class S3Downloader implements Downloader {
  readonly #s3: S3Bucket;
  readonly #backoffMs: number;
  readonly #maxBackoffMs: number;
  /** Whether ranges go over the socket receiver (cleared when it cannot read this endpoint's). */
  #socket: boolean;

  constructor(settings: S3BucketSettings, options: S3DownloaderOptions = {}) {
    this.#s3 = new S3Bucket(settings, options);
    this.#backoffMs = options.backoffMs ?? 200;
    this.#maxBackoffMs = options.maxBackoffMs ?? 5000;
    this.#socket =
      (options.socketReceive ?? process.env.SLUICE_HTTP_RECEIVE !== 'node') &&
      proxyAgentFor(new URL(this.#s3.endpoint)) === undefined;
  }

  get endpoint(): string {
    return this.#s3.endpoint;
  }

  get bucket(): string {
    return this.#s3.bucket;
  }

  /** Fetches `options.url` (the object key) as parallel ranged GETs; see `S3DownloadOptions`. */
  async download(options: S3DownloadOptions): Promise<void> {
    validateDownloadOptions(options);
    const { url: key, size, signal } = options;
    if (signal?.aborted) throw abortedError(signal);
    const state = await this.#resumeState(options);
    const etag = new EtagPin(state?.etag ?? options.etag);
    try {
      await chunkedDownload(options, {
        what: this.#s3.where(key),
        backoffMs: this.#backoffMs,
        maxBackoffMs: this.#maxBackoffMs,
        skip: state?.resume.done,
        onDelivered: state && ((i) => state.resume.record(i)),
        fetchRange: (start, end, stop, into) =>
          this.#fetchRange(key, start, end, size, etag, stop, into),
      });
    } catch (e) {
      await state?.resume.flush();
      throw e;
    }
    await state?.resume.remove();
  }

  /** Closes the kept-alive connections. The downloader must not be used afterwards. */
  destroy(): void {
    this.#s3.destroy();
  }

  /** With a resume file: its state, for the object's ETag (asked first unless given). */
  async #resumeState(
    options: S3DownloadOptions,
  ): Promise<{ resume: ResumeState; etag: string } | undefined> {
    const { url: key, size, chunkSize, signal, resumeFile } = options;
    if (resumeFile === undefined) return undefined;
    let etag = options.etag;
    if (etag === undefined) {
      const head = await this.#s3.head(this.#s3.reader, key, 'head', false, signal);
      if (head === null) throw this.#s3.notFound(key, 'download');
      if (head.size !== size) throw this.#s3.sizeChanged(key, head.size, size);
      etag = head.etag;
    }
    const source = `${this.#s3.endpoint}/${this.#s3.bucket}/${key}`;
    const resume = await ResumeState.open(resumeFile, { source, etag, size, chunkSize });
    return { resume, etag };
  }

  async #fetchRange(
    key: string,
    start: number,
    end: number,
    size: number,
    etag: EtagPin,
    signal: AbortSignal,
    into?: Buffer,
  ): Promise<Buffer> {
    const s3 = this.#s3;
    if (this.#socket) {
      try {
        return await socketRange(s3, key, { start, end, size }, etag, signal, into);
      } catch (e) {
        if (!(e instanceof Unsupported)) throw e;
        // A store that sends ranges chunked: its ranges go through the SDK from now on.
        this.#socket = false;
        throw new Transient(e.message, { cause: e });
      }
    }
    let out: GetObjectCommandOutput;
    try {
      out = await s3.reader.send(
        new GetObjectCommand({
          Bucket: s3.bucket,
          Key: key,
          Range: `bytes=${start}-${end}`,
          IfMatch: etag.current,
        }),
        { abortSignal: signal },
      );
    } catch (e) {
      if (signal.aborted) throw e;
      if (isTransientS3Error(e)) throw new Transient(describe(e), { cause: e });
      if (s3Status(e) === 416) throw s3.sizeChanged(key, undefined, size, e);
      throw s3.error(e, key, 'download');
    }
    const body = out.Body;
    try {
      const range = parseContentRange(out.ContentRange);
      // a total other than the expected size is a changed object, whichever range came back
      if (range !== null && range.total !== '*' && range.total !== size) {
        throw s3.sizeChanged(key, range.total, size);
      }
      if (range?.first !== start || range.last !== end) {
        throw new SluiceError(
          'ERR_BAD_RESPONSE',
          `${s3.where(key)} answered bytes ${start}-${end} with Content-Range ${out.ContentRange ?? '(none)'}`,
        );
      }
      if (out.ETag !== undefined && !etag.accepts(out.ETag)) {
        throw new SluiceError(
          'ERR_SOURCE_CHANGED',
          `${s3.where(key)} changed during the download (ETag ${out.ETag})`,
        );
      }
      if (!(body instanceof Readable)) {
        throw new SluiceError('ERR_BAD_RESPONSE', `GetObject of ${key} returned no body stream`);
      }
      return await readExactly(body, end - start + 1, signal, into, bodyTooLong);
    } finally {
      if (body instanceof Readable && !body.destroyed) body.destroy();
    }
  }
}

/** More body than the range asked for: a broken store, not worth another attempt. */
function bodyTooLong(length: number): SluiceError {
  return new SluiceError('ERR_BAD_RESPONSE', `body longer than the ${length} bytes asked for`);
}
