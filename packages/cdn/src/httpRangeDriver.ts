import { CdnError, isCdnError } from './cdnError.js';
import type { Downloader, DownloadOptions } from './downloader.js';

export interface HttpRangeDriverOptions {
  /** First retry delay in ms; doubles per attempt (default 100). */
  backoffMs?: number;
  /** Upper bound of one retry delay in ms (default 2000). */
  maxBackoffMs?: number;
  /**
   * The fetch to use (default the global one). A rejection with a `TypeError` counts as a network
   * error and is retried; any other rejection ends the download with that error.
   */
  fetch?: typeof globalThis.fetch;
}

/** A failure worth another attempt of the same chunk (network error, 5xx, short body). */
class Transient extends Error {}

/**
 * Downloads an object that an HTTP(S) server serves with `Range` support, as parallel ranged GETs:
 * one shared generator of chunk indexes consumed by `concurrency` workers, so at most
 * `concurrency` chunks are in memory at once. A server that ignores `Range`, answers with the wrong
 * `Content-Range`, or changes the object's ETag mid-download makes the download fail.
 */
export class HttpRangeDriver implements Downloader {
  readonly #backoffMs: number;
  readonly #maxBackoffMs: number;
  readonly #fetch: typeof globalThis.fetch;

  constructor(options: HttpRangeDriverOptions = {}) {
    this.#backoffMs = options.backoffMs ?? 100;
    this.#maxBackoffMs = options.maxBackoffMs ?? 2000;
    this.#fetch = options.fetch ?? globalThis.fetch;
  }

  async download(options: DownloadOptions): Promise<void> {
    const { url, size, chunkSize, onChunk, onProgress, signal } = options;
    const concurrency = options.concurrency ?? 8;
    const retries = options.retries ?? 4;
    if (!Number.isSafeInteger(size) || size < 0) {
      throw new CdnError('ERR_INVALID_ARG', `size must be a non-negative integer, got ${size}`);
    }
    if (!Number.isSafeInteger(chunkSize) || chunkSize <= 0) {
      throw new CdnError(
        'ERR_INVALID_ARG',
        `chunkSize must be a positive integer, got ${chunkSize}`,
      );
    }
    if (!Number.isSafeInteger(concurrency) || concurrency <= 0) {
      throw new CdnError(
        'ERR_INVALID_ARG',
        `concurrency must be a positive integer, got ${concurrency}`,
      );
    }
    if (!Number.isSafeInteger(retries) || retries < 0) {
      throw new CdnError(
        'ERR_INVALID_ARG',
        `retries must be a non-negative integer, got ${retries}`,
      );
    }
    if (signal?.aborted) throw abortedError(signal);

    const chunks = Math.ceil(size / chunkSize);
    // Internal controller: stops every worker's request on the first failure or on the caller's abort.
    const stop = new AbortController();
    const onAbort = () => stop.abort();
    signal?.addEventListener('abort', onAbort, { once: true });

    let failure: unknown;
    let etag: string | undefined;
    let loaded = 0;
    let done = 0;
    function* indexes(): Generator<number> {
      for (let i = 0; i < chunks; i++) yield i;
    }
    const queue = indexes();

    const fetchChunk = async (index: number): Promise<Buffer> => {
      const start = index * chunkSize;
      const end = Math.min(size, start + chunkSize) - 1;
      for (let attempt = 0; ; attempt++) {
        try {
          return await this.#fetchRange(
            url,
            start,
            end,
            size,
            options.headers,
            etag,
            stop.signal,
            (e) => {
              etag ??= e;
              return etag;
            },
          );
        } catch (e) {
          if (stop.signal.aborted) throw e;
          if (!(e instanceof Transient) || attempt >= retries) {
            if (e instanceof Transient) {
              throw new CdnError(
                'ERR_NETWORK',
                `chunk ${index} of ${url} failed after ${attempt + 1} attempts: ${e.message}`,
                { cause: e.cause ?? e },
              );
            }
            throw e;
          }
          const delay = Math.min(this.#maxBackoffMs, this.#backoffMs * 2 ** attempt);
          await sleep(delay * (0.5 + Math.random() / 2), stop.signal);
        }
      }
    };

    const worker = async (): Promise<void> => {
      for (const index of queue) {
        if (stop.signal.aborted) return;
        const data = await fetchChunk(index);
        if (stop.signal.aborted) return;
        await onChunk(index, data);
        loaded += data.length;
        done++;
        onProgress?.({ loaded, total: size, chunks: done });
      }
    };

    const workers = Array.from({ length: Math.min(concurrency, chunks) }, () =>
      worker().catch((e: unknown) => {
        failure ??= e;
        stop.abort();
      }),
    );
    try {
      await Promise.all(workers);
    } finally {
      signal?.removeEventListener('abort', onAbort);
    }
    if (signal?.aborted) throw abortedError(signal);
    if (failure !== undefined) {
      if (isCdnError(failure) || !(failure instanceof Error) || failure.name !== 'AbortError') {
        throw failure;
      }
      throw new CdnError('ERR_NETWORK', `download of ${url} failed: ${failure.message}`, {
        cause: failure,
      });
    }
  }

