// The factor names and their normalisation: shared by the hash and the factor digests.

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
