import { Agent as HttpAgent, request as httpRequest, type IncomingMessage } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import { SluiceError } from '@sluice/protocol';
import { chunkedDownload } from '../engine/chunkedDownload.js';
import { parseContentRange } from '../engine/contentRange.js';
import type { Downloader, DownloadOptions } from '../engine/downloader.js';
import { describe, Transient } from '../engine/errors.js';
import { EtagPin } from '../engine/etagPin.js';
import { readExactly } from '../engine/readExactly.js';
import { proxyAgentFor } from './proxyAgent.js';
import { socketGet, Unsupported } from './rangeSocket.js';

export interface HttpRangeDriverOptions {
  /** First retry delay in ms; doubles per attempt (default 100). */
  backoffMs?: number;
  /** Upper bound of one retry delay in ms (default 2000). */
  maxBackoffMs?: number;
  /** Headers for each attempt (e.g. a fresh `authorization`), merged over `DownloadOptions.headers`. */
  authorize?: (signal: AbortSignal) => Promise<Record<string, string>>;
  /**
   * Called when a range is answered 401 with the headers it was sent with; resolve true to try
   * that range once more (after renewing the credentials), false to fail.
   */
  onUnauthorized?: (sent: Record<string, string>) => Promise<boolean>;
  /**
   * A ranged GET that receives nothing (no status line, no body bytes) for this long is cut off
   * and retried like a broken connection, so a stalled server or proxy cannot hang a download
   * (default 30 000 ms).
   */
  idleTimeoutMs?: number;
  /**
   * Read range bodies straight into their buffers over kept-alive sockets (`rangeSocket.ts`)
   * where no proxy is in the way (default true; `SLUICE_HTTP_RECEIVE=node` in the environment
   * makes it false). False, or a response that path cannot read, goes over node:http.
   */
  socketReceive?: boolean;
}

/** The parts of a ranged response the driver checks. */
interface RangeResponse {
  status: number;
  header(name: string): string | null;
  /** The body as exactly `length` bytes; throws Transient when it breaks off, is short or long. */
  body(length: number): Promise<Buffer>;
  discard(): void;
}

const agents = {
  http: new HttpAgent({ keepAlive: true }),
  https: new HttpsAgent({ keepAlive: true }),
};

/**
 * Downloads an object that an HTTP(S) server serves with `Range` support, as parallel ranged GETs:
 * one shared generator of chunk indexes consumed by `concurrency` workers, so at most
 * `concurrency` chunks are in memory at once. A server that ignores `Range`, answers with the wrong
 * `Content-Range`, or changes the object's ETag mid-download makes the download fail. Ranges go
 * over node:http(s) with keep-alive, each body read straight into one buffer of the chunk's size
 * (through undici's fetch, receiving cost about twice the client CPU in `bench:pull --profile`).
 */
export class HttpRangeDriver implements Downloader {
  readonly #backoffMs: number;
  readonly #maxBackoffMs: number;
  readonly #authorize: HttpRangeDriverOptions['authorize'];
  readonly #onUnauthorized: HttpRangeDriverOptions['onUnauthorized'];
  readonly #idleTimeoutMs: number;
  readonly #socketReceive: boolean;
  /** Origins whose range bodies the socket path could not read. */
  readonly #nodeHttpOrigins = new Set<string>();

