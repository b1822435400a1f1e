import { randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { Readable } from 'node:stream';

export type MultipartPart =
  | { name: string; value: string }
  | { name: string; path: string; filename: string }
  | { name: string; data: Uint8Array; filename: string };

export interface MultipartBody {
  contentType: string;
  /** A fresh body stream per call (one per attempt), reading files from disk as it is sent. */
  stream(): ReadableStream<Uint8Array>;
}

const SAFE_NAME = /^[A-Za-z0-9._-]+$/;

/**
 * A `multipart/form-data` body that streams its file parts from disk. (Node's `FormData` with a
 * file `Blob` holds the whole file in memory while sending; see streamingFetch for the figures.)
 */
export function multipartBody(parts: MultipartPart[]): MultipartBody {
  const boundary = `sluice-${randomBytes(16).toString('hex')}`;
  for (const p of parts) {
    if (!SAFE_NAME.test(p.name) || ('filename' in p && !SAFE_NAME.test(p.filename))) {
      throw new TypeError(`multipart names must match ${SAFE_NAME}`);
    }
  }
  async function* generate(): AsyncGenerator<Buffer> {
    for (const p of parts) {
      const disposition =
        'filename' in p
          ? `form-data; name="${p.name}"; filename="${p.filename}"\r\ncontent-type: application/octet-stream`
          : `form-data; name="${p.name}"`;
      yield Buffer.from(`--${boundary}\r\ncontent-disposition: ${disposition}\r\n\r\n`);
      if ('data' in p) {
        yield Buffer.from(p.data);
      } else if ('path' in p) {
        for await (const chunk of createReadStream(p.path, { highWaterMark: 1 << 20 })) {
          yield chunk as Buffer;
        }
      } else {
        yield Buffer.from(p.value, 'utf8');
      }
      yield Buffer.from('\r\n');
    }
    yield Buffer.from(`--${boundary}--\r\n`);
  }
  return {
    contentType: `multipart/form-data; boundary=${boundary}`,
    stream: () => Readable.toWeb(Readable.from(generate())) as ReadableStream<Uint8Array>,
  };
}
