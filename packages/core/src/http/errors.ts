import { isSluiceError, SluiceError, type SluiceErrorCode } from '@sluice/protocol';

export interface HttpErrorDetails {
  /** HTTP status of the answer; 0 when no answer arrived (NetworkError). */
  status: number;
  method: string;
  /** The request URL without any user:password part. */
  url: string;
  /** The server's `error` text, or the status text when the body was not a sluice error. */
  serverMessage?: string;
  /** The server's `code` (`ERR_DEVICE_NOT_BOUND`, `ERR_UNAUTHORIZED`, …), when it sent one. */
  serverCode?: string;
  /** Seconds from a `Retry-After` header, when the server sent one. */
  retryAfterSeconds?: number;
  cause?: unknown;
}

/** A failed API call: what was asked (method, URL), what came back (status, server message and code). */
export class HttpError extends SluiceError {
  declare readonly status: number;
  readonly method: string;
  readonly url: string;
  readonly serverMessage?: string;
  readonly serverCode?: string;

  constructor(code: SluiceErrorCode, details: HttpErrorDetails) {
    super(code, describe(details), {
      cause: details.cause,
      status: details.status,
      retryAfterSeconds: details.retryAfterSeconds,
    });
    this.method = details.method;
    this.url = details.url;
    if (details.serverMessage !== undefined) this.serverMessage = details.serverMessage;
    if (details.serverCode !== undefined) this.serverCode = details.serverCode;
  }
}

/**
 * The server's own code when it is one of `specific` (a refinement of the status that callers
 * branch on, such as ERR_VERSION_CONFLICT), else the status's generic `code`.
 */
function refined(
  code: SluiceErrorCode,
  details: HttpErrorDetails,
  specific: readonly SluiceErrorCode[],
): SluiceErrorCode {
  const server = details.serverCode as SluiceErrorCode | undefined;
  return server !== undefined && specific.includes(server) ? server : code;
}

/** 400, and other 4xx statuses without a class of their own (405, 415, …). */
export class BadRequest extends HttpError {
  constructor(details: HttpErrorDetails) {
    super(refined('ERR_BAD_REQUEST', details, ['ERR_BAD_SIGNATURE']), details);
  }
}

/** 401: missing, expired or refused credentials. */
export class Unauthorized extends HttpError {
  constructor(details: HttpErrorDetails) {
    super('ERR_UNAUTHORIZED', details);
  }
}

/**
 * 403. Its `code` is ERR_DEVICE_NOT_BOUND when the server refused this device, and
 * ERR_UNTRUSTED_PUBLISHER when it refused an upload's publisher key.
 */
export class Forbidden extends HttpError {
  constructor(details: HttpErrorDetails) {
    super(
      refined('ERR_FORBIDDEN', details, ['ERR_DEVICE_NOT_BOUND', 'ERR_UNTRUSTED_PUBLISHER']),
      details,
    );
  }
}

/** 404 and 410. */
export class NotFound extends HttpError {
  constructor(details: HttpErrorDetails) {
    super('ERR_NOT_FOUND', details);
  }
}

/** 409. Its `code` is ERR_VERSION_CONFLICT when a v2 upload named another version. */
export class Conflict extends HttpError {
  constructor(details: HttpErrorDetails) {
    super(refined('ERR_CONFLICT', details, ['ERR_VERSION_CONFLICT']), details);
  }
}

/** 413: the request body exceeds the server's limit. */
export class TooLarge extends HttpError {
  constructor(details: HttpErrorDetails) {
    super('ERR_TOO_LARGE', details);
  }
}

/** 429; `retryAfterSeconds` says when to try again, when the server said so. */
export class RateLimited extends HttpError {
  constructor(details: HttpErrorDetails) {
    super('ERR_RATE_LIMITED', details);
  }
}

/** 5xx. */
export class ServerError extends HttpError {
  constructor(details: HttpErrorDetails) {
    super('ERR_SERVER', details);
  }
}

/** No answer: connection refused or reset, DNS failure, body cut off. `status` is 0. */
export class NetworkError extends HttpError {
  /** The proxy the request was sent through, when the environment named one (no credentials). */
  readonly proxy: string | undefined;

  constructor(details: Omit<HttpErrorDetails, 'status'> & { proxy?: string | undefined }) {
    const { proxy, ...rest } = details;
    super('ERR_NETWORK', { ...rest, status: 0 });
    this.proxy = proxy;
  }
}

/** The typed error for a non-2xx answer. */
export function httpErrorFor(details: HttpErrorDetails): HttpError {
  const { status } = details;
  if (status === 401) return new Unauthorized(details);
  if (status === 403) return new Forbidden(details);
  if (status === 404 || status === 410) return new NotFound(details);
  if (status === 409) return new Conflict(details);
  if (status === 413) return new TooLarge(details);
  if (status === 429) return new RateLimited(details);
  if (status >= 500) return new ServerError(details);
  return new BadRequest(details);
}

/**
 * True for an HttpError (optionally with the given code), also one from another copy of this
 * package: a SluiceError that carries a numeric `status` and a `method`.
 */
export function isHttpError(e: unknown, code?: SluiceErrorCode): e is HttpError {
  if (!isSluiceError(e, code)) return false;
  const c = e as { status?: unknown; method?: unknown };
  return typeof c.status === 'number' && typeof c.method === 'string';
}

function describe(d: HttpErrorDetails): string {
  const what = `${d.method} ${d.url}`;
  if (d.status === 0) return `${what} failed: ${d.serverMessage ?? 'no answer from the server'}`;
  const because =
    d.serverMessage === undefined || d.serverMessage === '' ? '' : `: ${d.serverMessage}`;
  return `${what} answered ${d.status}${because}`;
}
