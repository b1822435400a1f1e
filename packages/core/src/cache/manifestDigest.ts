import { createHash } from 'node:crypto';
import type { Manifest } from '@sluice/protocol';

/**
 * The cache key of a big part: SHA-256 of its manifest's JSON in the canonical field order (the
 * order `validateManifest` returns). The manifest holds every chunk's SHA-256, so the key names
 * the bytes themselves: a new version, a re-upload or another chunk size is another key.
 */
export function manifestDigest(m: Manifest): string {
  const canonical = {
    version: m.version,
    algorithm: m.algorithm,
    blobSize: m.blobSize,
    smallSize: m.smallSize,
    bigSize: m.bigSize,
    chunkSize: m.chunkSize,
    chunks: m.chunks,
  };
  return createHash('sha256').update(JSON.stringify(canonical)).digest('hex');
}
