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
