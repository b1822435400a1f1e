/** Progress of a download: bytes handed to `onChunk` so far, out of `total`. */
export interface DownloadProgress {
  loaded: number;
  total: number;
  chunks: number;
}

export interface DownloadOptions {
  /** Where the object is (an HTTP(S) URL for the range driver, an object key for S3). */
  url: string;
  /** Total size of the object in bytes. */
  size: number;
  /** Bytes per chunk; the last chunk may be shorter. */
  chunkSize: number;
  /** Ranged requests in flight at once (default 8). Memory is bounded by concurrency × chunkSize. */
  concurrency?: number;
  /** Extra request headers (e.g. Authorization). */
  headers?: Record<string, string>;
  signal?: AbortSignal;
  /** Called once per chunk as it arrives, in any order; awaited before the worker fetches more. */
  onChunk: (index: number, data: Buffer) => Promise<void>;
  onProgress?: (progress: DownloadProgress) => void;
  /**
   * Chunks the caller already holds (e.g. from its own resume record): they are neither fetched
   * nor handed to `onChunk`, and count as loaded in progress events.
   */
  skip?: ReadonlySet<number>;
  /**
   * Read every chunk into one buffer per worker, reused for its next chunk: `data` is then valid
   * only until `onChunk` resolves (copy what must outlive it). Saves an allocation per chunk and
   * most of the garbage collection of a multi-GB download.
   */
  reuseBuffers?: boolean;
  /** Retries per chunk after the first attempt, on network errors, 5xx and short bodies (default 4). */
  retries?: number;
}

/** A transport that fetches a big object as parallel ranged chunks. */
export interface Downloader {
  download(options: DownloadOptions): Promise<void>;
}