  async #fetchRange(
    url: string,
    start: number,
    end: number,
    size: number,
    extraHeaders: Record<string, string> | undefined,
    knownEtag: string | undefined,
    signal: AbortSignal,
    recordEtag: (etag: string) => string,
  ): Promise<Buffer> {
    const headers: Record<string, string> = { ...extraHeaders, range: `bytes=${start}-${end}` };
    if (knownEtag !== undefined) headers['if-match'] = knownEtag;
    let res: Response;
    try {
      res = await this.#fetch(url, { headers, signal });
    } catch (e) {
      if (signal.aborted || !(e instanceof TypeError)) throw e;
      throw new Transient(describe(e), { cause: e });
    }
    try {
      if (res.status === 412) {
        throw new CdnError(
          'ERR_SOURCE_CHANGED',
          `${url} changed during the download (If-Match failed)`,
          {
            status: 412,
          },
        );
      }
      if (res.status >= 500) throw new Transient(`HTTP ${res.status} for bytes ${start}-${end}`);
      if (res.status === 200) {
        throw new CdnError(
          'ERR_RANGE_NOT_SUPPORTED',
          `${url} ignored the Range header (200 instead of 206)`,
          { status: 200 },
        );
      }
      if (res.status !== 206) {
        throw new CdnError('ERR_HTTP', `HTTP ${res.status} for ${url} bytes ${start}-${end}`, {
          status: res.status,
        });
      }
      const contentRange = res.headers.get('content-range');
      const expected = `bytes ${start}-${end}/`;
      const total = contentRange?.startsWith(expected) ? contentRange.slice(expected.length) : null;
      if (total === null || (total !== '*' && total !== String(size))) {
        throw new CdnError(
          'ERR_BAD_RESPONSE',
          `${url} answered bytes ${start}-${end}/${size} with Content-Range ${contentRange ?? '(none)'}`,
          { status: 206 },
        );
      }
      const etag = res.headers.get('etag');
      if (etag !== null && recordEtag(etag) !== etag) {
        throw new CdnError(
          'ERR_SOURCE_CHANGED',
          `${url} changed during the download (ETag ${etag})`,
          {
            status: 206,
          },
        );
      }
      let body: ArrayBuffer;
      try {
        body = await res.arrayBuffer();
      } catch (e) {
        if (signal.aborted) throw e;
        throw new Transient(`body of bytes ${start}-${end} broke off: ${describe(e)}`, {
          cause: e,
        });
      }
      if (body.byteLength !== end - start + 1) {
        throw new Transient(`short body for bytes ${start}-${end}: ${body.byteLength} bytes`);
      }
      return Buffer.from(body);
    } finally {
      if (!res.bodyUsed) await res.body?.cancel().catch(() => {});
    }
  }
}

function abortedError(signal: AbortSignal): CdnError {
  return new CdnError('ERR_ABORTED', 'download aborted', { cause: signal.reason });
}

function describe(e: unknown): string {
  if (!(e instanceof Error)) return String(e);
  const cause = e.cause instanceof Error ? `: ${e.cause.message}` : '';
  return `${e.message}${cause}`;
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) {
      reject(signal.reason);
      return;
    }
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal.reason);
    };
    signal.addEventListener('abort', onAbort, { once: true });
  });
}
