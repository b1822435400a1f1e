/** Every error code the resource API answers with, in `{ error, code }` bodies. */
export type ApiErrorCode =
  | 'ERR_BAD_REQUEST'
  | 'ERR_UNAUTHORIZED'
  | 'ERR_FORBIDDEN'
  | 'ERR_DEVICE_NOT_BOUND'
  | 'ERR_NOT_FOUND'
  | 'ERR_CONFLICT'
  | 'ERR_TOO_LARGE'
  | 'ERR_UNSUPPORTED_MEDIA_TYPE'
  | 'ERR_RANGE_NOT_SATISFIABLE'
  | 'ERR_RATE_LIMITED'
  | 'ERR_INTERNAL';

/** The HTTP status each code is sent with; clients map statuses back to typed errors. */
export const API_ERROR_STATUS: Readonly<Record<ApiErrorCode, number>> = {
  ERR_BAD_REQUEST: 400,
  ERR_UNAUTHORIZED: 401,
  ERR_FORBIDDEN: 403,
  ERR_DEVICE_NOT_BOUND: 403,
  ERR_NOT_FOUND: 404,
  ERR_CONFLICT: 409,
  ERR_TOO_LARGE: 413,
  ERR_UNSUPPORTED_MEDIA_TYPE: 415,
  ERR_RANGE_NOT_SATISFIABLE: 416,
  ERR_RATE_LIMITED: 429,
  ERR_INTERNAL: 500,
};

export interface ApiErrorOptions {
  cause?: unknown;
  /** Seconds until a rate-limited client may try again (sent as `Retry-After`). */
  retryAfterSeconds?: number;
}

/**
 * A failure the API reports to its caller. The message is sent to the client as `error`, so it
 * must never contain passwords, tokens, hashes or key material.
 */
export class ApiError extends Error {
  override readonly name = 'ApiError';
  readonly code: ApiErrorCode;
  readonly statusCode: number;
  readonly retryAfterSeconds?: number;

  constructor(code: ApiErrorCode, message: string, options: ApiErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.statusCode = API_ERROR_STATUS[code];
    if (options.retryAfterSeconds !== undefined) this.retryAfterSeconds = options.retryAfterSeconds;
  }
}

/** True for an ApiError, also one from another copy of this package (matched by `name`). */
export function isApiError(e: unknown, code?: ApiErrorCode): e is ApiError {
  if (typeof e !== 'object' || e === null) return false;
  const c = e as { name?: unknown; code?: unknown };
  const shaped = e instanceof ApiError || (c.name === 'ApiError' && typeof c.code === 'string');
  return shaped && (code === undefined || c.code === code);
}
