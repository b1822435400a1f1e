import { UsageError } from './command.js';

export const MiB = 1024 * 1024;

const UNITS: Record<string, number> = {
  b: 1,
  kib: 1024,
  k: 1024,
  mib: MiB,
  m: MiB,
  gib: 1024 * MiB,
  g: 1024 * MiB,
};

/** `512MiB`, `2GiB`, `64k`, `1000` (bytes). */
export function parseSize(text: string): number {
  const m = /^(\d+)\s*([a-z]*)$/i.exec(text.trim());
  const unit = m ? UNITS[(m[2] || 'b').toLowerCase()] : undefined;
  if (!m || unit === undefined) throw new UsageError(`bad size '${text}' (try 512MiB or 2GiB)`);
  return Number(m[1]) * unit;
}

export function formatSize(n: number): string {
  if (n >= 1024 * MiB) return `${(n / (1024 * MiB)).toFixed(2)} GiB`;
  if (n >= MiB) return `${(n / MiB).toFixed(1)} MiB`;
  if (n >= 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${n} bytes`;
}

/** Decimal MB per second, as disks and networks are rated. */
export function mbPerSec(bytes: number, ms: number): number {
  return ms > 0 ? Math.round((bytes / 1e6 / (ms / 1000)) * 10) / 10 : 0;
}
