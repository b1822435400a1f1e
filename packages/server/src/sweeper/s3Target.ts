import type { S3Objects } from '@sluice/cdn';
import type { OpenUpload } from './partArea.js';

/**
 * A bucket (with the uploader keys) and the `/`-separated key prefix sluice writes under; null:
 * the whole bucket. The shape of the resource service's `CdnObjects`.
 */
export interface S3Target {
  bucket: S3Objects;
  prefix: string | null;
}

/** What a listing under the target's prefix asks for: "prefix/", or "" for the whole bucket. */
export function listPrefix(target: S3Target): string {
  return target.prefix ? `${target.prefix}/` : '';
}

/**
 * An S3 time as the latest moment it may stand for: S3 times may be truncated to the second
 * (Ceph's HEAD is), and a sweep must never think an object older than it is.
 */
export function s3Time(date: Date): number {
  return date.getTime() + 999;
}

/** The open multipart uploads under the target's prefix whose keys `accepts` takes. */
export async function* openUploadsUnder(
  target: S3Target,
  accepts: (key: string) => boolean,
  signal: AbortSignal | undefined,
): AsyncGenerator<OpenUpload> {
  for await (const u of target.bucket.listUploads(listPrefix(target), { signal })) {
    if (accepts(u.key))
      yield { key: u.key, uploadId: u.uploadId, initiatedAt: s3Time(u.initiated) };
  }
}

/** `s3://bucket/prefix at endpoint`, for logs. */
export function whereOf(target: S3Target): string {
  const { bucket } = target;
  return `s3://${bucket.bucket}/${listPrefix(target)} at ${bucket.endpoint}`;
}
