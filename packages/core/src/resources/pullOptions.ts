import type { Downloader } from '@sluice/cdn';
import type { DeliveredCdnConfig, EnvelopeResource, HardwareFactorDigests } from '@sluice/protocol';
import type { LockOwner } from '../platform/fileLock.js';
import type { PullWarning } from './pullWarning.js';

export interface PullProgress {
  /** Sealed-blob bytes checked and decrypted so far (small part included). */
  loaded: number;
  /** Sealed-blob bytes in all. */
  total: number;
}

/** Limits shared by a batch (pullMany): `api` runs each API request, `transport` wraps the big part's. */
export interface PullLimits {
  api: <T>(run: () => Promise<T>) => Promise<T>;
  transport: (downloader: Downloader) => Downloader;
}

export interface PullOptions {
  /** A file path (written beside, renamed into place when complete) or 'buffer'. */
  to: string;
  /** This version (see listVersions) instead of the released one. */
  version?: number;
  /** The user's password: it unlocks the device envelope together with the hardware hash. */
  password: string;
  /** This device's hardware hash. */
  hardware: string;
  /**
   * This device's factor digests (`hardwareFactorDigests()`), sent beside the hash so the server
   * accepts it when a factor drifted (docs/FORMAT.md §7). Without them only the exact hash binds.
   */
  hardwareFactors?: HardwareFactorDigests;
  signal?: AbortSignal;
  onProgress?: (progress: PullProgress) => void;
  /**
   * Keep verified big parts in this shared cache (see BigPartCache) and reuse them. Processes
   * that pull the same part into one cache at once download it once: the others wait for it.
   */
  cacheDir?: string;
  /** With `cacheDir`: keep the cache under this many bytes, evicting least recently used entries. */
  cacheMaxBytes?: number;
  /** With `cacheDir`: called when another process (or call) is fetching this big part and this one waits. */
  onCacheWait?: (owner: LockOwner) => void;
  /**
   * Called (once a kind) when the pull works around something and goes on, e.g. a `cacheDir`
   * that is read-only, not a directory, cannot be created or whose disk fills up: the big part
   * then comes from the network alone. Default: `process.emitWarning`.
   */
  onWarning?: (warning: PullWarning) => void;
  /** Ranged requests in flight for the big part (default 4 from the API, 8 from an S3 CDN). */
  concurrency?: number;
  /** Transport for the big part (default: the API's own big-part route over HTTP ranges). */
  downloader?: Downloader;
  /** Where `downloader` finds the big part (default the API's big-part URL of this version). */
  bigUrl?: string;
  /**
   * The CDN settings with read keys, when the caller already has them (e.g. a batch sharing one
   * `fetchCdnConfig`). By default they are fetched when a resource's big part is on an S3 CDN.
   */
  cdn?: DeliveredCdnConfig;
  /** Limits shared by a batch (pullMany). */
  limits?: PullLimits;
  /**
   * Gives the envelope key of (email, password, hardware) as a fresh copy, zeroed after use, when
   * the caller derives it once for many pulls (pullMany): one scrypt per batch, not per resource.
   */
  envelopeKey?: (email: string) => Promise<Buffer>;
  /**
   * Publisher public keys (raw 32 bytes, standard base64) this device trusts. When given, a
   * resource signed by anyone else, or unsigned (v1 or v2), is refused with
   * ERR_UNTRUSTED_PUBLISHER before anything is written. A bad signature is refused always.
   */
  trustedPublishers?: readonly string[];
  /**
   * Offline use (needs `cacheDir`; docs/SECURITY.md, "Offline use"). 'auto': keep the offline
   * lease the server sends with the envelope (sealed under the password and this device), check
   * the account's other leases for revocation, and open the lease instead when the server cannot
   * be reached. 'only': open the lease without contacting the server. Default: online only.
   */
  offline?: 'auto' | 'only';
  /** With offline 'auto': the server could not be reached; the lease is tried next. */
  onOffline?: (cause: Error) => void;
  /** The clock of the offline checks, ms since the epoch (default Date.now). */
  now?: () => number;
}

export interface PullResult {
  resource: EnvelopeResource;
  /** Plaintext bytes. */
  size: number;
  /** Whether the big part came from the local cache. */
  fromCache: boolean;
  /** The public key that signed the manifest (verified), or null for an unsigned resource. */
  publisher: string | null;
  /** With `offline`: whether it was opened from the offline lease, without the server. */
  offline?: boolean;
  /** With `offline`: until when the lease it holds (or was opened from) lets it open offline. */
  leaseNotAfter?: string;
}

/** Runs an API request of a pull within its batch's limit, if it has one. */
export function runApi<T>(options: Pick<PullOptions, 'limits'>, run: () => Promise<T>): Promise<T> {
  return options.limits ? options.limits.api(run) : run();
}
