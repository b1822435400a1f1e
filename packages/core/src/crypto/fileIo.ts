import type { FileHandle } from 'node:fs/promises';
import { SluiceError } from '@sluice/protocol';
import { throwIfAborted } from '../platform/abort.js';

/** Buffer size for the node backend's file I/O. */
export const IO_BUFFER_BYTES = 8 * 1024 * 1024;

export async function readFully(
  fh: FileHandle,
  buf: Buffer,
  length: number,
  position: number,
): Promise<void> {
  let done = 0;
  while (done < length) {
    const { bytesRead } = await fh.read(buf, done, length - done, position + done);
    if (bytesRead === 0) {
      throw new SluiceError('ERR_IO', `file ended at byte ${position + done}, expected more data`);
    }
    done += bytesRead;
  }
}

export async function writeFully(fh: FileHandle, buf: Buffer, position: number): Promise<void> {
  let done = 0;
  while (done < buf.length) {
    const { bytesWritten } = await fh.write(buf, done, buf.length - done, position + done);
    done += bytesWritten;
  }
}

/**
 * Yields [start, end) of the file in pieces of at most `bufSize` bytes, reading the next piece
 * while the caller works on the current one. Three buffers rotate, so a piece stays valid until
 * two more have been requested: a caller may keep one asynchronous write of the previous piece
 * in flight while it transforms the current one.
 */
export async function* readPieces(
  fh: FileHandle,
  start: number,
  end: number,
  signal: AbortSignal | undefined,
  bufSize = IO_BUFFER_BYTES,
): AsyncGenerator<Buffer> {
  const size = Math.min(bufSize, Math.max(end - start, 0));
  if (size === 0) return;
  const bufs = [Buffer.allocUnsafe(size), Buffer.allocUnsafe(size), Buffer.allocUnsafe(size)];
  let pos = start;
  let turn = 0;
  const next = (): Promise<Buffer> | null => {
    if (pos >= end) return null;
    const buf = bufs[turn++ % 3] as Buffer;
    const n = Math.min(size, end - pos);
    const p = readFully(fh, buf, n, pos).then(() => buf.subarray(0, n));
    p.catch(() => {}); // handled when awaited; avoids an unhandled rejection meanwhile
    pos += n;
    return p;
  };
  let pending = next();
  try {
    while (pending) {
      const piece = await pending;
      throwIfAborted(signal);
      pending = next();
      yield piece;
    }
  } finally {
    if (pending) await pending.catch(() => {});
  }
}

/** Streams [start, end) of `src` through `transform` into `dst` at `dstStart`; returns bytes written. */
export async function pump(
  src: FileHandle,
  start: number,
  end: number,
  dst: FileHandle,
  dstStart: number,
  signal: AbortSignal | undefined,
  transform: (piece: Buffer) => Buffer = (piece) => piece,
): Promise<number> {
  let out = dstStart;
  let writing: Promise<void> = Promise.resolve();
  try {
    for await (const piece of readPieces(src, start, end, signal)) {
      const data = transform(piece);
      await writing;
      writing = writeFully(dst, data, out);
      writing.catch(() => {});
      out += data.length;
    }
    await writing;
  } finally {
    await writing.catch(() => {});
  }
  return out - dstStart;
}
