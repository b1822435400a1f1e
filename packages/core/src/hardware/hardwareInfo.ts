import { createHash } from 'node:crypto';
import type { HardwareFactorDigests } from '@sluice/protocol';
import { factorDigests, factorsOverride } from './factorDigests.js';
import { HARDWARE_FACTORS, type HardwareFactor, normaliseFactor } from './factors.js';

/** Version tag that starts the canonical form; a new factor set gets a new tag. */
export const HARDWARE_FORMAT = 'sluice-hw-v1';

export { HARDWARE_FACTORS, type HardwareFactor, normaliseFactor };

export interface HardwareInfo {
  /** Factors that had a real value on this device, normalised (absent ones are left out). */
  factors: Partial<Record<HardwareFactor, string>>;
  /** The exact text that is hashed. */
  canonical: string;
  /** Lower-case hex SHA-256 of `canonical` (or the `SLUICE_HARDWARE_HASH` override). */
  hash: string;
  /**
   * One digest per present factor (docs/FORMAT.md §7), sent beside the hash so that the server
   * can accept this device when one factor drifted. Undefined when `SLUICE_HARDWARE_HASH` chose
   * the hash and `SLUICE_HARDWARE_FACTORS` gave no factors: the real factors then describe
   * another identity than the hash, and several such devices on one machine would share them.
   */
  digests: HardwareFactorDigests | undefined;
  /** Where the hash (or the factors) came from: the `SLUICE_HARDWARE_*` overrides are `env`. */
  source: 'systeminformation' | 'env';
}

/**
 * The canonical form: the format tag, then one `name=value` line per present factor in the order
 * of HARDWARE_FACTORS, each line ending in `\n`. Unknown names are refused.
 */
export function canonicalHardware(factors: Partial<Record<HardwareFactor, string>>): string {
  const lines = [HARDWARE_FORMAT];
  for (const name of Object.keys(factors)) {
    if (!(HARDWARE_FACTORS as readonly string[]).includes(name)) {
      throw new RangeError(`unknown hardware factor '${name}'`);
    }
  }
  for (const name of HARDWARE_FACTORS) {
    const value = normaliseFactor(factors[name]);
    if (value !== undefined) lines.push(`${name}=${value}`);
  }
  return `${lines.join('\n')}\n`;
}

export function hashCanonicalHardware(canonical: string): string {
  return createHash('sha256').update(canonical, 'utf8').digest('hex');
}

const OVERRIDE = /^[0-9a-f]{64}$/;

let cached: Promise<HardwareInfo> | undefined;

/**
 * Reads this device's stable hardware factors with `systeminformation` (never volatile values such
 * as free memory, uptime or addresses) and hashes their canonical form. Read once per process.
 * `SLUICE_HARDWARE_HASH` (64 lower-case hex digits) replaces the hash, for provisioning images and
 * for tests that act as several devices on one machine; `SLUICE_HARDWARE_FACTORS` (JSON) replaces
 * the factors read, for tests and VMs that simulate a device and its drift.
 */
export function hardwareInfo(): Promise<HardwareInfo> {
  cached ??= readHardware().catch((e: unknown) => {
    cached = undefined;
    throw e;
  });
  return cached;
}

/** `hardwareInfo().hash`: what the device envelope and the device binding use. */
export async function hardwareHash(): Promise<string> {
  return (await hardwareInfo()).hash;
}

/** `hardwareInfo().digests`: what a pull sends as `hardwareFactors` beside the hash. */
export async function hardwareFactorDigests(): Promise<HardwareFactorDigests | undefined> {
  return (await hardwareInfo()).digests;
}

async function readHardware(): Promise<HardwareInfo> {
  const given = factorsOverride(process.env.SLUICE_HARDWARE_FACTORS);
  const factors = given ?? (await readFactors());
  const canonical = canonicalHardware(factors);
  const digests = factorDigests(factors);
  const override = process.env.SLUICE_HARDWARE_HASH;
  if (override !== undefined && override !== '') {
    if (!OVERRIDE.test(override)) {
      throw new RangeError('SLUICE_HARDWARE_HASH must be 64 lower-case hex digits');
    }
    const sent = given === undefined ? undefined : digests;
    return { factors, canonical, hash: override, digests: sent, source: 'env' };
  }
  const source = given === undefined ? 'systeminformation' : 'env';
  return { factors, canonical, hash: hashCanonicalHardware(canonical), digests, source };
}

async function readFactors(): Promise<Partial<Record<HardwareFactor, string>>> {
  // Loaded on first use: it is large, and only devices need it.
  const { default: si } = await import('systeminformation');
  const [system, board, cpu, disks, mem, os] = await Promise.all([
    si.system(),
    si.baseboard(),
    si.cpu(),
    si.diskLayout(),
    si.mem(),
    si.osInfo(),
  ]);
  // The primary disk: the first fixed disk with a serial, by device name (sda before sdb).
  const disk = [...disks]
    .filter((d) => normaliseFactor(d.serialNum) !== undefined && !/usb/i.test(d.interfaceType))
    .sort((a, b) => a.device.localeCompare(b.device))[0];
  const raw: Record<HardwareFactor, unknown> = {
    'system.uuid': system.uuid,
    'system.manufacturer': system.manufacturer,
    'system.model': system.model,
    'system.serial': system.serial,
    'board.serial': board.serial,
    'cpu.model': [cpu.manufacturer, cpu.brand].filter(Boolean).join(' '),
    'cpu.cores': cpu.cores,
    'disk.serial': disk?.serialNum,
    // Whole GiB, rounded: the kernel's reservation moves `total` by a few MiB between boots.
    'memory.gib': Math.round(mem.total / 2 ** 30),
    'os.machineId': os.serial,
  };
  const factors: Partial<Record<HardwareFactor, string>> = {};
  for (const name of HARDWARE_FACTORS) {
    const value = normaliseFactor(raw[name]);
    if (value !== undefined) factors[name] = value;
  }
  return factors;
}
