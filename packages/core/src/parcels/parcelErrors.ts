import { isSluiceError, SluiceError } from '@sluice/protocol';

export function badResponse(message: string, cause?: unknown): SluiceError {
  return new SluiceError('ERR_BAD_RESPONSE', message, { cause });
}

/** A failed stream of parcel bytes: ERR_ABORTED when `signal` fired, else ERR_IO. */
export function wrapIo(e: unknown, signal: AbortSignal | undefined, what: string): SluiceError {
  if (signal?.aborted) return new SluiceError('ERR_ABORTED', 'operation aborted', { cause: e });
  if (isSluiceError(e)) return e;
  return new SluiceError('ERR_IO', `${what} failed`, { cause: e });
}
