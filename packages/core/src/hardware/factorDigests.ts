import { createHash } from 'node:crypto';
import type { HardwareFactorDigests } from '@sluice/protocol';
import { HARDWARE_FACTORS, type HardwareFactor, normaliseFactor } from './factors.js';

/** Version tag of a factor digest's input; a new digest scheme gets a new tag. */
export const HARDWARE_FACTOR_FORMAT = 'sluice-hw-factor-v1';

/**
 * The digest of one factor: lower-case hex SHA-256 of `sluice-hw-factor-v1\nname=value\n`, the
 * value normalised as in the canonical form (docs/FORMAT.md §7). The server keeps these, never
 * the values; undefined when the value is absent (a placeholder, empty, …).
 */
export function factorDigest(name: HardwareFactor, value: unknown): string | undefined {
  const v = normaliseFactor(value);
  if (v === undefined) return undefined;
  return createHash('sha256')
    .update(`${HARDWARE_FACTOR_FORMAT}\n${name}=${v}\n`, 'utf8')
    .digest('hex');
}

/** One digest per present factor, in canonical order. Unknown names are refused. */
export function factorDigests(
  factors: Partial<Record<HardwareFactor, unknown>>,
): HardwareFactorDigests {
  for (const name of Object.keys(factors)) {
    if (!(HARDWARE_FACTORS as readonly string[]).includes(name)) {
      throw new RangeError(`unknown hardware factor '${name}'`);
    }
  }
  const digests: HardwareFactorDigests = {};
  for (const name of HARDWARE_FACTORS) {
    const digest = factorDigest(name, factors[name]);
    if (digest !== undefined) digests[name] = digest;
  }
  return digests;
}

/**
 * `SLUICE_HARDWARE_FACTORS`: a JSON object of raw factor values (`{"disk.serial": "S6B0…"}`) that
 * replaces what `systeminformation` reads, for tests and VMs that simulate a device (and its
 * drift). Undefined when unset; a RangeError naming the variable when it is not such an object.
 */
export function factorsOverride(
  text: string | undefined,
): Partial<Record<HardwareFactor, string>> | undefined {
  if (text === undefined || text === '') return undefined;
  const bad = (why: string) =>
    new RangeError(
      `SLUICE_HARDWARE_FACTORS must be a JSON object of hardware factors (${HARDWARE_FACTORS.join(', ')}) to strings or numbers: ${why}`,
    );
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw bad('it is not JSON');
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw bad('it is not an object');
  }
  const factors: Partial<Record<HardwareFactor, string>> = {};
  for (const [name, value] of Object.entries(parsed)) {
    if (!(HARDWARE_FACTORS as readonly string[]).includes(name)) {
      throw bad(`'${name}' is not a factor`);
    }
    if (typeof value !== 'string' && typeof value !== 'number') {
      throw bad(`'${name}' is not a string or a number`);
    }
    const v = normaliseFactor(value);
    if (v !== undefined) factors[name as HardwareFactor] = v;
  }
  return factors;
}
