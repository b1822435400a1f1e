import { resolve } from 'node:path';
import type { Downloader } from '@sluice/cdn';
import { type DeliveredCdnConfig, isSluiceError, SluiceError } from '@sluice/protocol';
import type { Session } from '../http/session.js';
import { abortError, throwIfAborted } from '../platform/abort.js';
import { toSluiceError } from '../platform/toSluiceError.js';
import { BatchProgress } from './batchProgress.js';
import { fetchCdnConfig, publicCdnConfig } from './cdnConfig.js';
import { envelopeKeys } from './envelopeKeys.js';
import { limitedTransport } from './limitedTransport.js';
import { Limiter } from './limiter.js';
import { pull } from './pull.js';
import {
  PULL_MANY_DEFAULTS,
  type PullManyOptions,
  type PullManyResult,
  type PullRequest,
} from './pullManyOptions.js';
import type { PullLimits, PullOptions, PullProgress } from './pullOptions.js';
import { warnOnce } from './pullWarning.js';
import { checkResourceName } from './resourceName.js';
import { checkVersion } from './versions.js';

/** What every pull of a batch is given: all of PullOptions but the destination and progress. */
type SharedOptions = Omit<PullOptions, 'to' | 'onProgress'>;

/**
 * Pulls many big/small resources as this (bound) device with limits shared by all of them:
 * `concurrency` resources at once, `apiConcurrency` API requests and `cdnConcurrency` big-part
 * connections over the whole batch, one envelope key derivation (scrypt) for every resource, one
 * CDN config for every resource on an S3 CDN, and the session's one login. Each resource gets its
 * own result in the order of `requests`; a failure is reported in its result and the others go
 * on. Rejects only on bad arguments (before any request) or on abort (after every running pull
 * has removed its temp file; resources completed before the abort stay in place, each whole and
 * verified).
 */
export async function pullMany(
  session: Session,
  requests: readonly PullRequest[],
  options: PullManyOptions,
): Promise<PullManyResult[]> {
  const list = checkRequests(requests);
  const { password, hardware, signal, cacheDir, trustedPublishers } = options;
  if (typeof password !== 'string') throw new SluiceError('ERR_INVALID_ARG', 'password required');
  if (typeof hardware !== 'string' || hardware === '') {
    throw new SluiceError('ERR_INVALID_ARG', 'hardware hash required');
  }
  const concurrency = positive(options.concurrency, 'concurrency', PULL_MANY_DEFAULTS.concurrency);
  const apiLimit = new Limiter(
    positive(options.apiConcurrency, 'apiConcurrency', PULL_MANY_DEFAULTS.apiConcurrency),
  );
  const cdnLimit = new Limiter(
    positive(options.cdnConcurrency, 'cdnConcurrency', PULL_MANY_DEFAULTS.cdnConcurrency),
  );
  throwIfAborted(signal);
  const limits: PullLimits = {
    api: (run) => apiLimit.run(run, signal),
    transport: (d: Downloader) => limitedTransport(d, cdnLimit),
  };
  const keys = envelopeKeys(password, hardware);
  try {
    const cdn = list.length > 0 ? await sharedCdnConfig(session, options, limits) : undefined;
    const shared: SharedOptions = {
      password,
      hardware,
      hardwareFactors: options.hardwareFactors,
      signal,
      cacheDir,
      onWarning: warnOnce(options.onWarning),
      trustedPublishers,
      cdn,
      limits,
      envelopeKey: keys.copy,
    };
    const progress = new BatchProgress(list.length, options.onProgress);
    const results: PullManyResult[] = new Array(list.length);
    await eachConcurrently(list.length, concurrency, signal, async (index) => {
      const report = (p: PullProgress, result?: PullManyResult) =>
        progress.report(index, p, result);
      const result = await pullOne(session, list[index] as PullRequest, shared, report);
      if (result !== undefined) results[index] = result;
    });
    if (signal?.aborted) throw abortError(signal);
    return results;
  } finally {
    await keys.wipe();
  }
}

