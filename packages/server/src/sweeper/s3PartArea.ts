import { cdnObjectKey } from '@sluice/protocol';
import type { OpenUpload, PartArea, StoredPart } from './partArea.js';
import { listPrefix, openUploadsUnder, type S3Target, s3Time, whereOf } from './s3Target.js';

// As S3PartStore names parts (and parcel bytes): `<prefix>/<32 hex digits>`.
const PART_ID = /^[0-9a-f]{32}$/;

/**
 * The part storage's bucket prefix: objects `<prefix>/<id>` (resource parts and parcel bytes,
 * side by side) and the multipart uploads of such keys. Other keys under the prefix, or
 * elsewhere in the bucket, are never listed as parts. Sweep it only with a source that names
 * every part written under this prefix: another server with metadata of its own over the same
 * bucket and prefix would lose its parts.
 */
export class S3PartArea implements PartArea {
  readonly where: string;
  readonly #target: S3Target;
  readonly #listPrefix: string;

  constructor(target: S3Target) {
    this.#target = target;
    this.#listPrefix = listPrefix(target);
    this.where = whereOf(target);
  }

  async *parts(signal?: AbortSignal): AsyncGenerator<StoredPart> {
    for await (const o of this.#target.bucket.listObjects(this.#listPrefix, { signal })) {
      const id = this.#idOf(o.key);
      if (id !== undefined) yield { id, modifiedAt: s3Time(o.lastModified) };
    }
  }

  removePart(id: string, signal?: AbortSignal): Promise<void> {
    if (!PART_ID.test(id)) throw new Error('invalid part id');
    return this.#target.bucket.remove(cdnObjectKey(this.#target.prefix, id), { signal });
  }

  openUploads(signal?: AbortSignal): AsyncGenerator<OpenUpload> {
    return openUploadsUnder(this.#target, (key) => this.#idOf(key) !== undefined, signal);
  }

  abortUpload(upload: OpenUpload, signal?: AbortSignal): Promise<boolean> {
    return this.#target.bucket.abortUpload(upload.key, upload.uploadId, { signal });
  }

  #idOf(key: string): string | undefined {
    const id = key.slice(this.#listPrefix.length);
    return key.startsWith(this.#listPrefix) && PART_ID.test(id) ? id : undefined;
  }
}
