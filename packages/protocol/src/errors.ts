/**
 * The one error-code registry of sluice: every code any package reports, the HTTP status the API
 * answers it with (null: it never crosses the wire as an API answer), and its class — what kind of
 * failure it is, for callers that branch on the kind rather than the code.
 *
 * - `request`: the caller's input is wrong (fix the request, do not retry)
 * - `auth`: who is asking, or what they may do
 * - `state`: the request is fine but the stored state forbids it now
 * - `transport`: the network, a server or a CDN failed or answered nonsense (often retried)
 * - `integrity`: bytes do not match what was promised (tampering or corruption, never retried blindly)
 * - `local`: this process or machine (files, the addon, arguments of a library call)
 */
export type ErrorClass = 'request' | 'auth' | 'state' | 'transport' | 'integrity' | 'local';

export interface ErrorCodeInfo {
  readonly status: number | null;
  readonly class: ErrorClass;
}

export const ERROR_CODES = Object.freeze({
  // What the API answers with (docs/API.md, Errors).
  ERR_BAD_REQUEST: { status: 400, class: 'request' },
  ERR_UNAUTHORIZED: { status: 401, class: 'auth' },
  ERR_FORBIDDEN: { status: 403, class: 'auth' },
  ERR_DEVICE_NOT_BOUND: { status: 403, class: 'auth' },
  ERR_NOT_FOUND: { status: 404, class: 'state' },
  ERR_REQUEST_TIMEOUT: { status: 408, class: 'transport' },
  ERR_GONE: { status: 410, class: 'state' },
  ERR_CONFLICT: { status: 409, class: 'state' },
  ERR_TOO_LARGE: { status: 413, class: 'request' },
  ERR_UNSUPPORTED_MEDIA_TYPE: { status: 415, class: 'request' },
  ERR_RANGE_NOT_SATISFIABLE: { status: 416, class: 'request' },
  ERR_RATE_LIMITED: { status: 429, class: 'auth' },
  ERR_INTERNAL: { status: 500, class: 'transport' },
  // A v2 upload that names a version other than the next one (the body says which is latest).
  ERR_VERSION_CONFLICT: { status: 409, class: 'state' },
  // A publisher key that is not registered to the uploader, or not on a device's trust list.
  ERR_UNTRUSTED_PUBLISHER: { status: 403, class: 'auth' },
  // A folder the caller's organisation, account or device groups hold no grant on (issue 16):
  // the same answer whether or not the folder exists, so another organisation's stays unseen.
  ERR_NOT_ENTITLED: { status: 403, class: 'auth' },
  // A new device beyond its organisation's seat count (bound devices).
  ERR_SEAT_LIMIT: { status: 403, class: 'auth' },
  // An envelope whose big part would take the organisation past its monthly pull quota.
  ERR_QUOTA: { status: 403, class: 'auth' },
  // A manifest signature that does not verify (the API refuses such an upload with 400).
  ERR_BAD_SIGNATURE: { status: 400, class: 'integrity' },
  // A client's view of a failed exchange.
  ERR_SERVER: { status: null, class: 'transport' },
  ERR_NETWORK: { status: null, class: 'transport' },
  ERR_BAD_RESPONSE: { status: null, class: 'transport' },
  ERR_HTTP: { status: null, class: 'transport' },
  ERR_CDN: { status: null, class: 'transport' },
  ERR_ACCESS_DENIED: { status: null, class: 'auth' },
  ERR_RANGE_NOT_SUPPORTED: { status: null, class: 'transport' },
  ERR_SOURCE_CHANGED: { status: null, class: 'transport' },
  ERR_TOKEN_INVALID: { status: null, class: 'auth' },
  ERR_NOT_LOGGED_IN: { status: null, class: 'auth' },
  // Bytes that do not match what was promised.
  ERR_BAD_DECRYPT: { status: null, class: 'integrity' },
  ERR_CHUNK_DIGEST: { status: null, class: 'integrity' },
  ERR_BAD_BLOB: { status: null, class: 'integrity' },
  ERR_BAD_MANIFEST: { status: null, class: 'integrity' },
  ERR_BAD_ENVELOPE: { status: null, class: 'integrity' },
  // This process and machine.
  ERR_INVALID_ARG: { status: null, class: 'local' },
  ERR_IO: { status: null, class: 'local' },
  ERR_CRYPTO: { status: null, class: 'local' },
  ERR_NATIVE_UNAVAILABLE: { status: null, class: 'local' },
  ERR_ABORTED: { status: null, class: 'local' },
  // An openResource handle used after close(): its plaintext was wiped.
  ERR_RESOURCE_CLOSED: { status: null, class: 'local' },
  ERR_INSECURE_FILE: { status: null, class: 'local' },
  // Offline use (docs/SECURITY.md, "Offline use"): the device's own checks, never an API answer.
  ERR_LEASE_EXPIRED: { status: null, class: 'state' },
  ERR_CLOCK_ROLLBACK: { status: null, class: 'state' },
  ERR_NO_LEASE: { status: null, class: 'state' },
  ERR_LEASE_INVALID: { status: null, class: 'integrity' },
  ERR_LEASE_LOCKED: { status: null, class: 'auth' },
} as const satisfies Record<string, ErrorCodeInfo>);