  constructor(options: HttpRangeDriverOptions = {}) {
    this.#backoffMs = options.backoffMs ?? 100;
    this.#maxBackoffMs = options.maxBackoffMs ?? 2000;
    this.#authorize = options.authorize;
    this.#onUnauthorized = options.onUnauthorized;
    this.#idleTimeoutMs = options.idleTimeoutMs ?? 30_000;
    this.#socketReceive = options.socketReceive ?? process.env.SLUICE_HTTP_RECEIVE !== 'node';
    if (!Number.isSafeInteger(this.#idleTimeoutMs) || this.#idleTimeoutMs <= 0) {
      throw new SluiceError('ERR_INVALID_ARG', 'idleTimeoutMs must be a positive integer');
    }
  }

  async download(options: DownloadOptions): Promise<void> {
    const { url, size } = options;
    const etag = new EtagPin();
    await chunkedDownload(options, {
      what: url,
      backoffMs: this.#backoffMs,
      maxBackoffMs: this.#maxBackoffMs,
      fetchRange: (start, end, signal, into) =>
        this.#fetchRange(url, start, end, size, options.headers, etag, signal, into),
    });
  }

  async #send(
    url: string,
    headers: Record<string, string>,
    signal: AbortSignal,
    into?: Buffer,
  ): Promise<RangeResponse> {
    const target = new URL(url);
    const proxy = proxyAgentFor(target);
    if (this.#socketReceive && proxy === undefined && !this.#nodeHttpOrigins.has(target.origin)) {
      const res = await socketGet({
        url: target,
        headers,
        signal,
        idleTimeoutMs: this.#idleTimeoutMs,
      });
      return {
        status: res.status,
        header: (name) => res.headers.get(name.toLowerCase()) ?? null,
        body: async (length) => {
          try {
            return await res.body(length, into, bodyTooLong);
          } catch (e) {
            if (!(e instanceof Unsupported)) throw e;
            // A server that sends ranges chunked: its ranges go over node:http from now on.
            this.#nodeHttpOrigins.add(target.origin);
            throw new Transient(e.message, { cause: e });
          }
        },
        discard: () => res.release(),
      };
    }
    const send = target.protocol === 'https:' ? httpsRequest : httpRequest;
    const agent = proxy ?? (target.protocol === 'https:' ? agents.https : agents.http);
    const res = await new Promise<IncomingMessage>((resolve, reject) => {
      const req = send(target, { headers, signal, agent });
      const idle = this.#idleTimeoutMs;
      req.setTimeout(idle, () => req.destroy(new Error(`nothing received for ${idle} ms`)));
      req.on('response', resolve);
      req.on('error', (e) => {
        if (signal.aborted) reject(e);
        else reject(new Transient(describe(e), { cause: e }));
      });
      req.end();
    });
    return {
      status: res.statusCode ?? 0,
      header: (name) => {
        const v = res.headers[name.toLowerCase()];
        return typeof v === 'string' ? v : Array.isArray(v) ? v.join(', ') : null;
      },
      body: (length) => readExactly(res, length, signal, into, bodyTooLong),
      discard: () => {
        if (!res.complete) res.destroy();
      },
    };
  }

  async #fetchRange(
    url: string,
    start: number,
    end: number,
    size: number,
    extraHeaders: Record<string, string> | undefined,
    etag: EtagPin,
    signal: AbortSignal,
    into?: Buffer,
  ): Promise<Buffer> {
    for (let authRetry = 0; ; authRetry++) {
      const headers: Record<string, string> = {
        ...extraHeaders,
        ...(this.#authorize ? await this.#authorize(signal) : {}),
        range: `bytes=${start}-${end}`,
      };
      if (etag.current !== undefined) headers['if-match'] = etag.current;
      const res = await this.#send(url, headers, signal, into);
      if (res.status === 401 && authRetry === 0 && this.#onUnauthorized !== undefined) {
        res.discard();
        if (await this.#onUnauthorized(headers)) continue;
      }
      try {
        return await this.#check(res, url, start, end, size, etag);
      } finally {
        res.discard();
      }
    }
  }

  async #check(
    res: RangeResponse,
    url: string,
    start: number,
    end: number,
    size: number,
    pin: EtagPin,
  ): Promise<Buffer> {
    if (res.status === 412) {
      throw new SluiceError(
        'ERR_SOURCE_CHANGED',
        `${url} changed during the download (If-Match failed)`,
        {
          status: 412,
        },
      );
    }
    if (res.status >= 500) throw new Transient(`HTTP ${res.status} for bytes ${start}-${end}`);
    if (res.status === 200) {
      throw new SluiceError(
        'ERR_RANGE_NOT_SUPPORTED',
        `${url} ignored the Range header (200 instead of 206)`,
        { status: 200 },
      );
    }
    if (res.status !== 206) {
      throw new SluiceError('ERR_HTTP', `HTTP ${res.status} for ${url} bytes ${start}-${end}`, {
        status: res.status,
      });
    }
    const contentRange = res.header('content-range');
    const range = parseContentRange(contentRange);
    const matches = range?.first === start && range.last === end;
    if (!matches || (range.total !== '*' && range.total !== size)) {
      throw new SluiceError(
        'ERR_BAD_RESPONSE',
        `${url} answered bytes ${start}-${end}/${size} with Content-Range ${contentRange ?? '(none)'}`,
        { status: 206 },
      );
    }
    const etag = res.header('etag');
    if (etag !== null && !pin.accepts(etag)) {
      throw new SluiceError(
        'ERR_SOURCE_CHANGED',
        `${url} changed during the download (ETag ${etag})`,
        {
          status: 206,
        },
      );
    }
    try {
      return await res.body(end - start + 1);
    } catch (e) {
      if (e instanceof Transient) {
        throw new Transient(`bytes ${start}-${end}: ${e.message}`, { cause: e.cause ?? e });
      }
      throw e;
    }
  }
}

/** More body than the range asked for: retried like a broken connection. */
function bodyTooLong(length: number): Transient {
  return new Transient(`body longer than ${length} bytes`);
}
