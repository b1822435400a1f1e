import { SluiceError } from '@sluice/core';
import { SERVE_ENV } from './serveEnv.js';
import type { SettingSources } from './settingSources.js';

/**
 * Retention: `--keep N`, else `SLUICE_KEEP_VERSIONS`, else the file's `keepVersions` (left to
 * createServer to check). Typed values must be whole numbers ≥ 0 (0 keeps every version).
 */
export function keepVersions(src: SettingSources): number | undefined {
  const picked = src.pick(
    'keepVersions',
    [src.flags.keep, '--keep'],
    src.fromEnv(SERVE_ENV.keepVersions),
    src.inFile(src.file.keepVersions),
  );
  if (typeof picked !== 'string') return picked as number | undefined;
  if (!/^\d{1,9}$/.test(picked)) {
    const origin = src.origins.get('keepVersions');
    throw new SluiceError(
      'ERR_INVALID_ARG',
      `${origin} must be a whole number of versions ≥ 0 (0 keeps all), got '${picked.slice(0, 32)}'`,
    );
  }
  return Number(picked);
}
