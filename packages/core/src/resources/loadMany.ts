import { resolve } from 'node:path';
import type { Downloader, DownloadOptions } from '@sluice/cdn';
import {
  type DeliveredCdnConfig,
  deriveEnvelopeKey,
  isSluiceError,
  SluiceError,
} from '@sluice/protocol';
import type { Session } from '../http/session.js';
import { abortError, throwIfAborted } from '../platform/abort.js';
import { toSluiceError } from '../platform/toSluiceError.js';
import { fetchCdnConfig, publicCdnConfig } from './cdnConfig.js';
import { Limiter } from './limiter.js';
import { pull } from './pull.js';
import type { PullProgress } from './pullOptions.js';
import { checkResourceName } from './resourceName.js';

/** One resource of a batch: `folder`/`name` on the API, written to the file `to`. */
export interface LoadRequest {
  folder: string;
  name: string;
  to: string;
}

/** The outcome of one request; a failure never stops the others. */
export type LoadManyResult =
  | (LoadRequest & { ok: true; size: number; fromCache: boolean })
  | (LoadRequest & { ok: false; error: SluiceError });

export interface LoadManyProgress {
  /** The request this event is about (its index in `requests`). */
  index: number;
  /** That resource's sealed-blob bytes so far and in all. */
  resource: PullProgress;
  /** Its result, on the one event that settles it. */
  result?: LoadManyResult;
  /** Bytes checked and decrypted over all resources; never decreases. */
  loaded: number;
  /**
   * Bytes of every resource whose size is known (once its envelope is open), less what failed
   * resources will never load: `loaded === total` once every resource has settled.
   */
  total: number;
  /** Resources settled (succeeded or failed), failed, and in all. */
  settled: number;
  failed: number;
  count: number;
}

export interface LoadManyOptions {
  /** The user's password and this device's hardware hash, as for loadBigSmallResource. */
  password: string;
  hardware: string;
  /** Resources loading at once (default 8). */
  concurrency?: number;
  /** API requests (envelopes, CDN config) in flight at once over the whole batch (default 4). */
  apiConcurrency?: number;
  /**
   * Big-part connections at once over the whole batch, from an S3 CDN or from the API's own
   * big-part route (default 16).
   */
  cdnConcurrency?: number;
  /** Aborting stops every load: loadMany rejects with ERR_ABORTED once none is left running. */
  signal?: AbortSignal;
  onProgress?: (progress: LoadManyProgress) => void;
  /** Shared cache of verified big parts (see loadBigSmallResource). */
  cacheDir?: string;
}

export const LOAD_MANY_DEFAULTS = { concurrency: 8, apiConcurrency: 4, cdnConcurrency: 16 };

/**
 * Loads many big/small resources as this (bound) device with limits shared by all of them:
 * `concurrency` resources at once, `apiConcurrency` API requests and `cdnConcurrency` big-part
 * connections over the whole batch, one envelope key derivation (scrypt) for every resource, one
 * CDN config for every resource on an S3 CDN, and the session's one login. Each resource gets its own result in the
 * order of `requests`; a failure is reported in its result and the others go on. Rejects only on
 * bad arguments (before any request) or on abort (after every running load has removed its temp
 * file; resources completed before the abort stay in place, each whole and verified).
 */
