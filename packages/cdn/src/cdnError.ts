/** Failure codes of @sluice/cdn. */
export type CdnErrorCode =
  | 'ERR_ABORTED'
  | 'ERR_SOURCE_CHANGED'
  | 'ERR_RANGE_NOT_SUPPORTED'
  | 'ERR_BAD_RESPONSE'
  | 'ERR_HTTP'
  | 'ERR_NETWORK'
  | 'ERR_INVALID_ARG'
  | 'ERR_NOT_FOUND'
  | 'ERR_ACCESS_DENIED'
  | 'ERR_IO';

/** The transport's error. `status` is set when an HTTP response caused it. */
export class CdnError extends Error {
  override readonly name = 'CdnError';
  readonly code: CdnErrorCode;
  readonly status?: number;

  constructor(
    code: CdnErrorCode,
    message: string,
    options: { cause?: unknown; status?: number } = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    if (options.status !== undefined) this.status = options.status;
  }
}

/** True for a CdnError (optionally with the given code), by `name` as well as `instanceof`. */
export function isCdnError(e: unknown, code?: CdnErrorCode): e is CdnError {
  if (typeof e !== 'object' || e === null) return false;
  const c = e as { name?: unknown; code?: unknown };
  const shaped = e instanceof CdnError || (c.name === 'CdnError' && typeof c.code === 'string');
  return shaped && (code === undefined || c.code === code);
}
