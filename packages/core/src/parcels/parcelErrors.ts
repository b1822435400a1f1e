import { isSluiceError, SluiceError } from '@sluice/protocol';

const ID = /^[0-9a-f]{64}$/;

/** A parcel id or a content SHA-256: 64 lowercase hex digits. */
export function isParcelHex(value: unknown): value is string {
  return typeof value === 'string' && ID.test(value);
}

export function checkId(id: unknown): void {
  if (!isParcelHex(id)) {
    throw new SluiceError('ERR_INVALID_ARG', 'a parcel id is 64 lowercase hex digits');
  }
}

export function badResponse(message: string, cause?: unknown): SluiceError {
  return new SluiceError('ERR_BAD_RESPONSE', message, { cause });
}

/** A failed stream of parcel bytes: ERR_ABORTED when `signal` fired, else ERR_IO. */
export function wrapIo(e: unknown, signal: AbortSignal | undefined, what: string): SluiceError {
  if (signal?.aborted) return new SluiceError('ERR_ABORTED', 'operation aborted', { cause: e });
  if (isSluiceError(e)) return e;
  return new SluiceError('ERR_IO', `${what} failed`, { cause: e });
}
