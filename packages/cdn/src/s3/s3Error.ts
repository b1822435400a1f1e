import { SluiceError } from '@sluice/protocol';

/** Where a failed S3 call went, for messages; never holds a secret. */
export interface S3Context {
  endpoint: string;
  bucket: string;
  key?: string;
  /** What was being done, e.g. "download", "upload", "head". */
  operation: string;
  /** Which key pair was used ("downloader" or "uploader") and its (public) access key id. */
  role: string;
  accessKeyId?: string;
}

const NETWORK_CODES = new Set([
  'ECONNRESET',
  'ECONNREFUSED',
  'ECONNABORTED',
  'EPIPE',
  'ETIMEDOUT',
  'EAI_AGAIN',
  'ENOTFOUND',
  'ENETUNREACH',
  'EHOSTUNREACH',
]);
const DENIED = new Set([
  'AccessDenied',
  'InvalidAccessKeyId',
  'SignatureDoesNotMatch',
  'InvalidToken',
  'ExpiredToken',
]);

interface SdkErrorShape {
  name?: unknown;
  code?: unknown;
  message?: unknown;
  cause?: unknown;
  $metadata?: { httpStatusCode?: number };
}

/** The HTTP status of an SDK error, if a response caused it. */
export function s3Status(e: unknown): number | undefined {
  return (e as SdkErrorShape | null)?.$metadata?.httpStatusCode;
}

/** True for failures worth another attempt: 5xx, 408, timeouts and network errors. */
export function isTransientS3Error(e: unknown): boolean {
  const status = s3Status(e);
  if (status !== undefined) return status >= 500 || status === 408 || status === 429;
  const err = e as SdkErrorShape | null;
  if (err === null || typeof err !== 'object') return false;
  if (err.name === 'TimeoutError' || err.name === 'RequestTimeout') return true;
  const codes = [err.code, (err.cause as SdkErrorShape | undefined)?.code];
  return codes.some((c) => typeof c === 'string' && NETWORK_CODES.has(c));
}

/** Maps an SDK failure to a SluiceError that names the endpoint and bucket and no secret. */
export function s3Error(e: unknown, ctx: S3Context): SluiceError {
  const status = s3Status(e);
  const err = (e ?? {}) as SdkErrorShape;
  const name = typeof err.name === 'string' ? err.name : 'Error';
  const where = `s3://${ctx.bucket}${ctx.key === undefined ? '' : `/${ctx.key}`} at ${ctx.endpoint}`;
  const opts = { cause: e, status };
  if (status === 403 || DENIED.has(name)) {
    const id = ctx.accessKeyId === undefined ? '' : ` (access key id ${ctx.accessKeyId})`;
    return new SluiceError(
      'ERR_ACCESS_DENIED',
      `${ctx.operation} of ${where} refused: the ${ctx.role} credentials${id} are wrong or lack permission for bucket ${ctx.bucket} (${name})`,
      opts,
    );
  }
  if (name === 'NoSuchBucket') {
    return new SluiceError(
      'ERR_NOT_FOUND',
      `${ctx.operation}: bucket ${ctx.bucket} does not exist at ${ctx.endpoint}`,
      opts,
    );
  }
  if (status === 404 || name === 'NoSuchKey' || name === 'NotFound') {
    return new SluiceError('ERR_NOT_FOUND', `${ctx.operation}: ${where} does not exist`, opts);
  }
  if (status === 412 || name === 'PreconditionFailed') {
    return new SluiceError(
      'ERR_SOURCE_CHANGED',
      `${where} changed during the ${ctx.operation} (If-Match failed)`,
      opts,
    );
  }
  const detail = typeof err.message === 'string' && err.message !== name ? `: ${err.message}` : '';
  if (status === undefined || isTransientS3Error(e)) {
    return new SluiceError(
      'ERR_NETWORK',
      `${ctx.operation} of ${where} failed: ${name}${detail}`,
      opts,
    );
  }
  return new SluiceError(
    'ERR_HTTP',
    `${ctx.operation} of ${where} failed with HTTP ${status} (${name}${detail})`,
    opts,
  );
}
