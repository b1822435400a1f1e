import { SluiceError } from '@sluice/protocol';

export function abortError(signal: AbortSignal): SluiceError {
  return new SluiceError('ERR_ABORTED', 'operation aborted', { cause: signal.reason });
}

export function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw abortError(signal);
}
