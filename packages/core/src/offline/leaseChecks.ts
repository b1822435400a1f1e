import {
  type EnvelopePayload,
  type Lease,
  leaseManifestDigest,
  type SignedLease,
  SluiceError,
  verifyLease,
} from '@sluice/protocol';
import type { LeaseState } from './leaseStore.js';

/** How far the local clock may lag the newest server time seen before it counts as rolled back. */
export const CLOCK_TOLERANCE_MS = 5 * 60 * 1000;

/**
 * The lease of `grant`, verified with a key of `state` and checked against what it must describe:
 * this device, this account, the payload's resource version and manifest (ERR_LEASE_INVALID).
 */
export function checkGrant(
  grant: SignedLease,
  keys: LeaseState['keys'],
  expect: { email: string; hardware: string; payload: EnvelopePayload },
): Lease {
  const key = keys.find((k) => k.kid === grant.kid);
  if (key === undefined) {
    throw new SluiceError(
      'ERR_LEASE_INVALID',
      `the lease is signed by an unknown key ${grant.kid}`,
    );
  }
  const lease = verifyLease(grant, key);
  const { resource, manifest } = expect.payload;
  const same =
    lease.hardware === expect.hardware &&
    lease.email.toLowerCase() === expect.email.trim().toLowerCase() &&
    lease.folder === resource.folder &&
    lease.name === resource.name &&
    lease.version === resource.version &&
    manifest !== null &&
    leaseManifestDigest(manifest) === lease.manifestDigest;
  if (!same) {
    throw new SluiceError(
      'ERR_LEASE_INVALID',
      `the lease does not describe ${resource.folder}/${resource.name} v${resource.version} on this device`,
    );
  }
  return lease;
}

/** Refuses a clock behind the newest server time seen, and a lease past `notAfter`. */
export function checkTime(lease: Lease, state: LeaseState, now: number): void {
  const newest = Date.parse(state.newestServerTime);
  if (now < newest - CLOCK_TOLERANCE_MS) {
    throw new SluiceError(
      'ERR_CLOCK_ROLLBACK',
      `this device's clock (${new Date(now).toISOString()}) is behind the newest time the server ` +
        `has shown it (${state.newestServerTime}): it was turned back; fix the clock or go online`,
    );
  }
  if (now >= Date.parse(lease.notAfter)) {
    throw new SluiceError(
      'ERR_LEASE_EXPIRED',
      `the offline lease of ${lease.folder}/${lease.name} v${lease.version} expired at ` +
        `${lease.notAfter}: pull it once while the server can be reached`,
    );
  }
}

/** The later of two ISO times (either may be absent). */
export function newer(a: string | undefined, b: string): string {
  return a !== undefined && Date.parse(a) > Date.parse(b) ? a : b;
}
