import { constants as fsConstants } from 'node:fs';
import { copyFile, type FileHandle, lstat, open, rename, rm, utimes } from 'node:fs/promises';
import { dirname } from 'node:path';
import { chunkLength, type EnvelopeResource, type Manifest, SluiceError } from '@sluice/protocol';
import { writeFully } from '../crypto/fileIo.js';
import { verifyChunkAsync } from '../format/manifest.js';
import { throwIfAborted } from '../platform/abort.js';
import { fsyncPath, tempPathFor } from '../platform/atomicOutput.js';
import { toSluiceError } from '../platform/toSluiceError.js';
import { entryTrailer, readEntryTrailer } from './entryTrailer.js';
import { manifestDigest } from './manifestDigest.js';
import type { PartConsumer, ProvideOptions } from './partConsumer.js';

/** What reading an entry found: nothing, a corrupt file (by inode), or every chunk intact. */
export type EntryRead = { kind: 'miss' } | { kind: 'corrupt'; ino: number } | EntryHit;

export interface EntryHit {
  kind: 'hit';
  ino: number;
  /** The entry stores this manifest (and the resource, when the caller knows it). */
  trailerOk: boolean;
}

/** Reads the entry at `path` (key `digest`), verifying and replaying each chunk; stops at the first bad one. */
export async function replayEntry(
  path: string,
  digest: string,
  m: Manifest,
  consumer: PartConsumer,
  options: ProvideOptions,
): Promise<EntryRead> {
  let fh: FileHandle;
  try {
    fh = await open(path, 'r');
  } catch {
    return { kind: 'miss' };
  }
  try {
    const st = await fh.stat();
    if (st.size < m.bigSize || !(await replayChunks(fh, m, consumer, options.signal))) {
      return { kind: 'corrupt', ino: st.ino };
    }
    const trailer = await readEntryTrailer(fh, st.size);
    const trailerOk =
      !('missing' in trailer) &&
      manifestDigest(trailer.manifest) === digest &&
      (options.resource === undefined || trailer.resource !== undefined);
    return { kind: 'hit', ino: st.ino, trailerOk };
  } finally {
    await fh.close();
  }
}

/** Replays every chunk of an entry in index order; false at the first one that does not match. */
async function replayChunks(
  fh: FileHandle,
  m: Manifest,
  consumer: PartConsumer,
  signal: AbortSignal | undefined,
): Promise<boolean> {
  // Chunk i+1 is read and hashed while chunk i is used: two buffers, taken in turn.
  const buffers = [chunkBuffer(m), chunkBuffer(m)];
  const load = (i: number) => readVerifiedChunk(fh, m, i, buffers[i % 2] as Buffer);
  let next: Promise<Buffer | undefined> | undefined = m.chunks.length > 0 ? load(0) : undefined;
  try {
    for (let i = 0; i < m.chunks.length; i++) {
      const data = await next;
      next = undefined;
      if (data === undefined) return false;
      throwIfAborted(signal);
      if (i + 1 < m.chunks.length) next = load(i + 1);
      await consumer.replay(i, data);
    }
  } finally {
    // Never close the file under a read in flight (an early return or a failed replay).
    await next?.catch(() => {});
  }
  return true;
}

/**
 * Downloads into `partial` (resuming it), gives it its trailer, then renames it to `entry`. With
 * `options.onUnusable`, a write to `partial` that fails stops the storing, not the download:
 * `partial` is then removed (never renamed) and `onUnusable` gets the error.
 */
export async function fillEntry(
  partial: string,
  entry: string,
  m: Manifest,
  consumer: PartConsumer,
  options: ProvideOptions,
): Promise<void> {
  let fh: FileHandle | undefined = await open(
    partial,
    fsConstants.O_RDWR | fsConstants.O_CREAT,
    0o600,
  );
  let lost: { error: unknown } | undefined;
  const storing = async (write: () => Promise<void>) => {
    if (lost !== undefined) return;
    try {
      await write();
    } catch (e) {
      if (options.onUnusable === undefined) throw e;
      lost = { error: e };
    }
  };
  try {
    const skip = new Set(await replayPartial(fh, m, consumer, options.signal));
    if (skip.size < m.chunks.length) {
      const out = fh;
      await consumer.download(skip, (index, data) =>
        storing(() => writeFully(out, data, index * m.chunkSize)),
      );
    }
    const done = fh;
    await storing(() => writeTrailer(done, m, options.resource));
    await fh.close();
    fh = undefined;
    throwIfAborted(options.signal);
    if (lost === undefined) await renameDurably(partial, entry);
  } finally {
    await fh?.close().catch(() => {});
    if (lost !== undefined) await rm(partial, { force: true }).catch(() => {});
  }
  if (lost !== undefined) options.onUnusable?.(lost.error);
}

/** Replays every chunk of a partial download that matches its digest; returns their indexes. */
async function replayPartial(
  fh: FileHandle,
  m: Manifest,
  consumer: PartConsumer,
  signal: AbortSignal | undefined,
): Promise<number[]> {
  const size = (await fh.stat()).size;
  const found: number[] = [];
  const buffer = chunkBuffer(m);
  for (let i = 0; i < m.chunks.length; i++) {
    throwIfAborted(signal);
    if (i * m.chunkSize + chunkLength(m, i) > size) break;
    const data = await readChunk(fh, m, i, buffer);
    if (data === undefined) break;
    if (!(await matches(m, i, data))) continue; // a hole or a torn write: fetched again
    await consumer.replay(i, data);
    found.push(i);
  }
  return found;
}

