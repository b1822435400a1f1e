import { createHash } from 'node:crypto';

/** Version tag that starts the canonical form; a new factor set gets a new tag. */
export const HARDWARE_FORMAT = 'sluice-hw-v1';

/** The stable factors a device hash is made of, in canonical order. Layout in docs/FORMAT.md. */
export const HARDWARE_FACTORS = [
  'system.uuid',
  'system.manufacturer',
  'system.model',
  'system.serial',
  'board.serial',
  'cpu.model',
  'cpu.cores',
  'disk.serial',
  'memory.gib',
  'os.machineId',
] as const;

export type HardwareFactor = (typeof HARDWARE_FACTORS)[number];

export interface HardwareInfo {
  /** Factors that had a real value on this device, normalised (absent ones are left out). */
  factors: Partial<Record<HardwareFactor, string>>;
  /** The exact text that is hashed. */
  canonical: string;
  /** Lower-case hex SHA-256 of `canonical` (or the `SLUICE_HARDWARE_HASH` override). */
  hash: string;
  /** Where the hash came from. */
  source: 'systeminformation' | 'env';
}

// Values firmware writes when a field was never filled in: they identify nothing.
const PLACEHOLDERS = new Set([
  '',
  '-',
  '0',
  'none',
  'n/a',
  'na',
  'default string',
  'not specified',
  'not applicable',
  'system serial number',
  'system product name',
  'to be filled by o.e.m.',
  'to be filled by oem',
  'o.e.m.',
  'unknown',
  '00000000-0000-0000-0000-000000000000',
  'ffffffff-ffff-ffff-ffff-ffffffffffff',
  '03000200-0400-0500-0006-000700080009',
]);

/** Trims, collapses white space and lower-cases; placeholders and control characters → undefined. */
export function normaliseFactor(value: unknown): string | undefined {
  if (typeof value !== 'string' && typeof value !== 'number') return undefined;
  const v = String(value).trim().replace(/\s+/g, ' ').toLowerCase();
  if (PLACEHOLDERS.has(v) || /\p{Cc}/u.test(v)) return undefined;
  return v;
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
 * for tests that act as several devices on one machine.
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

async function readHardware(): Promise<HardwareInfo> {
  const factors = await readFactors();
  const canonical = canonicalHardware(factors);
  const override = process.env.SLUICE_HARDWARE_HASH;
  if (override !== undefined && override !== '') {
    if (!OVERRIDE.test(override)) {
      throw new RangeError('SLUICE_HARDWARE_HASH must be 64 lower-case hex digits');
    }
    return { factors, canonical, hash: override, source: 'env' };
  }
  return {
    factors,
    canonical,
    hash: hashCanonicalHardware(canonical),
    source: 'systeminformation',
  };
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
