import { CdnError } from './cdnError.js';
import { chunkedDownload, describe, Transient } from './chunkedDownload.js';
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
    const { url, size } = options;
    let etag: string | undefined;
    const recordEtag = (e: string) => {
      etag ??= e;
      return etag;
    };
    await chunkedDownload(options, {
      what: url,
      backoffMs: this.#backoffMs,
      maxBackoffMs: this.#maxBackoffMs,
      fetchRange: (start, end, signal) =>
        this.#fetchRange(url, start, end, size, options.headers, etag, signal, recordEtag),
    });
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
