import { UsageError } from './command.js';

export const MiB = 1024 * 1024;

/**
 * Byte multiples: SI (`kB`, `MB`, `GB`, `TB`: powers of 1000), IEC (`KiB` … `TiB`: powers of
 * 1024), and the single letters `k`, `M`, `G`, `T` as IEC, as rclone and earlier sluice read them.
 */
const UNITS: Record<string, number> = {
  '': 1,
  b: 1,
  kb: 1e3,
  mb: 1e6,
  gb: 1e9,
  tb: 1e12,
  k: 1024,
  kib: 1024,
  m: MiB,
  mib: MiB,
  g: 1024 * MiB,
  gib: 1024 * MiB,
  t: 1024 * 1024 * MiB,
  tib: 1024 * 1024 * MiB,
};

/**
 * `1GB`, `1.5GiB`, `500M`, `10k`, `1000` (bytes), case-insensitive, rounded to a whole byte;
 * anything else (`1.2.3GB`, `-1`, `GB`, `1e9`) is a usage error.
 */
export function parseSize(text: string): number {
  const m = /^(\d+(?:\.\d+)?|\.\d+)\s*([a-z]*)$/i.exec(text.trim());
  const unit = m ? UNITS[(m[2] ?? '').toLowerCase()] : undefined;
  const bytes = m && unit !== undefined ? Math.round(Number(m[1]) * unit) : Number.NaN;
  if (!Number.isSafeInteger(bytes)) {
    throw new UsageError(
      `bad size '${text}': a number and an optional unit, such as 500M, 1.5GiB or 1GB ` +
        '(kB, MB, GB, TB are powers of 1000; k, M, G, T and KiB, MiB, GiB, TiB of 1024)',
    );
  }
  return bytes;
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
