import { cdnObjectKey } from '@sluice/protocol';
import type { OpenUpload, UploadArea } from './partArea.js';
import { openUploadsUnder, type S3Target, s3Time, whereOf } from './s3Target.js';

/**
 * The S3 CDN as the sweeper sees it: the big-part uploads left open under its prefix (a pushing
 * client that crashed) and the objects of deleted versions, by `cdnKey`. Its other objects are
 * never listed: only a pending deletion names an object to remove.
 */
export class CdnArea implements UploadArea {
  readonly where: string;
  readonly #target: S3Target;

  constructor(target: S3Target) {
    this.#target = target;
    this.where = whereOf(target);
  }

  openUploads(signal?: AbortSignal): AsyncGenerator<OpenUpload> {
    // Any key: under the CDN's prefix, clients upload to keys of their choosing.
    return openUploadsUnder(this.#target, () => true, signal);
  }

  abortUpload(upload: OpenUpload, signal?: AbortSignal): Promise<boolean> {
    return this.#target.bucket.abortUpload(upload.key, upload.uploadId, { signal });
  }

  /** The object key that `cdnKey` names. */
  objectKey(cdnKey: string): string {
    return cdnObjectKey(this.#target.prefix, cdnKey);
  }

  /** When the object of `cdnKey` was last written (ms since the epoch), or null when it is gone. */
  async modifiedAt(cdnKey: string, signal?: AbortSignal): Promise<number | null> {
    const stat = await this.#target.bucket.stat(this.objectKey(cdnKey), { signal });
    return stat === null ? null : s3Time(stat.lastModified);
  }

  remove(cdnKey: string, signal?: AbortSignal): Promise<void> {
    return this.#target.bucket.remove(this.objectKey(cdnKey), { signal });
  }
}
