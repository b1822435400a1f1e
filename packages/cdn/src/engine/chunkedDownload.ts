import { isSluiceError, SluiceError } from '@sluice/protocol';
import { ChunkSchedule } from './chunkSchedule.js';
import type { DownloadOptions } from './downloader.js';
import { abortedError } from './errors.js';
import { fetchWithRetries, type RetryPolicy } from './fetchWithRetries.js';
import { validateDownloadOptions } from './validateDownloadOptions.js';

export interface ChunkedDownloadPlan {
  /** Names the object in error messages (a URL, or an S3 key and bucket). Never holds secrets. */
  what: string;
  /** First retry delay in ms; doubles per attempt up to `maxBackoffMs`, with jitter. */
  backoffMs: number;
  maxBackoffMs: number;
  /** Fetches bytes `start`..`end` (inclusive); throws `Transient` for failures worth a retry. */
  fetchRange: (start: number, end: number, signal: AbortSignal, into?: Buffer) => Promise<Buffer>;
  /** Chunk indexes already delivered by an earlier run; they are neither fetched nor passed on. */
  skip?: ReadonlySet<number>;
  /** Called after `onChunk` resolved for a chunk (also for a chunk that finished after an abort). */
  onDelivered?: (index: number) => void;
}

/**
 * The chunk scheduling every driver shares: one generator of chunk indexes consumed by
 * `concurrency` workers, so at most `concurrency` chunks are in memory at once; each chunk is
 * retried with exponential backoff and jitter on `Transient` failures, and the first other failure
 * (or the caller's abort) stops every worker and cancels their requests.
 */
export async function chunkedDownload(
  options: DownloadOptions,
  plan: ChunkedDownloadPlan,
): Promise<void> {
  validateDownloadOptions(options);
  const { signal } = options;
  if (signal?.aborted) throw abortedError(signal);
  const skip = new Set<number>([...(plan.skip ?? []), ...(options.skip ?? [])]);
  const schedule = new ChunkSchedule(options.size, options.chunkSize, skip);
  // Internal controller: stops every worker's request on the first failure or on the caller's abort.
  const stop = new AbortController();
  const onAbort = () => stop.abort();
  signal?.addEventListener('abort', onAbort, { once: true });

  let failure: unknown;
  const count = Math.min(options.concurrency ?? 8, schedule.remaining);
  const workers = Array.from({ length: count }, () =>
    runWorker(options, plan, schedule, stop.signal).catch((e: unknown) => {
      failure ??= e;
      stop.abort();
    }),
  );
  try {
    await Promise.all(workers);
  } finally {
    signal?.removeEventListener('abort', onAbort);
  }
  if (signal?.aborted) throw abortedError(signal);
  if (failure !== undefined) throw downloadFailure(failure, plan.what);
}

/** One worker: fetches the next chunk, hands it on, and repeats until none is left or `stop`. */
async function runWorker(
  options: DownloadOptions,
  plan: ChunkedDownloadPlan,
  schedule: ChunkSchedule,
  stop: AbortSignal,
): Promise<void> {
  const { size, chunkSize, onChunk, onProgress } = options;
  const policy: RetryPolicy = {
    what: plan.what,
    retries: options.retries ?? 4,
    backoffMs: plan.backoffMs,
    maxBackoffMs: plan.maxBackoffMs,
  };
  // With reuseBuffers, this worker's one buffer: onChunk has resolved before it is filled again.
  const own = options.reuseBuffers ? Buffer.allocUnsafe(Math.min(chunkSize, size)) : undefined;
  for (let index = schedule.next(); index !== undefined; index = schedule.next()) {
    if (stop.aborted) return;
    const { start, end } = schedule.range(index);
    const into = own?.subarray(0, end - start + 1);
    const data = await fetchWithRetries(index, policy, stop, () =>
      plan.fetchRange(start, end, stop, into),
    );
    if (stop.aborted) return;
    await onChunk(index, data);
    plan.onDelivered?.(index);
    const progress = schedule.delivered(data.length);
    onProgress?.(progress);
  }
}

/** The first failure as the caller sees it: an AbortError from a request becomes ERR_NETWORK. */
function downloadFailure(failure: unknown, what: string): unknown {
  if (isSluiceError(failure) || !(failure instanceof Error) || failure.name !== 'AbortError') {
    return failure;
  }
  return new SluiceError('ERR_NETWORK', `download of ${what} failed: ${failure.message}`, {
    cause: failure,
  });
}
