import { SluiceError } from '@sluice/protocol';

/** A failure worth another attempt of the same chunk (network error, 5xx, short body). */
export class Transient extends Error {}

export function abortedError(signal: AbortSignal, what = 'download'): SluiceError {
  return new SluiceError('ERR_ABORTED', `${what} aborted`, { cause: signal.reason });
}

/** An error's message with its cause's, for retry messages. */
export function describe(e: unknown): string {
  if (!(e instanceof Error)) return String(e);
  const cause = e.cause instanceof Error ? `: ${e.cause.message}` : '';
  return `${e.message}${cause}`;
}
