import type { CdnConfig } from '@sluice/server';
import type { StorageSettings } from './s3Storage.js';
import { SERVE_ENV } from './serveEnv.js';
import { type SettingSources, withoutUndefined } from './settingSources.js';

/**
 * Where big parts go: an S3 CDN once a CDN bucket is named, sharing the storage's endpoint,
 * region and write keys unless its own are given; else the file's `cdn` as it is.
 */
export function s3Cdn(
  src: SettingSources,
  storage: StorageSettings | undefined,
): CdnConfig | undefined {
  const bucket = src.bucket('cdn');
  if (bucket === undefined) return src.asIs('cdn') as CdnConfig | undefined;
  const { flags } = src;
  const c = src.fileS3('cdn');
  const s3Storage = storage?.kind === 's3' ? storage : undefined;
  const storageOrigin = (field: string) => src.origins.get(`storage.${field}`) ?? src.fileOrigin;
  return withoutUndefined({
    kind: 's3',
    endpoint: src.pick(
      'cdn.endpoint',
      [flags.cdnEndpoint, '--cdn-endpoint'],
      src.fromEnv(SERVE_ENV.cdnEndpoint),
      ...src.endpoint,
      src.inFile(c.endpoint),
      [s3Storage?.endpoint, storageOrigin('endpoint')],
    ),
    region: src.pick(
      'cdn.region',
      ...src.region,
      src.inFile(c.region),
      [s3Storage?.region, storageOrigin('region')],
      src.defaultRegion,
    ),
    bucket,
    prefix: src.layered('cdn', 'prefix', [flags.cdnPrefix, '--cdn-prefix'], SERVE_ENV.cdnPrefix),
    chunkSize: src.pick('cdn.chunkSize', src.inFile(c.chunkSize)),
    downloader: src.pick('cdn.downloader', src.readKeys, src.inFile(c.downloader)),
    uploader: src.pick('cdn.uploader', src.rwKeys, src.inFile(c.uploader)),
  }) as unknown as CdnConfig;
}
