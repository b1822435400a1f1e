import type { S3StorageConfig } from '@sluice/server';
import { SERVE_ENV } from './serveEnv.js';
import { type Candidate, type SettingSources, withoutUndefined } from './settingSources.js';

export type StorageSettings = { kind: 'file' } | S3StorageConfig;

/**
 * Where small parts go: an S3 bucket once one is named by a flag, the environment or the file
 * (its endpoint, region and keys merged from the sources), else the file's `storage` as it is.
 */
export function s3Storage(src: SettingSources): StorageSettings | undefined {
  const bucket = src.bucket('storage');
  if (bucket === undefined) return src.asIs('storage') as StorageSettings | undefined;
  const s = src.fileS3('storage');
  const prefixFlag: Candidate = [src.flags.s3Prefix, '--s3-prefix'];
  return withoutUndefined({
    kind: 's3',
    endpoint: src.pick('storage.endpoint', ...src.endpoint, src.inFile(s.endpoint)),
    region: src.pick('storage.region', ...src.region, src.inFile(s.region), src.defaultRegion),
    bucket,
    prefix: src.layered('storage', 'prefix', prefixFlag, SERVE_ENV.prefix),
    credentials: src.pick('storage.credentials', src.rwKeys, src.inFile(s.credentials)),
  }) as unknown as S3StorageConfig;
}
