import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { Readable } from 'node:stream';
import { isSluiceError, SluiceError } from '@sluice/protocol';
import { abortedError, describe } from '../engine/errors.js';

/** What an upload reads: a file path, a stream (consumed) or a buffer. */
export type UploadSource = string | Readable | Buffer;

/** `source` as a stream, with its length when a file's or buffer's size tells it. */
export async function openUploadSource(
  source: UploadSource,
  contentLength: number | undefined,
): Promise<{ body: Readable; contentLength: number | undefined }> {
  if (typeof source === 'string') {
    try {
      contentLength ??= (await stat(source)).size;
    } catch (e) {
      throw new SluiceError('ERR_IO', `cannot read upload source ${source}: ${describe(e)}`, {
        cause: e,
      });
    }
    return { body: createReadStream(source, { highWaterMark: 1024 * 1024 }), contentLength };
  }
  if (Buffer.isBuffer(source)) {
    const body = Readable.from(slices(source, 1024 * 1024));
    return { body, contentLength: contentLength ?? source.length };
  }
  if (source instanceof Readable) return { body: source, contentLength };
  throw new SluiceError('ERR_INVALID_ARG', 'upload source must be a file path, Readable or Buffer');
}

function* slices(buf: Buffer, size: number): Generator<Buffer> {
  for (let i = 0; i < buf.length; i += size) yield buf.subarray(i, i + size);
}

/**
 * The upload source as an async iterable that ends with ERR_ABORTED as soon as `signal` fires
 * (even while the source is stalled) and turns a read failure into ERR_IO.
 */
export async function* guardedSource(
  source: Readable,
  key: string,
  signal: AbortSignal | undefined,
): AsyncGenerator<Buffer> {
  // Abort by destroying the source, which rejects a pending read at once. (Racing every read
  // against one long-lived abort promise kept every chunk reachable: `pnpm bench:pull --s3` saw
  // a 2 GiB push peak at 2199 MB of RSS, about 200 MB without it.)
  const onAbort = () => {
    if (signal !== undefined) source.destroy(abortedError(signal, 'upload'));
  };
  if (signal?.aborted) onAbort();
  else signal?.addEventListener('abort', onAbort, { once: true });
  try {
    const it = (source as AsyncIterable<Buffer>)[Symbol.asyncIterator]();
    for (;;) {
      let next: IteratorResult<Buffer>;
      try {
        next = await it.next();
      } catch (e) {
        if (isSluiceError(e)) throw e;
        throw new SluiceError(
          'ERR_IO',
          `reading the upload source of ${key} failed: ${describe(e)}`,
          {
            cause: e,
          },
        );
      }
      if (next.done) return;
      yield next.value;
    }
  } finally {
    signal?.removeEventListener('abort', onAbort);
  }
}
