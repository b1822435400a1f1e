import type { Downloader, DownloadOptions } from '@sluice/cdn';
import type { Limiter } from './limiter.js';

/**
 * The big part's transport holding slots of the batch's CDN budget for the whole download: at
 * least one, up to the ranges it would run at once (never more than the chunks it fetches).
 */
export function limitedTransport(inner: Downloader, limit: Limiter): Downloader {
  return {
    async download(options: DownloadOptions): Promise<void> {
      const chunks = Math.ceil(options.size / options.chunkSize) - (options.skip?.size ?? 0);
      const want = Math.max(1, Math.min(options.concurrency ?? 8, chunks));
      const granted = await limit.acquire(want, options.signal);
      try {
        await inner.download({ ...options, concurrency: granted });
      } finally {
        limit.release(granted);
      }
    },
  };
}
