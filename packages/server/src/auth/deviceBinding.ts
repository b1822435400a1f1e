import { HARDWARE_FACTOR_LIMITS, type HardwareFactorDigests, SluiceError } from '@sluice/protocol';
import type { FastifyBaseLogger } from 'fastify';
import { claimSeat } from '../limits/seatLimit.js';
import type { UserRecord } from '../stores/records.js';
import type { Store } from '../stores/store.js';
import { type BindingPolicy, type FactorMatch, matchFactors, sameFactors } from './driftPolicy.js';

/** What a device sends as `hardware`: its hardware hash (see docs/FORMAT.md). */
export const HARDWARE_PATTERN = /^[A-Za-z0-9+/=_.:-]{1,256}$/;

/** The JSON schema of a `hardware` field: bounded before the pattern is checked. */
export const HARDWARE_SCHEMA = Object.freeze({ type: 'string', maxLength: 1024 } as const);

/** The JSON schema of `hardwareFactors`: bounded here, names and digests checked by the code. */
export const HARDWARE_FACTORS_SCHEMA = Object.freeze({
  type: 'object',
  maxProperties: HARDWARE_FACTOR_LIMITS.maxFactors,
  additionalProperties: { type: 'string', maxLength: 64 },
} as const);

export const DEVICE_NOT_BOUND_MESSAGE =
  'this account is bound to another device; ask an admin to reset the device binding (POST /users/:id/reset-device)';

const COOLDOWN_MESSAGE =
  "this account's device binding moved to a changed device recently and cannot move again yet; " +
  'ask an admin to reset the device binding (POST /users/:id/reset-device)';

/** A device as it presents itself: its hash and, from newer clients, its factor digests. */
export interface DeviceClaim {
  hash: string;
  factors?: HardwareFactorDigests;
}

/** Throws 400 unless `hardware` looks like a hardware hash. */
export function checkHardware(hardware: string): string {
  if (!HARDWARE_PATTERN.test(hardware)) {
    throw new SluiceError('ERR_BAD_REQUEST', 'hardware must be the device hardware hash');
  }
  return hardware;
}

/** Throws 400 unless `factors` (if given) maps factor names to 64-hex digests. */
export function checkHardwareFactors(factors: unknown): HardwareFactorDigests | undefined {
  if (factors === undefined) return undefined;
  const bad = () =>
    new SluiceError(
      'ERR_BAD_REQUEST',
      'hardwareFactors must map factor names (like disk.serial) to 64 lower-case hex digests',
    );
  if (typeof factors !== 'object' || factors === null || Array.isArray(factors)) throw bad();
  const entries = Object.entries(factors);
  if (entries.length > HARDWARE_FACTOR_LIMITS.maxFactors) throw bad();
  const checked: HardwareFactorDigests = {};
  for (const [name, digest] of entries) {
    if (!HARDWARE_FACTOR_LIMITS.name.test(name) || typeof digest !== 'string') throw bad();
    if (!HARDWARE_FACTOR_LIMITS.digest.test(digest)) throw bad();
    checked[name] = digest;
  }
  return checked;
}

type Outcome =
  | { kind: 'same' | 'bound' | 'recorded' }
  | { kind: 'drifted'; match: FactorMatch }
  | { kind: 'refused'; match?: FactorMatch; cooldown?: boolean };

/**
 * Binds the device to the account on its first envelope. Afterwards the bound hash is accepted;
 * another hash is accepted when the device's factor digests still match the binding's under
 * `policy` (the binding then moves to this device and one `device.drifted` line names the
 * factors that changed); anything else is 403 ERR_DEVICE_NOT_BOUND until an admin resets it.
 * A first bind takes one of the organisation's seats (403 ERR_SEAT_LIMIT when none is left).
 */
export async function bindDevice(
  store: Store,
  user: UserRecord,
  claim: DeviceClaim,
  policy: BindingPolicy,
  log: FastifyBaseLogger,
): Promise<void> {
  if (user.boundHardwareHash === claim.hash && !recordsNewFactors(user, claim)) return;
  // Read and write in one serializable transaction: of two devices drifting at once (on any
  // instances), one moves the binding and the other is judged against the moved one.
  const outcome = await store.transaction(async (t): Promise<Outcome> => {
    const now = await t.users.get(user.id);
    if (now === undefined) throw new SluiceError('ERR_UNAUTHORIZED', 'user no longer exists');
    const at = new Date().toISOString();
    if (now.boundHardwareHash === null) {
      await claimSeat(t, now);
      await t.users.bindIfUnbound(now.id, claim.hash, at, claim.factors);
      return { kind: 'bound' };
    }
    if (now.boundHardwareHash === claim.hash) {
      if (!recordsNewFactors(now, claim)) return { kind: 'same' };
      // The bound device itself, now sending digests (a newer client): they become the binding.
      await t.users.update({ ...now, boundHardwareFactors: claim.factors, updatedAt: at });
      return { kind: 'recorded' };
    }
    if (now.boundHardwareFactors === undefined || claim.factors === undefined) {
      return { kind: 'refused' };
    }
    const match = matchFactors(now.boundHardwareFactors, claim.factors, policy);
    if (!match.accepted) return { kind: 'refused', match };
    const last = now.deviceDriftedAt === undefined ? Number.NaN : Date.parse(now.deviceDriftedAt);
    if (Date.now() - last < policy.driftCooldownMs)
      return { kind: 'refused', match, cooldown: true };
    await t.users.update({
      ...now,
      boundHardwareHash: claim.hash,
      boundHardwareFactors: claim.factors,
      deviceDriftedAt: at,
      updatedAt: at,
    });
    return { kind: 'drifted', match };
  });
  report(outcome, user.id, log);
}

/** The claim carries digests the binding does not hold yet (same hash). */
function recordsNewFactors(user: UserRecord, claim: DeviceClaim): boolean {
  if (claim.factors === undefined) return false;
  return (
    user.boundHardwareFactors === undefined ||
    !sameFactors(user.boundHardwareFactors, claim.factors)
  );
}

/** The audit line of a binding change (factor names and counts only, never digests). */
function report(outcome: Outcome, userId: string, log: FastifyBaseLogger): void {
  const counts = (m: FactorMatch) => ({
    matched: m.matched,
    of: m.bound,
    required: m.required,
    identifying: m.identifying,
  });
  switch (outcome.kind) {
    case 'same':
      return;
    case 'bound':
      log.info({ event: 'device.bound', userId }, 'device bound');
      return;
    case 'recorded':
      log.info({ event: 'device.factorsRecorded', userId }, 'bound device sent its factor digests');
      return;
    case 'drifted': {
      const { changed, missing, added } = outcome.match;
      log.warn(
        { event: 'device.drifted', userId, changed, missing, added, ...counts(outcome.match) },
        `device binding moved to a drifted device (changed: ${changed.join(', ') || 'none'}; missing: ${missing.join(', ') || 'none'})`,
      );
      return;
    }
    case 'refused': {
      const { match, cooldown } = outcome;
      const detail =
        match === undefined
          ? { reason: 'hash' }
          : { reason: cooldown ? 'cooldown' : 'drift', ...counts(match) };
      log.info({ event: 'device.refused', userId, ...detail }, 'other device refused');
      throw new SluiceError(
        'ERR_DEVICE_NOT_BOUND',
        cooldown ? COOLDOWN_MESSAGE : DEVICE_NOT_BOUND_MESSAGE,
      );
    }
  }
}
