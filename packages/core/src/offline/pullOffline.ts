import { type Manifest, SluiceError } from '@sluice/protocol';
import { type BigPartSource, RangedBigPart } from '../resources/bigPartSource.js';
import { DecryptingWriter } from '../resources/decryptingWriter.js';
import type { PullOptions, PullResult } from '../resources/pullOptions.js';
import { checkResourceName } from '../resources/resourceName.js';
import { intoBuffer, intoFile, type Sink } from '../resources/sink.js';
import { CachedBigPart } from '../resources/throughCache.js';
import { trustedPublishers } from '../resources/trustList.js';
import { verifyEnvelope } from '../resources/verifyEnvelope.js';
import { checkGrant, checkTime } from './leaseChecks.js';
import {
  type HeldLease,
  holdsLease,
  type LeaseAccount,
  type LeaseState,
  LeaseStore,
} from './leaseStore.js';

/**
 * Opens `folder/name` from its offline lease without contacting the server: the lease (signed by
 * the server key kept at the last contact) must be this device's and account's and current
 * (ERR_LEASE_EXPIRED, ERR_CLOCK_ROLLBACK), the envelope's contents kept with it open only with
 * the password on this device (ERR_LEASE_LOCKED), and the big part must be in the cache, intact.
 * The output appears only when complete and verified, as with an online pull.
 */
export async function pullOffline(
  account: LeaseAccount,
  folder: string,
  name: string,
  options: PullOptions,
): Promise<PullResult & { path?: string; data?: Buffer }> {
  checkResourceName(folder, 'folder');
  checkResourceName(name, 'name');
  const { cacheDir, to, signal } = options;
  if (cacheDir === undefined) {
    throw new SluiceError('ERR_NO_LEASE', 'offline use needs the cache directory (cacheDir)');
  }
  if (!(await holdsLease(cacheDir, account, folder, name))) {
    throw new SluiceError(
      'ERR_NO_LEASE',
      `no offline lease of ${folder}/${name} for ${account.email} in ${cacheDir}: pull it once ` +
        'while the server can be reached (with this cache)',
    );
  }
  const store = await LeaseStore.unlock(cacheDir, account, options.password, options.hardware);
  let state: LeaseState | undefined;
  let held: HeldLease | undefined;
  try {
    state = await store.readState();
    held = await store.read(folder, name);
  } finally {
    store.close();
  }
  if (state === undefined || held === undefined) {
    throw new SluiceError('ERR_NO_LEASE', `no offline lease of ${folder}/${name} in ${cacheDir}`);
  }
  const { payload, grant } = held;
  try {
    const expect = { email: account.email, hardware: options.hardware, payload };
    const lease = checkGrant(grant, state.keys, expect);
    checkTime(lease, state, options.now?.() ?? Date.now());
    const { resource, manifest, small, dataKey } = payload;
    const { publisher } = verifyEnvelope(
      { folder, name },
      resource,
      payload,
      trustedPublishers(options),
    );
    const source = manifest && cachedOnly(cacheDir, options, resource, manifest);
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
    return { resource, publisher, ...output, offline: true, leaseNotAfter: lease.notAfter };
  } finally {
    payload.dataKey.fill(0);
  }
}

/** The big part from the cache alone: a chunk it lacks would need the network, so it is refused. */
function cachedOnly(
  dir: string,
  options: PullOptions,
  resource: PullResult['resource'],
  manifest: Manifest,
): BigPartSource {
  const missing = () =>
    Promise.reject(
      new SluiceError(
        'ERR_NO_LEASE',
        `the big part of ${resource.folder}/${resource.name} v${resource.version} is not (intact) ` +
          `in the cache ${dir}: pull it once while the server can be reached`,
      ),
    );
  const ranged = new RangedBigPart(manifest, missing, { signal: options.signal });
  // An unusable cache has nothing to open: the ranged fallback then says ERR_NO_LEASE.
  const cache = { dir, maxBytes: options.cacheMaxBytes, onUnusable: () => {} };
  return new CachedBigPart(cache, manifest, ranged, {
    resource,
    signal: options.signal,
    onWait: options.onCacheWait,
  });
}
