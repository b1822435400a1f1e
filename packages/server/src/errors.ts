import {
  type ApiErrorCode,
  ERROR_CODES,
  isSluiceError,
  SluiceError,
  type SluiceErrorCode,
} from '@sluice/protocol';

export type { ApiErrorCode };

/** The HTTP status each API code is sent with (from the one registry in @sluice/protocol). */
export const API_ERROR_STATUS: Readonly<Record<ApiErrorCode, number>> = Object.freeze(
  Object.fromEntries(
    Object.entries(ERROR_CODES)
      .filter(([, info]) => info.status !== null)
      .map(([code, info]) => [code, info.status]),
  ) as Record<ApiErrorCode, number>,
);

/**
 * True for a SluiceError whose code is an API answer (it has an HTTP status), optionally the
 * given one. Its message is sent to the client as `error`, so it must never contain passwords,
 * tokens, hashes or key material. Any other error becomes a 500 with a fixed message.
 */
export function isApiError(
  e: unknown,
  code?: ApiErrorCode,
): e is SluiceError & { code: ApiErrorCode } {
  return isSluiceError(e, code) && ERROR_CODES[e.code as SluiceErrorCode]?.status != null;
}

/** A bad server setting: ERR_INVALID_ARG naming the field (never its value, which may be a key). */
export function invalidSetting(field: string, rule: string): SluiceError {
  return new SluiceError('ERR_INVALID_ARG', `${field} ${rule}`, { field });
}

/**
 * An API error whose answer carries fields beside `error` and `code` (API.md names them per
 * route), e.g. the `latest` version of a 409 `ERR_VERSION_CONFLICT`.
 */
export class ApiErrorWithBody extends SluiceError {
  constructor(
    code: ApiErrorCode,
    message: string,
    readonly extra: Readonly<Record<string, number | string>>,
  ) {
    super(code, message);
  }
}

/** 409 `ERR_VERSION_CONFLICT`: a v2 upload named another version than `latest + 1`. */
export function versionConflict(named: number, latest: number): ApiErrorWithBody {
  return new ApiErrorWithBody(
    'ERR_VERSION_CONFLICT',
    `the manifest names version ${named} but the next version is ${latest + 1}; sign it again with that`,
    { latest },
  );
}
