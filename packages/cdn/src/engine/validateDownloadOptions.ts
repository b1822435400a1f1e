import { SluiceError } from '@sluice/protocol';
import type { DownloadOptions } from './downloader.js';

/** Throws ERR_INVALID_ARG for a size, chunk size, concurrency or retry count out of range. */
export function validateDownloadOptions(options: DownloadOptions): void {
  const { size, chunkSize, concurrency = 8, retries = 4 } = options;
  if (!Number.isSafeInteger(size) || size < 0) {
    throw new SluiceError('ERR_INVALID_ARG', `size must be a non-negative integer, got ${size}`);
  }
  if (!Number.isSafeInteger(chunkSize) || chunkSize <= 0) {
    throw new SluiceError(
      'ERR_INVALID_ARG',
      `chunkSize must be a positive integer, got ${chunkSize}`,
    );
  }
  if (!Number.isSafeInteger(concurrency) || concurrency <= 0) {
    throw new SluiceError(
      'ERR_INVALID_ARG',
      `concurrency must be a positive integer, got ${concurrency}`,
    );
  }
  if (!Number.isSafeInteger(retries) || retries < 0) {
    throw new SluiceError(
      'ERR_INVALID_ARG',
      `retries must be a non-negative integer, got ${retries}`,
    );
  }
}
