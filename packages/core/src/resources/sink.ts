import { type FileHandle, open } from 'node:fs/promises';
import { writeFully } from '../crypto/fileIo.js';
import type { PlainPiece } from '../format/blobChunkDecryptor.js';
import { throwIfAborted } from '../platform/abort.js';
import { commitTemps, openOutputFile } from '../platform/atomicOutput.js';

/** Destination of plaintext pieces: a temp file (pwrite) or a buffer. */
export interface Sink {
  write(piece: PlainPiece): Promise<void>;
}

/** Writes the plaintext into a sink and says how large it came out (and whatever else it adds). */
export type Fill<T extends { size: number }> = (sink: Sink) => Promise<T>;

/**
 * Plaintext into a buffer of `capacity` bytes, handed back cut to the plaintext's size. What lies
 * past that size is zeroed, and on any failure the whole buffer is, so no partial plaintext stays
 * in memory for the collector to find.
 */
export async function intoBuffer<T extends { size: number }>(
  capacity: number,
  fill: Fill<T>,
): Promise<T & { data: Buffer }> {
  const out = Buffer.alloc(capacity);
  try {
    const filled = await fill({
      write: async (p) => {
        p.data.copy(out, p.offset);
      },
    });
    out.fill(0, filled.size);
    return { ...filled, data: out.subarray(0, filled.size) };
  } catch (e) {
    out.fill(0);
    throw e;
  }
}

/**
 * Plaintext into an output file for `path` (anonymous where the platform allows, so a killed
 * pull leaves no partial plaintext; else a private temp beside it), fsynced and renamed into
 * place once complete. On any failure or abort nothing appears at `path`.
 */
export async function intoFile<T extends { size: number }>(
  path: string,
  signal: AbortSignal | undefined,
  fill: Fill<T>,
): Promise<T & { path: string }> {
  const out = await openOutputFile(path);
  let fh: FileHandle | undefined;
  try {
    fh = await open(out.path, 'r+');
    const handle = fh;
    const filled = await fill({ write: (p) => writeFully(handle, p.data, p.offset) });
    await handle.truncate(filled.size);
    await handle.sync();
    await handle.close();
    fh = undefined;
    throwIfAborted(signal);
    await commitTemps([await out.name()], [path], { fsync: false });
    return { ...filled, path };
  } catch (e) {
    await fh?.close().catch(() => {});
    await out.discard();
    throw out.blame(e);
  }
}