export type SluiceErrorCode = keyof typeof ERROR_CODES;

/** Codes the API sends in `{ error, code }` bodies. */
export type ApiErrorCode = {
  [C in SluiceErrorCode]: (typeof ERROR_CODES)[C]['status'] extends number ? C : never;
}[SluiceErrorCode];

export function isErrorCode(value: unknown): value is SluiceErrorCode {
  return typeof value === 'string' && Object.hasOwn(ERROR_CODES, value);
}

/** The HTTP status the API answers `code` with; 500 for a code that is not an API answer. */
export function httpStatusOf(code: SluiceErrorCode): number {
  return ERROR_CODES[code].status ?? 500;
}

export interface SluiceErrorOptions {
  cause?: unknown;
  /** For ERR_IO: the failing syscall, positive errno and path, when known. */
  syscall?: string;
  errno?: number;
  path?: string;
  /** The HTTP status of the answer that caused it (a CDN's or the API's), when one did. */
  status?: number;
  /** Seconds until a rate-limited caller may try again (the API sends it as `Retry-After`). */
  retryAfterSeconds?: number;
  /** For ERR_INVALID_ARG: the setting or argument at fault (`cdn.bucket`). */
  field?: string;
}

/**
 * The one error class of sluice, used by every package. Messages never contain key material,
 * passwords or tokens: the API sends a SluiceError's message to its caller as `error`.
 */
export class SluiceError extends Error {
  override readonly name = 'SluiceError';
  readonly code: SluiceErrorCode;
  readonly syscall?: string;
  readonly errno?: number;
  readonly path?: string;
  readonly status?: number;
  readonly retryAfterSeconds?: number;
  readonly field?: string;

  constructor(code: SluiceErrorCode, message: string, options: SluiceErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    if (options.syscall !== undefined) this.syscall = options.syscall;
    if (options.errno !== undefined) this.errno = options.errno;
    if (options.path !== undefined) this.path = options.path;
    if (options.status !== undefined) this.status = options.status;
    if (options.retryAfterSeconds !== undefined) this.retryAfterSeconds = options.retryAfterSeconds;
    if (options.field !== undefined) this.field = options.field;
  }

  /** The HTTP status the API answers this error with. */
  get statusCode(): number {
    return httpStatusOf(this.code);
  }
}

/**
 * True for a SluiceError (optionally with the given code, or one of several). Accepts any object
 * whose `name` is 'SluiceError' and whose `code` is a string, so errors from another copy of this
 * package (or structured-cloned across threads) are recognised too.
 */
export function isSluiceError(
  e: unknown,
  code?: SluiceErrorCode | readonly SluiceErrorCode[],
): e is SluiceError {
  if (typeof e !== 'object' || e === null) return false;
  const candidate = e as { name?: unknown; code?: unknown };
  const shaped =
    e instanceof SluiceError ||
    (candidate.name === 'SluiceError' && typeof candidate.code === 'string');
  if (!shaped || code === undefined) return shaped;
  return typeof code === 'string'
    ? candidate.code === code
    : code.includes(candidate.code as SluiceErrorCode);
}
