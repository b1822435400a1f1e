export { checkLeases } from './checkLeases.js';
export { CLOCK_TOLERANCE_MS } from './leaseChecks.js';
export { leasedPull } from './leasedPull.js';
export { LeaseKeeper } from './leaseKeeper.js';
export { forgetAccount, type LeaseAccount, type LeaseState, LeaseStore } from './leaseStore.js';
export { pullOffline } from './pullOffline.js';
export { deriveLeaseKey, LEASE_KDF } from './sealedFile.js';
