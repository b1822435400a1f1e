import type { FileHandle } from 'node:fs/promises';
import {
  type EnvelopeResource,
  isEnvelopeResource,
  type Manifest,
  validateManifest,
} from '@sluice/protocol';

/**
 * A cache entry is the big part followed by a trailer that describes it, so `verify` can check an
 * entry offline and the manifest arrives with the bytes in the same rename:
 *
 *   big part (manifest.bigSize bytes) ‖ JSON {format: 1, manifest, resource} ‖ u32 BE JSON length ‖ MAGIC
 *
 * The chunks keep their offsets (chunk i at i × chunkSize), so a loader reads them as before.
 */
export const TRAILER_MAGIC = Buffer.from('SLUICEC1', 'latin1');
const TAIL_BYTES = 4 + TRAILER_MAGIC.length;
/** Far above any real manifest (64 hex digits per chunk), far below what a damaged length could ask. */
const MAX_JSON_BYTES = 64 * 1024 * 1024;

export interface EntryTrailer {
  manifest: Manifest;
  /** The resource version the part was fetched for, when the writer knew it. */
  resource?: EnvelopeResource;
}

/** The trailer bytes for an entry of `manifest`. */
export function entryTrailer(manifest: Manifest, resource?: EnvelopeResource): Buffer {
  const json = Buffer.from(JSON.stringify({ format: 1, manifest, resource: resource ?? null }));
  const tail = Buffer.alloc(TAIL_BYTES);
  tail.writeUInt32BE(json.length, 0);
  TRAILER_MAGIC.copy(tail, 4);
  return Buffer.concat([json, tail]);
}

/** The trailer of an open entry of `size` bytes, or why it has none that can be trusted. */
export async function readEntryTrailer(
  fh: FileHandle,
  size: number,
): Promise<EntryTrailer | { missing: string }> {
  if (size < TAIL_BYTES) return { missing: 'too short for a trailer' };
  const tail = Buffer.alloc(TAIL_BYTES);
  await fh.read(tail, 0, TAIL_BYTES, size - TAIL_BYTES);
  if (!tail.subarray(4).equals(TRAILER_MAGIC)) return { missing: 'no stored manifest' };
  const length = tail.readUInt32BE(0);
  if (length > MAX_JSON_BYTES || length > size - TAIL_BYTES) {
    return { missing: 'damaged trailer (bad length)' };
  }
  const json = Buffer.alloc(length);
  const { bytesRead } = await fh.read(json, 0, length, size - TAIL_BYTES - length);
  if (bytesRead !== length) return { missing: 'damaged trailer (short read)' };
  let parsed: { format?: unknown; manifest?: unknown; resource?: unknown };
  let manifest: Manifest;
  try {
    parsed = JSON.parse(json.toString('utf8')) as typeof parsed;
    if (parsed.format !== 1) return { missing: `unknown trailer format ${String(parsed.format)}` };
    manifest = validateManifest(parsed.manifest);
  } catch (e) {
    return { missing: `damaged trailer (${(e as Error).message})` };
  }
  if (manifest.bigSize !== size - TAIL_BYTES - length) {
    return { missing: 'damaged trailer (its manifest does not match the entry size)' };
  }
  const resource = readResource(parsed.resource);
  return resource === undefined ? { manifest } : { manifest, resource };
}

function readResource(v: unknown): EnvelopeResource | undefined {
  if (!isEnvelopeResource(v)) return undefined;
  return { folder: v.folder, name: v.name, version: v.version };
}
