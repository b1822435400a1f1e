import { SluiceError } from '@sluice/protocol';
import { abortError, throwIfAborted } from '../platform/abort.js';
import { type HttpError, isHttpError } from './errors.js';
import { type ExchangeOutcome, exchange } from './exchange.js';
import type { RequestOptions } from './requestOptions.js';
import { RetryPolicy, type RetryPolicyOptions } from './retryPolicy.js';

/** What the client needs from the token lifecycle to send authenticated requests. */
export interface Authorizer {
  /** A usable access token, renewed first when needed. */
  accessToken(signal: AbortSignal | undefined): Promise<string>;
  /** The server refused `token`: the next `accessToken` renews it, once for every caller. */
  expire(token: string): void;
}

export interface HttpClientOptions extends RetryPolicyOptions {
  /** Base URL of the API; its user, password, query and fragment are dropped. */
  apiUrl: string | URL;
  fetch?: typeof globalThis.fetch;
  /** Secrets (password, tokens) to keep out of error messages, read at each failure. */
  secrets?: () => ReadonlyArray<string | undefined>;
}

const IDEMPOTENT_METHODS = new Set(['GET', 'HEAD', 'PUT', 'DELETE', 'OPTIONS']);

/**
 * Requests to one API: paths under its base URL only, typed errors, idempotent requests retried
 * on network errors and 5xx with backoff, and with an `Authorizer` the access token sent and
 * renewed once when the server refuses it.
 */
export class HttpClient {
  readonly apiUrl: string;
  private readonly base: URL;
  private readonly fetchFn: typeof globalThis.fetch;
  private readonly retry: RetryPolicy;
  private readonly secrets: () => ReadonlyArray<string | undefined>;

  constructor(options: HttpClientOptions) {
    this.base = new URL(String(options.apiUrl));
    if (this.base.protocol !== 'http:' && this.base.protocol !== 'https:') {
      throw new TypeError(`apiUrl must be http(s), got ${this.base.protocol}`);
    }
    this.base.username = '';
    this.base.password = '';
    this.base.search = '';
    this.base.hash = '';
    this.apiUrl = this.base.href;
    this.fetchFn = options.fetch ?? globalThis.fetch;
    this.retry = new RetryPolicy(options);
    this.secrets = options.secrets ?? (() => []);
  }

  /**
   * One API call, retried as allowed. Resolves with the parsed JSON (text for other content,
   * undefined for an empty body), or the Response with `raw: true`; rejects with a typed
   * HttpError, NetworkError, ERR_TOKEN_INVALID or ERR_ABORTED. `options.auth` is the caller's
   * to read: the token is sent when an `authorizer` is given.
   */
  async request(
    method: string,
    path: string,
    options: RequestOptions,
    authorizer?: Authorizer,
  ): Promise<unknown> {
    const { signal } = options;
    throwIfAborted(signal);
    const verb = method.toUpperCase();
    const url = this.urlFor(path);
    const replayable = !(options.body instanceof ReadableStream);
    const idempotent = (options.idempotent ?? IDEMPOTENT_METHODS.has(verb)) && replayable;
    let reauthenticated = false;
    for (let attempt = 0; ; ) {
      const token = await authorizer?.accessToken(signal);
      let outcome: ExchangeOutcome;
      try {
        outcome = await exchange(this.fetchFn, { method: verb, url, options, token }, this.redact);
      } catch (e) {
        if (signal?.aborted) throw abortError(signal);
        if (!isHttpError(e, 'ERR_NETWORK') || !idempotent || !this.retry.allows(attempt)) throw e;
        await this.retry.wait(attempt, undefined, signal);
        attempt += 1;
        continue;
      }
      if ('value' in outcome) return outcome.value;
      const error = outcome.error;
      if (
        authorizer !== undefined &&
        refusesToken(error) &&
        !reauthenticated &&
        token !== undefined
      ) {
        // Even a stream body that cannot be resent leaves a renewed token for the next call.
        authorizer.expire(token);
        if (replayable) {
          reauthenticated = true;
          continue;
        }
      }
      if (error.status >= 500 && idempotent && this.retry.allows(attempt)) {
        await this.retry.wait(attempt, error.retryAfterSeconds, signal);
        attempt += 1;
        continue;
      }
      throw error;
    }
  }

  /** Resolves `path` under the API URL; absolute URLs are refused so tokens go nowhere else. */
  private urlFor(path: string): URL {
    if (typeof path !== 'string' || !path.startsWith('/') || path.startsWith('//')) {
      throw new SluiceError('ERR_INVALID_ARG', `request path must start with one "/": ${path}`);
    }
    const url = new URL(this.base.href);
    const [pathname = '', query] = splitOnce(path, '?');
    url.pathname = `${url.pathname.replace(/\/+$/, '')}${pathname}`;
    if (query !== undefined) url.search = `?${query}`;
    return url;
  }

  /** Removes the password and tokens from text the server or the network stack produced. */
  private readonly redact = (text: string): string => {
    let out = text;
    for (const secret of this.secrets()) {
      if (secret !== undefined && secret.length > 0) out = out.split(secret).join('[redacted]');
    }
    return out;
  };
}

/** 403 codes about something other than the token (the device, an upload's publisher key). */
const NOT_ABOUT_THE_TOKEN: ReadonlySet<string | undefined> = new Set([
  'ERR_DEVICE_NOT_BOUND',
  'ERR_UNTRUSTED_PUBLISHER',
]);

/** A 401, or a 403 that is not about the device or the publisher: a renewed token may be accepted. */
function refusesToken(error: HttpError): boolean {
  return (
    error.status === 401 || (error.status === 403 && !NOT_ABOUT_THE_TOKEN.has(error.serverCode))
  );
}

function splitOnce(s: string, sep: string): [string, string | undefined] {
  const i = s.indexOf(sep);
  return i < 0 ? [s, undefined] : [s.slice(0, i), s.slice(i + 1)];
}