/** Gives the entry at `path` the trailer of `m`, if it is still the file (inode) that verified. */
export async function rewriteTrailer(
  path: string,
  m: Manifest,
  resource: EnvelopeResource | undefined,
  ino: number,
): Promise<void> {
  const fh = await open(path, 'r+').catch(() => undefined);
  if (fh === undefined) return;
  try {
    if ((await fh.stat()).ino === ino) await writeTrailer(fh, m, resource);
  } finally {
    await fh.close();
  }
}

/**
 * Copies the big part at `src` (or moves it, with `move`) into a temp file beside `entry`, gives
 * it its trailer, fsyncs it and renames it into place. A file of another size than the manifest's
 * big part is refused.
 */
export async function copyIntoEntry(
  src: string,
  entry: string,
  m: Manifest,
  options: { resource?: EnvelopeResource; move?: boolean; signal?: AbortSignal },
): Promise<void> {
  const { size } = await lstat(src).catch((e: unknown) => {
    throw toSluiceError(e, `caching ${src}`);
  });
  if (size !== m.bigSize) {
    throw new SluiceError(
      'ERR_BAD_BLOB',
      `${src} holds ${size} bytes but its manifest describes a big part of ${m.bigSize}`,
    );
  }
  const tmp = tempPathFor(entry);
  try {
    await (options.move ? moveFile(src, tmp) : copyFile(src, tmp, fsConstants.COPYFILE_EXCL));
    const fh = await open(tmp, 'r+');
    try {
      await fh.chmod(0o600);
      await writeTrailer(fh, m, options.resource);
    } finally {
      await fh.close();
    }
    throwIfAborted(options.signal);
    await renameDurably(tmp, entry);
  } catch (e) {
    await rm(tmp, { force: true });
    throw toSluiceError(e, `caching ${src}`);
  }
}

/** The resource an entry's trailer records, if any. */
export async function resourceOf(
  path: string,
  size: number,
): Promise<EnvelopeResource | undefined> {
  const trailer = await withFile(path, (fh) => readEntryTrailer(fh, size));
  return trailer === undefined || 'missing' in trailer ? undefined : trailer.resource;
}

/** Chunk `i` read into `buffer` when it is whole and matches its digest, else undefined. */
export async function readVerifiedChunk(
  fh: FileHandle,
  m: Manifest,
  i: number,
  buffer: Buffer,
): Promise<Buffer | undefined> {
  const data = await readChunk(fh, m, i, buffer);
  return data !== undefined && (await matches(m, i, data)) ? data : undefined;
}

/** A buffer that holds the largest chunk of `m`. */
export function chunkBuffer(m: Manifest): Buffer {
  return Buffer.allocUnsafe(Math.min(m.chunkSize, Math.max(m.bigSize, 1)));
}

/** Runs `fn` on the file at `path` opened for reading; undefined when it cannot be opened. */
export async function withFile<T>(
  path: string,
  fn: (fh: FileHandle) => Promise<T>,
): Promise<T | undefined> {
  let fh: FileHandle;
  try {
    fh = await open(path, 'r');
  } catch {
    return undefined;
  }
  try {
    return await fn(fh);
  } finally {
    await fh.close();
  }
}

/** Marks an entry as just used: least recently used = oldest mtime. */
export async function touch(path: string): Promise<void> {
  const now = new Date();
  await utimes(path, now, now).catch(() => {});
}

async function readChunk(
  fh: FileHandle,
  m: Manifest,
  i: number,
  buffer: Buffer,
): Promise<Buffer | undefined> {
  const data = buffer.subarray(0, chunkLength(m, i));
  const { bytesRead } = await fh.read(data, 0, data.length, i * m.chunkSize);
  return bytesRead === data.length ? data : undefined;
}

async function matches(m: Manifest, i: number, data: Buffer): Promise<boolean> {
  try {
    await verifyChunkAsync(m, i, data);
    return true;
  } catch {
    return false;
  }
}

/** Cuts the open entry to its big part and appends the trailer of `m`, then fsyncs it. */
async function writeTrailer(
  fh: FileHandle,
  m: Manifest,
  resource: EnvelopeResource | undefined,
): Promise<void> {
  await fh.truncate(m.bigSize);
  await writeFully(fh, entryTrailer(m, resource), m.bigSize);
  await fh.sync();
}

/** Moves a file, or copies it where the rename would cross file systems. */
async function moveFile(src: string, dst: string): Promise<void> {
  await rename(src, dst).catch(async (e: NodeJS.ErrnoException) => {
    if (e.code !== 'EXDEV') throw e;
    await copyFile(src, dst, fsConstants.COPYFILE_EXCL);
  });
}

async function renameDurably(from: string, to: string): Promise<void> {
  await rename(from, to);
  // The directory's fsync makes the rename survive a power cut; some filesystems refuse it.
  await fsyncPath(dirname(to)).catch(() => {});
}
