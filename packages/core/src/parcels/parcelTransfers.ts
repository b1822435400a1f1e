import { createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Readable, Transform, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { atomicOutput } from '../platform/atomicOutput.js';
import { wrapIo } from './parcelErrors.js';

/** Hashes and counts what passes through. */
export class Digest extends Transform {
  size = 0;
  private readonly hash = createHash('sha256');
  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    this.size += chunk.length;
    this.hash.update(chunk);
    done(null, chunk);
  }
  hex(): string {
    return this.hash.copy().digest('hex');
  }
}

/**
 * Copies `source` to a private temp file (a stream's hash must be known before its upload
 * starts), runs `use` on it, then removes it.
 */
export async function spooled<T>(
  source: Readable,
  signal: AbortSignal | undefined,
  use: (path: string) => Promise<T>,
): Promise<T> {
  const dir = await mkdtemp(join(tmpdir(), 'sluice-parcel-'));
  try {
    const path = join(dir, 'content');
    await pipeline(source, createWriteStream(path, { mode: 0o600, flags: 'wx' }), {
      signal,
    }).catch((e: unknown) => {
      throw wrapIo(e, signal, 'reading the parcel stream');
    });
    return await use(path);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/**
 * Receives a parcel's bytes through `check` into memory (`to` is 'buffer') or into the file `to`,
 * renamed into place only once `verify` accepted what `check` saw.
 */
export async function receive(
  source: Readable,
  check: Digest,
  to: string,
  what: string,
  signal: AbortSignal | undefined,
  verify: () => void,
): Promise<Buffer | undefined> {
  const failed = (e: unknown) => {
    throw wrapIo(e, signal, `reading ${what}`);
  };
  if (to === 'buffer') {
    const chunks: Buffer[] = [];
    await pipeline(
      source,
      check,
      async (received: AsyncIterable<Buffer>) => {
        for await (const chunk of received) chunks.push(chunk);
      },
      { signal },
    ).catch(failed);
    verify();
    return Buffer.concat(chunks);
  }
  await atomicOutput([to], { signal }, async ([temp]) => {
    await pipeline(source, check, createWriteStream(temp as string), { signal }).catch(failed);
    verify();
  });
  return undefined;
}
