import type { HardwareFactorDigests, SluiceError } from '@sluice/protocol';
import type { PullProgress } from './pullOptions.js';
import type { PullWarning } from './pullWarning.js';

/** One resource of a batch: `folder`/`name` on the API, written to the file `to`. */
export interface PullRequest {
  folder: string;
  name: string;
  to: string;
  /** This version instead of the released one; on a success, the version pulled. */
  version?: number;
}

/** The outcome of one request; a failure never stops the others. */
export type PullManyResult =
  | (PullRequest & { ok: true; size: number; fromCache: boolean; publisher: string | null })
  | (PullRequest & { ok: false; error: SluiceError });

export interface PullManyProgress {
  /** The request this event is about (its index in `requests`). */
  index: number;
  /** That resource's sealed-blob bytes so far and in all. */
  resource: PullProgress;
  /** Its result, on the one event that settles it. */
  result?: PullManyResult;
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

export interface PullManyOptions {
  /** The user's password and this device's hardware hash, as for pull. */
  password: string;
  hardware: string;
  /**
   * This device's factor digests (`hardwareFactorDigests()`), sent beside the hash so the server
   * accepts it when a factor drifted (docs/FORMAT.md §7). Without them only the exact hash binds.
   */
  hardwareFactors?: HardwareFactorDigests;
  /** Resources pulled at once (default 8). */
  concurrency?: number;
  /** API requests (envelopes, CDN config) in flight at once over the whole batch (default 4). */
  apiConcurrency?: number;
  /**
   * Big-part connections at once over the whole batch, from an S3 CDN or from the API's own
   * big-part route (default 16).
   */
  cdnConcurrency?: number;
  /** Aborting stops every pull: pullMany rejects with ERR_ABORTED once none is left running. */
  signal?: AbortSignal;
  onProgress?: (progress: PullManyProgress) => void;
  /** Shared cache of verified big parts (see pull). */
  cacheDir?: string;
  /** As pull's, called once a kind for the whole batch (an unusable cache is one warning). */
  onWarning?: (warning: PullWarning) => void;
  /** The publishers this device trusts, for every resource of the batch (see pull). */
  trustedPublishers?: readonly string[];
}

export const PULL_MANY_DEFAULTS = { concurrency: 8, apiConcurrency: 4, cdnConcurrency: 16 };
