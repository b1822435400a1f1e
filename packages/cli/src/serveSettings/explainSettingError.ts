import { isSluiceError, SluiceError } from '@sluice/core';
import { SERVE_ENV } from './serveEnv.js';

/**
 * A createServer error about a setting (ERR_INVALID_ARG naming its `field`, e.g. `storage.bucket`),
 * with where that setting came from appended; anything else unchanged. Messages from createServer
 * never hold a key.
 */
export function explainSettingError(err: unknown, origins: Map<string, string>): unknown {
  if (!isSluiceError(err, 'ERR_INVALID_ARG') || err.field === undefined) return err;
  const { field } = err;
  let origin: string | undefined;
  for (
    let f = field;
    f !== '' && origin === undefined;
    f = f.slice(0, Math.max(0, f.lastIndexOf('.')))
  ) {
    origin = origins.get(f);
  }
  const hint = HINTS[field];
  const where =
    origin !== undefined ? ` (from ${origin})` : hint !== undefined ? ` (set it with ${hint})` : '';
  return new SluiceError('ERR_INVALID_ARG', `${err.message}${where}`, { cause: err, field });
}

/** Where a setting that is missing altogether can be given. */
const HINTS: Record<string, string> = {
  'storage.endpoint': `--s3-endpoint, ${SERVE_ENV.endpoint} or storage.endpoint in --config`,
  'cdn.endpoint': `--cdn-endpoint, ${SERVE_ENV.cdnEndpoint}, ${SERVE_ENV.endpoint} or cdn.endpoint in --config`,
  'storage.bucket': `--s3-bucket, ${SERVE_ENV.bucket} or storage.bucket in --config`,
  'cdn.bucket': `--cdn-bucket, ${SERVE_ENV.cdnBucket} or cdn.bucket in --config`,
};
