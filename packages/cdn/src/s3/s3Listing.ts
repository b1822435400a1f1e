import {
  AbortMultipartUploadCommand,
  HeadObjectCommand,
  type HeadObjectCommandOutput,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
} from '@aws-sdk/client-s3';
import { SluiceError } from '@sluice/protocol';
import { abortedError } from '../engine/errors.js';
import type { S3Bucket } from './s3Bucket.js';
import { s3Status } from './s3Error.js';

/** An object as S3 describes it: key, size and when it was last written. */
export interface S3ListedObject {
  key: string;
  size: number;
  lastModified: Date;
}

/** A multipart upload begun and neither completed nor aborted: its parts stay stored until then. */
export interface S3OpenUpload {
  key: string;
  uploadId: string;
  initiated: Date;
}

export interface S3ListOptions {
  signal?: AbortSignal;
  /** Entries per request (default 1000, the S3 maximum); the listing pages through them all. */
  pageSize?: number;
}

const MAX_PAGE = 1000;

function pageSizeOf(options: S3ListOptions): number {
  const size = options.pageSize ?? MAX_PAGE;
  if (!Number.isSafeInteger(size) || size < 1 || size > MAX_PAGE) {
    throw new SluiceError('ERR_INVALID_ARG', `pageSize must be 1..${MAX_PAGE}, got ${size}`);
  }
  return size;
}

function malformed(s3: S3Bucket, operation: string, what: string): SluiceError {
  return new SluiceError(
    'ERR_BAD_RESPONSE',
    `${operation} of s3://${s3.bucket} at ${s3.endpoint}: the store answered without ${what}`,
  );
}

/** Sends one listing request, its failure as a SluiceError (aborts as ERR_ABORTED). */
async function send<T>(
  s3: S3Bucket,
  operation: string,
  key: string,
  signal: AbortSignal | undefined,
  request: () => Promise<T>,
): Promise<T> {
  if (signal?.aborted) throw abortedError(signal, operation);
  try {
    return await request();
  } catch (e) {
    if (signal?.aborted) throw abortedError(signal, operation);
    throw s3.error(e, key, operation, true);
  }
}

/** Every object whose key starts with `prefix`, in key order, one page at a time. */
export async function* listObjects(
  s3: S3Bucket,
  prefix: string,
  options: S3ListOptions,
): AsyncGenerator<S3ListedObject> {
  const { signal } = options;
  const client = s3.writer('list', prefix);
  const MaxKeys = pageSizeOf(options);
  let token: string | undefined;
  do {
    const input = { Bucket: s3.bucket, Prefix: prefix, ContinuationToken: token, MaxKeys };
    const page = await send(s3, 'list', prefix, signal, () =>
      client.send(new ListObjectsV2Command(input), { abortSignal: signal }),
    );
    for (const o of page.Contents ?? []) {
      // A missing time would make an object look ancient to a sweep: refuse instead.
      if (o.Key === undefined || !(o.LastModified instanceof Date)) {
        throw malformed(s3, 'list', 'an object key or LastModified');
      }
      yield { key: o.Key, size: o.Size ?? 0, lastModified: o.LastModified };
    }
    if (page.IsTruncated && page.NextContinuationToken === undefined) {
      throw malformed(s3, 'list', 'the continuation token of a truncated page');
    }
    token = page.IsTruncated ? page.NextContinuationToken : undefined;
  } while (token !== undefined);
}

/** Every open multipart upload whose key starts with `prefix`, one page at a time. */
export async function* listUploads(
  s3: S3Bucket,
  prefix: string,
  options: S3ListOptions,
): AsyncGenerator<S3OpenUpload> {
  const { signal } = options;
  const client = s3.writer('list uploads', prefix);
  const MaxUploads = pageSizeOf(options);
  let KeyMarker: string | undefined;
  let UploadIdMarker: string | undefined;
  for (;;) {
    const input = { Bucket: s3.bucket, Prefix: prefix, KeyMarker, UploadIdMarker, MaxUploads };
    const page = await send(s3, 'list uploads', prefix, signal, () =>
      client.send(new ListMultipartUploadsCommand(input), { abortSignal: signal }),
    );
    for (const u of page.Uploads ?? []) {
      if (u.Key === undefined || u.UploadId === undefined || !(u.Initiated instanceof Date)) {
        throw malformed(s3, 'list uploads', 'an upload key, id or Initiated');
      }
      yield { key: u.Key, uploadId: u.UploadId, initiated: u.Initiated };
    }
    if (!page.IsTruncated) return;
    if (page.NextKeyMarker === undefined) {
      throw malformed(s3, 'list uploads', 'the next key marker of a truncated page');
    }
    KeyMarker = page.NextKeyMarker;
    UploadIdMarker = page.NextUploadIdMarker;
  }
}

/** Aborts an open multipart upload, dropping its parts; false when it was no longer open. */
export async function abortUpload(
  s3: S3Bucket,
  key: string,
  uploadId: string,
  signal: AbortSignal | undefined,
): Promise<boolean> {
  const client = s3.writer('abort upload', key);
  const input = { Bucket: s3.bucket, Key: key, UploadId: uploadId };
  if (signal?.aborted) throw abortedError(signal, 'abort upload');
  try {
    await client.send(new AbortMultipartUploadCommand(input), { abortSignal: signal });
    return true;
  } catch (e) {
    if (signal?.aborted) throw abortedError(signal, 'abort upload');
    // NoSuchUpload: completed or aborted meanwhile (by its uploader or another sweep).
    if (s3Status(e) === 404 && (e as Error).name !== 'NoSuchBucket') return false;
    throw s3.error(e, key, 'abort upload', true);
  }
}

/** Key, size and last-modified time of `key` (with the uploader keys), or null when it is gone. */
export async function statObject(
  s3: S3Bucket,
  key: string,
  signal: AbortSignal | undefined,
): Promise<S3ListedObject | null> {
  const client = s3.writer('stat', key);
  if (signal?.aborted) throw abortedError(signal, 'stat');
  let head: HeadObjectCommandOutput;
  try {
    head = await client.send(new HeadObjectCommand({ Bucket: s3.bucket, Key: key }), {
      abortSignal: signal,
    });
  } catch (e) {
    if (signal?.aborted) throw abortedError(signal, 'stat');
    if (s3Status(e) === 404) return null;
    throw s3.error(e, key, 'stat', true);
  }
  if (!(head.LastModified instanceof Date)) throw malformed(s3, 'stat', 'Last-Modified');
  return { key, size: head.ContentLength ?? 0, lastModified: head.LastModified };
}