export async function loadMany(
  session: Session,
  requests: readonly LoadRequest[],
  options: LoadManyOptions,
): Promise<LoadManyResult[]> {
  const list = checkRequests(requests);
  const { password, hardware, signal, onProgress, cacheDir } = options;
  if (typeof password !== 'string') throw new SluiceError('ERR_INVALID_ARG', 'password required');
  if (typeof hardware !== 'string' || hardware === '') {
    throw new SluiceError('ERR_INVALID_ARG', 'hardware hash required');
  }
  const concurrency = positive(options.concurrency, 'concurrency', LOAD_MANY_DEFAULTS.concurrency);
  const apiLimit = new Limiter(
    positive(options.apiConcurrency, 'apiConcurrency', LOAD_MANY_DEFAULTS.apiConcurrency),
  );
  const cdnLimit = new Limiter(
    positive(options.cdnConcurrency, 'cdnConcurrency', LOAD_MANY_DEFAULTS.cdnConcurrency),
  );
  throwIfAborted(signal);
  const withSignal = signal ? { signal } : {};
  const api = <T>(run: () => Promise<T>) => apiLimit.run(run, signal);
  const limits = { api, transport: (d: Downloader) => limitedTransport(d, cdnLimit) };
  const keys = envelopeKeys(password, hardware);
  const envelopeKey = keys.copy;
  try {
    return await run();
  } finally {
    await keys.wipe();
  }

  async function run(): Promise<LoadManyResult[]> {
    const cdn = list.length > 0 ? await sharedCdnConfig() : undefined;

    const results: LoadManyResult[] = new Array(list.length);
    const high = new Array<number>(list.length).fill(0);
    const sizes = new Array<number>(list.length).fill(0);
    const totals = { loaded: 0, total: 0, settled: 0, failed: 0 };
    const report = (index: number, resource: PullProgress, result?: LoadManyResult) => {
      if (sizes[index] === 0 && resource.total > 0) {
        sizes[index] = resource.total;
        totals.total += resource.total;
      }
      // A load that starts over (a corrupt cache file) repeats bytes: count each byte once.
      const before = high[index] as number;
      if (resource.loaded > before) {
        high[index] = resource.loaded;
        totals.loaded += resource.loaded - before;
      }
      if (result !== undefined) {
        totals.settled++;
        if (!result.ok) {
          totals.failed++;
          totals.total -= (sizes[index] as number) - (high[index] as number);
        }
      }
      onProgress?.({
        index,
        resource,
        ...(result ? { result } : {}),
        ...totals,
        count: list.length,
      });
    };

    const loadOne = async (index: number): Promise<void> => {
      const request = list[index] as LoadRequest;
      const { folder, name, to } = request;
      let last: PullProgress = { loaded: 0, total: 0 };
      let result: LoadManyResult;
      try {
        const r = await pull(session, folder, name, {
          to,
          password,
          hardware,
          ...withSignal,
          ...(cacheDir !== undefined ? { cacheDir } : {}),
          ...(cdn !== undefined ? { cdn } : {}),
          limits,
          envelopeKey,
          onProgress: (p) => {
            last = p;
            report(index, p);
          },
        });
        result = { folder, name, to, ok: true, size: r.size, fromCache: r.fromCache };
      } catch (e) {
        if (signal?.aborted) return;
        result = { folder, name, to, ok: false, error: asSluiceError(e, `${folder}/${name}`) };
      }
      results[index] = result;
      report(index, last, result);
    };

    function* indexes(): Generator<number> {
      for (let i = 0; i < list.length; i++) yield i;
    }
    const queue = indexes();
    const worker = async (): Promise<void> => {
      for (const index of queue) {
        if (signal?.aborted) return;
        await loadOne(index);
      }
    };
    await Promise.all(Array.from({ length: Math.min(concurrency, list.length) }, worker));
    if (signal?.aborted) throw abortError(signal);
    return results;
  }

  /**
   * The CDN settings with read keys, fetched once for the batch when big parts may be on an S3
   * CDN. On a failure other than abort each resource fetches its own and reports what it gets.
   */
  async function sharedCdnConfig(): Promise<DeliveredCdnConfig | undefined> {
    try {
      const open = await api(() => publicCdnConfig(session, withSignal));
      if (open.kind !== 's3') return undefined;
      return await api(() => fetchCdnConfig(session, { password, hardware, ...withSignal }));
    } catch (e) {
      if (signal?.aborted) throw abortError(signal);
      if (isSluiceError(e, 'ERR_ABORTED')) throw e;
      return undefined;
    }
  }
}

/**
 * The envelope key depends on (email, password, hardware) only, not on the resource: derived
 * (scrypt) once per batch, handed out as copies that each load zeroes, wiped when the batch ends.
 */
function envelopeKeys(password: string, hardware: string) {
  const keys = new Map<string, Promise<Buffer>>();
  return {
    async copy(email: string): Promise<Buffer> {
      let key = keys.get(email);
      if (key === undefined) {
        key = deriveEnvelopeKey(email, password, hardware);
        keys.set(email, key);
        key.catch(() => keys.delete(email));
      }
      return Buffer.from(await key);
    },
    async wipe(): Promise<void> {
      for (const key of keys.values()) await key.then((k) => k.fill(0)).catch(() => {});
    },
  };
}

/**
 * The big part's transport holding slots of the batch's CDN budget for the whole download: at
 * least one, up to the ranges it would run at once (never more than the chunks it fetches).
 */
function limitedTransport(inner: Downloader, limit: Limiter): Downloader {
  return {
    async download(options: DownloadOptions): Promise<void> {
      const chunks = Math.ceil(options.size / options.chunkSize) - (options.skip?.size ?? 0);
      const want = Math.max(1, Math.min(options.concurrency ?? 8, chunks));
      const granted = await limit.acquire(want, options.signal);
      try {
        await inner.download({ ...options, concurrency: granted });
      } finally {
        limit.release(granted);
      }
    },
  };
}

function checkRequests(requests: readonly LoadRequest[]): LoadRequest[] {
  if (!Array.isArray(requests)) {
    throw new SluiceError('ERR_INVALID_ARG', 'requests must be an array of {folder, name, to}');
  }
  const seen = new Map<string, number>();
  return requests.map((r: unknown, i) => {
    const bad = (what: string) => new SluiceError('ERR_INVALID_ARG', `request ${i}: ${what}`);
    if (typeof r !== 'object' || r === null) throw bad('not an object {folder, name, to}');
    const { folder, name, to } = r as Partial<Record<keyof LoadRequest, unknown>>;
    try {
      checkResourceName(folder, 'folder');
      checkResourceName(name, 'name');
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
    return { folder: folder as string, name: name as string, to };
  });
}

function positive(v: number | undefined, what: string, fallback: number): number {
  if (v === undefined) return fallback;
  if (!Number.isSafeInteger(v) || v <= 0) {
    throw new SluiceError('ERR_INVALID_ARG', `${what} must be a positive integer, got ${v}`);
  }
  return v;
}

/** Any failure of one load as a SluiceError (an fs error becomes ERR_IO with its path). */
function asSluiceError(e: unknown, what: string): SluiceError {
  if (isSluiceError(e)) return e;
  const s = toSluiceError(e, what);
  if (s instanceof SluiceError) return s;
  return new SluiceError('ERR_INVALID_ARG', s.message, { cause: e });
}
