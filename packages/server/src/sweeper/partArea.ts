/** A stored part and when it was last written (ms since the epoch, never earlier than it was). */
export interface StoredPart {
  id: string;
  modifiedAt: number;
}

/** An upload begun and never completed (an S3 multipart upload), and when it began. */
export interface OpenUpload {
  key: string;
  uploadId: string;
  initiatedAt: number;
}

/** Where uploads may be left open: a bucket prefix of the part storage or of the CDN. */
export interface UploadArea {
  /** For logs: the bucket and prefix, or the folder. */
  readonly where: string;
  /** The uploads under this area that were begun and never completed. */
  openUploads(signal?: AbortSignal): AsyncIterable<OpenUpload>;
  /** Aborts one, dropping its stored parts; false when it was no longer open. */
  abortUpload(upload: OpenUpload, signal?: AbortSignal): Promise<boolean>;
}

/**
 * Where stored parts and parcel bytes live, as the sweeper sees it: a bucket prefix
 * (`S3PartArea`) or a folder of the data directory (`FilePartArea`). Only names that the part
 * stores give their parts (random ids) are listed, so nothing else in a bucket is touched.
 */
export interface PartArea extends UploadArea {
  parts(signal?: AbortSignal): AsyncIterable<StoredPart>;
  /** Deletes a part; a missing one is not an error. */
  removePart(id: string, signal?: AbortSignal): Promise<void>;
}
