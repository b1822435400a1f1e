import { join } from 'node:path';
import type { EnvelopeResource, Manifest } from '@sluice/protocol';
import { entryTrailer } from './entryTrailer.js';

/**
 * The names in a cache directory, all keyed by `manifestDigest`:
 *
 * - `<digest>.big`: a complete entry, the big part followed by a trailer with its manifest and
 *   resource (see entryTrailer.ts); it appears only by rename, after an fsync.
 * - `<digest>.big.partial`: a download in progress or cut off; the next fill resumes from the
 *   chunks in it that still match their digests.
 * - `<digest>.lock`: held while a process fills, repairs or removes that entry (see FileLock).
 */
export const ENTRY_NAME = /^([0-9a-f]{64})\.big(\.partial)?$/;
/** What a process killed at the wrong moment can leave: a lock, a break guard, a lock's temp file. */
export const LEFTOVER =
  /^(?:[0-9a-f]{64}\.lock(?:\.break)?|\.[0-9a-f]{64}\.lock(?:\.break)?\.sluice-[0-9a-f]+\.tmp)$/;
const DIGEST = /^[0-9a-f]{64}$/;

export function entryPath(dir: string, digest: string): string {
  return join(dir, `${checkDigest(digest)}.big`);
}

export function partialPath(dir: string, digest: string): string {
  return `${entryPath(dir, digest)}.partial`;
}

export function lockPath(dir: string, digest: string): string {
  return join(dir, `${checkDigest(digest)}.lock`);
}

/** Bytes an entry of `m` takes with its trailer (the trailer of a given manifest has a fixed size). */
export function entryBytes(m: Manifest, resource?: EnvelopeResource): number {
  return m.bigSize + entryTrailer(m, resource).length;
}

function checkDigest(digest: string): string {
  if (typeof digest !== 'string' || !DIGEST.test(digest)) {
    throw new RangeError(`digest must be 64 lower-case hex digits, got ${JSON.stringify(digest)}`);
  }
  return digest;
}
