import { randomBytes } from 'node:crypto';
import type { UploadSource } from '@sluice/cdn';
import { cdnObjectKey, type DeliveredCdnConfig, SluiceError } from '@sluice/protocol';
import type { Session } from '../http/session.js';
import { cdnPrefix, fetchCdnConfig, publicCdnConfig } from './cdnConfig.js';
import type { PushOptions } from './pushOptions.js';

export type S3Config = Extract<DeliveredCdnConfig, { kind: 's3' }>;

/** A big part on the S3 CDN: the key the API records, and how to take it back. */
export interface S3BigPart {
  cdnKey: string;
  remove(): Promise<void>;
}

/**
 * Uploads the big part of a new version of `folder/name` (`size` bytes from a file or a stream)
 * to a fresh key on the S3 CDN, with the uploader keys.
 */
export async function uploadBigPart(
  cdn: S3Config,
  folder: string,
  name: string,
  source: UploadSource,
  size: number,
  options: Pick<PushOptions, 'signal' | 'onProgress'>,
): Promise<S3BigPart> {
  const { S3Objects } = await import('@sluice/cdn');
  const objects = new S3Objects({
    endpoint: cdn.endpoint,
    region: cdn.region,
    bucket: cdn.bucket,
    uploader: cdn.uploader,
  });
  const cdnKey = `${folder}/${name}/${randomBytes(16).toString('hex')}.big`;
  const objectKey = cdnObjectKey(cdnPrefix(cdn), cdnKey);
  const { onProgress } = options;
  await objects.upload(objectKey, source, {
    contentLength: size,
    signal: options.signal,
    onProgress: onProgress && ((p) => onProgress({ loaded: p.loaded, total: size })),
  });
  return { cdnKey, remove: () => objects.remove(objectKey) };
}

/** The server's CDN config; for S3, with the uploader keys from the device envelope. */
export async function uploaderCdnConfig(
  session: Session,
  options: PushOptions,
): Promise<DeliveredCdnConfig> {
  const { password, hardware, hardwareFactors, signal } = options;
  if (options.cdn !== undefined) return options.cdn;
  const config = await publicCdnConfig(session, { signal });
  if (config.kind === 'http') return config;
  if (password === undefined || hardware === undefined) {
    throw new SluiceError(
      'ERR_INVALID_ARG',
      `this server keeps big parts on an S3 CDN (${config.endpoint}): pass password and hardware so the uploader keys can be fetched`,
    );
  }
  const full = await fetchCdnConfig(session, {
    password,
    hardware,
    hardwareFactors,
    write: true,
    signal,
  });
  if (full.kind !== 's3' || full.uploader === undefined) {
    throw new SluiceError('ERR_CDN', 'the server sent no uploader keys for its S3 CDN');
  }
  return full;
}
