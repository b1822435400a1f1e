import { SluiceError } from '@sluice/protocol';

/** Throws ERR_ABORTED (as the S3 calls of a stopped sweep do) once `signal` has fired. */
export function throwIfSweepAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) {
    throw new SluiceError('ERR_ABORTED', 'sweep aborted', { cause: signal.reason });
  }
}
