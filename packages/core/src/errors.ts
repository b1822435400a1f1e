/** Every failure code @sluice/core reports. Extend the union as new subsystems add codes. */
export type SluiceErrorCode =
  | 'ERR_BAD_DECRYPT'
  | 'ERR_CHUNK_DIGEST'
  | 'ERR_INVALID_ARG'
  | 'ERR_IO'
  | 'ERR_CRYPTO'
  | 'ERR_NATIVE_UNAVAILABLE'
  | 'ERR_ABORTED'
  | 'ERR_BAD_BLOB'
  | 'ERR_BAD_MANIFEST'
  | 'ERR_BAD_ENVELOPE'
  | 'ERR_DEVICE_NOT_BOUND'
  | 'ERR_BAD_REQUEST'
  | 'ERR_UNAUTHORIZED'
  | 'ERR_FORBIDDEN'
  | 'ERR_NOT_FOUND'
  | 'ERR_GONE'
  | 'ERR_CONFLICT'
  | 'ERR_TOO_LARGE'
  | 'ERR_RATE_LIMITED'
  | 'ERR_SERVER'
  | 'ERR_NETWORK'
  | 'ERR_BAD_RESPONSE'
  | 'ERR_SOURCE_CHANGED'
  | 'ERR_CDN'
  | 'ERR_TOKEN_INVALID'
  | 'ERR_NOT_LOGGED_IN'
  | 'ERR_INSECURE_FILE';

export interface SluiceErrorOptions {
  cause?: unknown;
  /** For ERR_IO: the failing syscall, positive errno and path, when known. */
  syscall?: string;
  errno?: number;
  path?: string;
}

/** The one error class of sluice. Messages never contain key material. */
export class SluiceError extends Error {
  override readonly name = 'SluiceError';
  readonly code: SluiceErrorCode;
  readonly syscall?: string;
  readonly errno?: number;
  readonly path?: string;

  constructor(code: SluiceErrorCode, message: string, options: SluiceErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    if (options.syscall !== undefined) this.syscall = options.syscall;
    if (options.errno !== undefined) this.errno = options.errno;
    if (options.path !== undefined) this.path = options.path;
  }
}

/**
 * True for a SluiceError (optionally with the given code). Accepts any object whose `name` is
 * 'SluiceError' and whose `code` is a string, so errors from another copy of this package
 * (or structured-cloned across threads) are recognised too.
 */
export function isSluiceError(e: unknown, code?: SluiceErrorCode): e is SluiceError {
  if (typeof e !== 'object' || e === null) return false;
  const candidate = e as { name?: unknown; code?: unknown };
  const shaped =
    e instanceof SluiceError ||
    (candidate.name === 'SluiceError' && typeof candidate.code === 'string');
  return shaped && (code === undefined || candidate.code === code);
}
