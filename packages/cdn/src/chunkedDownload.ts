import { isSluiceError, SluiceError } from '@sluice/protocol';
import type { DownloadOptions } from './downloader.js';

/** A failure worth another attempt of the same chunk (network error, 5xx, short body). */
export class Transient extends Error {}

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
  const { size, chunkSize, onChunk, onProgress, signal } = options;
  const concurrency = options.concurrency ?? 8;
  validateDownloadOptions(options);
  if (signal?.aborted) throw abortedError(signal);

  const chunks = Math.ceil(size / chunkSize);
  const skip = new Set<number>([...(plan.skip ?? []), ...(options.skip ?? [])]);
  // Internal controller: stops every worker's request on the first failure or on the caller's abort.
  const stop = new AbortController();
  const onAbort = () => stop.abort();
  signal?.addEventListener('abort', onAbort, { once: true });

  let failure: unknown;
  let loaded = 0;
  let done = 0;
  for (const index of skip) {
    if (index < chunks) {
      loaded += Math.min(size, (index + 1) * chunkSize) - index * chunkSize;
      done++;
    }
  }
  function* indexes(): Generator<number> {
    for (let i = 0; i < chunks; i++) if (!skip.has(i)) yield i;
  }
  const queue = indexes();

  const fetchChunk = async (index: number, into?: Buffer): Promise<Buffer> => {
    const start = index * chunkSize;
    const end = Math.min(size, start + chunkSize) - 1;
    for (let attempt = 0; ; attempt++) {
      try {
        return await plan.fetchRange(start, end, stop.signal, into?.subarray(0, end - start + 1));
      } catch (e) {
        if (stop.signal.aborted) throw e;
        if (!(e instanceof Transient)) throw e;
        if (attempt >= (options.retries ?? 4)) {
          throw new SluiceError(
            'ERR_NETWORK',
            `chunk ${index} of ${plan.what} failed after ${attempt + 1} attempts: ${e.message}`,
            { cause: e.cause ?? e },
          );
        }
        const delay = Math.min(plan.maxBackoffMs, plan.backoffMs * 2 ** attempt);
        await sleep(delay * (0.5 + Math.random() / 2), stop.signal);
      }
    }
  };

  const worker = async (): Promise<void> => {
    // With reuseBuffers, this worker's one buffer: onChunk has resolved before it is filled again.
    const own = options.reuseBuffers ? Buffer.allocUnsafe(Math.min(chunkSize, size)) : undefined;
    for (const index of queue) {
      if (stop.signal.aborted) return;
      const data = await fetchChunk(index, own);
      if (stop.signal.aborted) return;
      await onChunk(index, data);
      plan.onDelivered?.(index);
      loaded += data.length;
      done++;
      onProgress?.({ loaded, total: size, chunks: done });
    }
  };

  const workers = Array.from({ length: Math.min(concurrency, chunks - done) }, () =>
    worker().catch((e: unknown) => {
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
  if (failure !== undefined) {
    if (isSluiceError(failure) || !(failure instanceof Error) || failure.name !== 'AbortError') {
      throw failure;
    }
    throw new SluiceError('ERR_NETWORK', `download of ${plan.what} failed: ${failure.message}`, {
      cause: failure,
    });
  }
}

/** Throws ERR_INVALID_ARG for a size, chunk size, concurrency or retry count out of range. */
export function validateDownloadOptions(options: DownloadOptions): void {
  const { size, chunkSize, concurrency = 8, retries = 4 } = options;
  if (!Number.isSafeInteger(size) || size < 0) {
    throw new SluiceError('ERR_INVALID_ARG', `size must be a non-negative integer, got ${size}`);
  }
  if (!Number.isSafeInteger(chunkSize) || chunkSize <= 0) {
    throw new SluiceError(
      'ERR_INVALID_ARG',
      `chunkSize must be a positive integer, got ${chunkSize}`,
    );
  }
  if (!Number.isSafeInteger(concurrency) || concurrency <= 0) {
    throw new SluiceError(
      'ERR_INVALID_ARG',
      `concurrency must be a positive integer, got ${concurrency}`,
    );
  }
  if (!Number.isSafeInteger(retries) || retries < 0) {
    throw new SluiceError(
      'ERR_INVALID_ARG',
      `retries must be a non-negative integer, got ${retries}`,
    );
  }
}

export function abortedError(signal: AbortSignal, what = 'download'): SluiceError {
  return new SluiceError('ERR_ABORTED', `${what} aborted`, { cause: signal.reason });
}

/** An error's message with its cause's, for retry messages. */
export function describe(e: unknown): string {
  if (!(e instanceof Error)) return String(e);
  const cause = e.cause instanceof Error ? `: ${e.cause.message}` : '';
  return `${e.message}${cause}`;
}

export function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) {
      reject(signal.reason);
      return;
    }
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal.reason);
    };
    signal.addEventListener('abort', onAbort, { once: true });
  });
}
