import { SluiceError } from '@sluice/protocol';
import type { FastifyBaseLogger } from 'fastify';
import type { UserRecord } from '../stores/records.js';
import type { Store } from '../stores/store.js';

/** What a device sends as `hardware`: its hardware hash (see docs/FORMAT.md). */
export const HARDWARE_PATTERN = /^[A-Za-z0-9+/=_.:-]{1,256}$/;

/** The JSON schema of a `hardware` field: bounded before the pattern is checked. */
export const HARDWARE_SCHEMA = Object.freeze({ type: 'string', maxLength: 1024 } as const);

export const DEVICE_NOT_BOUND_MESSAGE =
  'this account is bound to another device; ask an admin to reset the device binding (POST /users/:id/reset-device)';

/** Throws 400 unless `hardware` looks like a hardware hash. */
export function checkHardware(hardware: string): string {
  if (!HARDWARE_PATTERN.test(hardware)) {
    throw new SluiceError('ERR_BAD_REQUEST', 'hardware must be the device hardware hash');
  }
  return hardware;
}

/**
 * Binds `hardware` to the account on its first envelope; afterwards any other hardware hash is
 * 403 ERR_DEVICE_NOT_BOUND until an admin resets the binding.
 */
export async function bindDevice(
  store: Store,
  user: UserRecord,
  hardware: string,
  log: FastifyBaseLogger,
): Promise<void> {
  if (user.boundHardwareHash === hardware) return;
  // One conditional update: of two first binds racing on any instances, exactly one wins.
  if (await store.users.bindIfUnbound(user.id, hardware, new Date().toISOString())) {
    log.info({ event: 'device.bound', userId: user.id }, 'device bound');
    return;
  }
  const now = await store.users.get(user.id);
  if (now === undefined) throw new SluiceError('ERR_UNAUTHORIZED', 'user no longer exists');
  if (now.boundHardwareHash === hardware) return;
  log.info({ event: 'device.refused', userId: user.id }, 'other device refused');
  throw new SluiceError('ERR_DEVICE_NOT_BOUND', DEVICE_NOT_BOUND_MESSAGE);
}
