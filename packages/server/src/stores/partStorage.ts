import type { Readable, Transform } from 'node:stream';

/** A part received into the local temp area and not yet committed; `discard` is idempotent. */
export interface PendingBlob {
  readonly path: string;
  /** Bytes written. */
  readonly size: number;
  discard(): Promise<void>;
}

/**
 * Where small and big parts live: files in the data directory (`BlobStore`, the embedded
 * default) or objects in an S3 bucket (`S3PartStore`). Routes only see this. Parts are named by
 * random ids, never by user input; an upload is received into a local temp file first (so it
 * can be checked against its manifest) and only then committed.
 */
export interface PartStorage {
  readonly kind: 'file' | 's3';
  /** Streams `source` (through `transforms`, e.g. a size limit) into a local temp file. */
  receive(source: Readable, ...transforms: Transform[]): Promise<PendingBlob>;
  /** Stores a received part under a new id and removes its temp file. */
  commit(pending: PendingBlob): Promise<string>;
  /** The whole part (small parts), refused when it is larger than `maxBytes`. */
  readAll(id: string, maxBytes: number): Promise<Buffer>;
  /** The part, or bytes `range.start`..`range.end` (inclusive) of it. */
  openRead(id: string, range?: { start: number; end: number }): Promise<Readable>;
  /** Deletes a part; a missing one is not an error. */
  remove(id: string): Promise<void>;
  /**
   * Removes stored parts that `referenced` does not name (left by a crash), where the store can
   * list them; only call it while no upload is in flight. Returns the removed ids.
   */
  removeUnreferenced(referenced: ReadonlySet<string>): Promise<string[]>;
  /** Releases connections; the store must not be used afterwards. */
  close(): Promise<void>;
}