/** One request of a batch: its result, or undefined when the batch was aborted meanwhile. */
async function pullOne(
  session: Session,
  { folder, name, to, version }: PullRequest,
  shared: SharedOptions,
  report: (progress: PullProgress, result?: PullManyResult) => void,
): Promise<PullManyResult | undefined> {
  let last: PullProgress = { loaded: 0, total: 0 };
  let result: PullManyResult;
  try {
    const onProgress = (p: PullProgress) => {
      last = p;
      report(p);
    };
    const r = await pull(session, folder, name, { ...shared, to, version, onProgress });
    const { size, fromCache, publisher } = r;
    const pulled = r.resource.version;
    result = { folder, name, to, version: pulled, ok: true, size, fromCache, publisher };
  } catch (e) {
    if (shared.signal?.aborted) return undefined;
    result = { folder, name, to, version, ok: false, error: asSluiceError(e, `${folder}/${name}`) };
  }
  report(last, result);
  return result;
}

/**
 * Runs `task` for 0 … count-1 in order, `concurrency` at once: one generator of indexes shared
 * by the workers. Once `signal` aborts no new task starts.
 */
async function eachConcurrently(
  count: number,
  concurrency: number,
  signal: AbortSignal | undefined,
  task: (index: number) => Promise<void>,
): Promise<void> {
  function* indexes(): Generator<number> {
    for (let i = 0; i < count; i++) yield i;
  }
  const queue = indexes();
  const worker = async (): Promise<void> => {
    for (const index of queue) {
      if (signal?.aborted) return;
      await task(index);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, worker));
}

/**
 * The CDN settings with read keys, fetched once for the batch when big parts may be on an S3
 * CDN. On a failure other than abort each resource fetches its own and reports what it gets.
 */
async function sharedCdnConfig(
  session: Session,
  { password, hardware, hardwareFactors, signal }: PullManyOptions,
  limits: PullLimits,
): Promise<DeliveredCdnConfig | undefined> {
  try {
    const open = await limits.api(() => publicCdnConfig(session, { signal }));
    if (open.kind !== 's3') return undefined;
    return await limits.api(() =>
      fetchCdnConfig(session, { password, hardware, hardwareFactors, signal }),
    );
  } catch (e) {
    if (signal?.aborted) throw abortError(signal);
    if (isSluiceError(e, 'ERR_ABORTED')) throw e;
    return undefined;
  }
}

function checkRequests(requests: readonly PullRequest[]): PullRequest[] {
  if (!Array.isArray(requests)) {
    throw new SluiceError('ERR_INVALID_ARG', 'requests must be an array of {folder, name, to}');
  }
  const seen = new Map<string, number>();
  return requests.map((r: unknown, i) => {
    const bad = (what: string) => new SluiceError('ERR_INVALID_ARG', `request ${i}: ${what}`);
    if (typeof r !== 'object' || r === null) throw bad('not an object {folder, name, to}');
    const { folder, name, to, version } = r as Partial<Record<keyof PullRequest, unknown>>;
    try {
      checkResourceName(folder, 'folder');
      checkResourceName(name, 'name');
      if (version !== undefined) checkVersion(version);
    } catch (e) {
      throw bad((e as Error).message);
    }
    if (typeof to !== 'string' || to === '' || to === 'buffer') {
      throw bad("to must be a file path (for a file named 'buffer', write ./buffer)");
    }
    const key = resolve(to);
    const other = seen.get(key);
    if (other !== undefined) throw bad(`writes to the same file as request ${other} (${to})`);
    seen.set(key, i);
    const request: PullRequest = { folder: folder as string, name: name as string, to };
    if (version !== undefined) request.version = version as number;
    return request;
  });
}

function positive(v: number | undefined, what: string, fallback: number): number {
  if (v === undefined) return fallback;
  if (!Number.isSafeInteger(v) || v <= 0) {
    throw new SluiceError('ERR_INVALID_ARG', `${what} must be a positive integer, got ${v}`);
  }
  return v;
}

/** Any failure of one pull as a SluiceError (an fs error becomes ERR_IO with its path). */
function asSluiceError(e: unknown, what: string): SluiceError {
  if (isSluiceError(e)) return e;
  const s = toSluiceError(e, what);
  if (s instanceof SluiceError) return s;
  return new SluiceError('ERR_INVALID_ARG', s.message, { cause: e });
}
