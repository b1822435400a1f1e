import { SluiceError } from '@sluice/protocol';
import { parseContentRange } from '../engine/contentRange.js';
import { describe, Transient } from '../engine/errors.js';
import type { EtagPin } from '../engine/etagPin.js';
import { type SocketResponse, socketGet, Unsupported } from '../http/rangeSocket.js';
import type { S3Bucket } from './s3Bucket.js';
import { isTransientS3Error } from './s3Error.js';
import { objectUrl, signS3Get } from './sigV4.js';

/** The largest error body read to learn S3's error code (`<Code>NoSuchKey</Code>`). */
const MAX_ERROR_BODY = 64 * 1024;

/**
 * One ranged GetObject over the socket receiver (`http/rangeSocket.ts`), signed here with SigV4
 * (`sigV4.ts`): the body goes straight into `into`, with none of the SDK's stream machinery.
 * Answers are checked and mapped as the SDK path maps them (`s3Error.ts`), so which path served a
 * range never changes what the caller sees. Throws `Unsupported` for a body the socket path does
 * not read (chunked): the caller takes the SDK path from then on.
 */
export async function socketRange(
  s3: S3Bucket,
  key: string,
  range: { start: number; end: number; size: number },
  etag: EtagPin,
  signal: AbortSignal,
  into: Buffer | undefined,
): Promise<Buffer> {
  const { start, end, size } = range;
  const headers: Record<string, string> = { range: `bytes=${start}-${end}` };
  if (etag.current !== undefined) headers['if-match'] = etag.current;
  const keys = s3.readKeys;
  const signed = keys
    ? signS3Get(s3.endpoint, s3.bucket, key, s3.region, keys, headers)
    : { url: objectUrl(s3.endpoint, s3.bucket, key), headers };
  s3.notifyRequest({ command: 'GetObjectCommand', key, range: headers.range });
  const res = await socketGet({
    url: signed.url,
    headers: { host: signed.url.host, ...signed.headers },
    signal,
    idleTimeoutMs: s3.requestTimeoutMs,
  });
  try {
    if (res.status !== 206) throw await failure(s3, key, size, res);
    const contentRange = res.headers.get('content-range');
    const got = parseContentRange(contentRange);
    if (got !== null && got.total !== '*' && got.total !== size) {
      throw s3.sizeChanged(key, got.total, size);
    }
    if (got?.first !== start || got.last !== end) {
      throw new SluiceError(
        'ERR_BAD_RESPONSE',
        `${s3.where(key)} answered bytes ${start}-${end} with Content-Range ${contentRange ?? '(none)'}`,
      );
    }
    const tag = res.headers.get('etag');
    if (tag !== undefined && !etag.accepts(tag)) {
      throw new SluiceError(
        'ERR_SOURCE_CHANGED',
        `${s3.where(key)} changed during the download (ETag ${tag})`,
      );
    }
    return await res.body(end - start + 1, into, bodyTooLong);
  } finally {
    res.release();
  }
}

/** The error an answer other than 206 is: S3's code from its XML body, mapped as the SDK's. */
async function failure(
  s3: S3Bucket,
  key: string,
  size: number,
  res: SocketResponse,
): Promise<Error> {
  const xml = await errorBody(res);
  const code = /<Code>([^<]{1,100})<\/Code>/.exec(xml)?.[1];
  const message = /<Message>([^<]{1,500})<\/Message>/.exec(xml)?.[1];
  const shaped = Object.assign(new Error(message ?? code ?? `HTTP ${res.status}`), {
    name: code ?? (res.status === 404 ? 'NotFound' : `HTTP${res.status}`),
    $metadata: { httpStatusCode: res.status },
  });
  if (res.status === 200) {
    return new SluiceError(
      'ERR_BAD_RESPONSE',
      `${s3.where(key)} ignored the Range header (200 instead of 206)`,
    );
  }
  if (res.status === 416) return s3.sizeChanged(key, undefined, size, shaped);
  if (isTransientS3Error(shaped)) return new Transient(describe(shaped), { cause: shaped });
  return s3.error(shaped, key, 'download');
}

/** The error body as text, when it is short and has a length; else nothing (the socket is dropped). */
async function errorBody(res: SocketResponse): Promise<string> {
  const length = Number(res.headers.get('content-length') ?? Number.NaN);
  if (!Number.isSafeInteger(length) || length <= 0 || length > MAX_ERROR_BODY) return '';
  try {
    return (await res.body(length, undefined, bodyTooLong)).toString('utf8');
  } catch (e) {
    if (e instanceof Unsupported) return '';
    throw e;
  }
}

/** More body than the range asked for: a broken store, not worth another attempt. */
function bodyTooLong(length: number): SluiceError {
  return new SluiceError('ERR_BAD_RESPONSE', `body longer than the ${length} bytes asked for`);
}
