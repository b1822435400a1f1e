import { type EnvelopeResource, isSluiceError, type Manifest } from '@sluice/protocol';
import type { CacheProblem } from '../cache/cacheAvailability.js';
import type { Session } from '../http/session.js';
import { type LeaseKeeper, leasedPull } from '../offline/index.js';
import { abortError, throwIfAborted } from '../platform/abort.js';
import { toSluiceError } from '../platform/toSluiceError.js';
import { type BigPartSource, RangedBigPart } from './bigPartSource.js';
import { bigPartTransport } from './bigPartTransport.js';
import { DecryptingWriter } from './decryptingWriter.js';
import { openDeviceEnvelope } from './deviceEnvelope.js';
import type { PullOptions, PullResult } from './pullOptions.js';
import { cacheUnusable, warnOnce } from './pullWarning.js';
import { checkResourceName } from './resourceName.js';
import { intoBuffer, intoFile, type Sink } from './sink.js';
import { CachedBigPart } from './throughCache.js';
import { trustedPublishers as trusted } from './trustList.js';
import { verifyEnvelope } from './verifyEnvelope.js';

/**
 * Fetches a big/small resource as a bound device: the device envelope from the API, the big part
 * from the cache (when every chunk digest matches) or over HTTP ranges. Before anything is
 * written the manifest is checked (its resource, its publisher's signature, the trust list) and
 * the small part and data key against it (`verifyEnvelope`); every chunk is verified against the
 * manifest before it is decrypted at its offset. A file output appears at `to` only
 * when complete; on any failure there is neither a file at `to` nor a temp file beside it.
 */
export function pull(
  session: Session,
  folder: string,
  name: string,
  options: PullOptions & { to: 'buffer' },
): Promise<PullResult & { data: Buffer }>;
export function pull(
  session: Session,
  folder: string,
  name: string,
  options: PullOptions,
): Promise<PullResult & { path?: string; data?: Buffer }>;
export function pull(
  session: Session,
  folder: string,
  name: string,
  options: PullOptions,
): Promise<PullResult & { path?: string; data?: Buffer }> {
  return leasedPull(session, folder, name, options, pullOnline);
}

/** The pull from the server; `keeper` keeps the envelope's offline lease (options.offline). */
async function pullOnline(
  session: Session,
  folder: string,
  name: string,
  options: PullOptions,
  keeper: LeaseKeeper | undefined,
): Promise<PullResult & { path?: string; data?: Buffer }> {
  const { signal, to } = options;
  if (typeof to !== 'string' || to === '') throw new TypeError("to must be a path or 'buffer'");
  checkResourceName(folder, 'folder');
  checkResourceName(name, 'name');
  throwIfAborted(signal);
  const { resource, payload, lease } = await openDeviceEnvelope(session, folder, name, options);
  const { manifest, small, dataKey, cdnKey } = payload;
  try {
    const { publisher } = verifyEnvelope({ folder, name }, resource, payload, trusted(options));
    await keeper?.keep(lease, payload);
    throwIfAborted(signal);
    const where = { folder, name, version: resource.version };
    const source = manifest && bigPartSource(session, where, manifest, cdnKey, options);
    const fill = async (sink: Sink) => {
      const writer = new DecryptingWriter({ manifest, small, dataKey }, sink, options.onProgress);
      await writer.start();
      const fromCache = source ? await source.deliver(writer) : false;
      return { size: writer.finish(), fromCache };
    };
    const output =
      to === 'buffer'
        ? await intoBuffer(manifest?.blobSize ?? small.length, fill)
        : await intoFile(to, signal, fill);
    return { resource, publisher, ...output };
  } catch (e) {
    throw toPullError(e, signal);
  } finally {
    dataKey.fill(0);
  }
}

/** Where the big part comes from: through the cache with `cacheDir`, else straight over ranges. */
function bigPartSource(
  session: Session,
  resource: EnvelopeResource,
  manifest: Manifest,
  cdnKey: string | null | undefined,
  options: PullOptions,
): BigPartSource {
  const { signal } = options;
  const ranged = new RangedBigPart(
    manifest,
    () => bigPartTransport(session, resource, cdnKey, options),
    { signal, wrap: options.limits?.transport },
  );
  if (options.cacheDir === undefined) return ranged;
  const warn = warnOnce(options.onWarning);
  const onUnusable = (problem: CacheProblem) => warn(cacheUnusable(problem));
  return new CachedBigPart(
    { dir: options.cacheDir, maxBytes: options.cacheMaxBytes, onUnusable },
    manifest,
    ranged,
    {
      resource,
      signal,
      onWait: options.onCacheWait,
    },
  );
}

function toPullError(e: unknown, signal: AbortSignal | undefined): unknown {
  if (signal?.aborted) return abortError(signal);
  // A file-system failure (ENOSPC on the destination or the cache, EACCES…): ERR_IO with its
  // syscall, errno and path, like the rest of core.
  const err = e as { syscall?: unknown } | null;
  if (typeof err?.syscall === 'string' && !isSluiceError(e)) return toSluiceError(e, 'pull');
  return e;
}
