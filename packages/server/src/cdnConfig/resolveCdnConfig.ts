import {
  type CdnConfig,
  DEFAULT_CHUNK_SIZE,
  type PublicCdnConfig,
  type S3CdnConfig,
} from '@sluice/protocol';
import { invalidSetting } from '../errors.js';
import {
  checkBucket,
  checkEndpoint,
  checkPrefix,
  credentialsOf,
  nonEmpty,
} from '../stores/s3Settings.js';

/** A checked config with its defaults filled in. */
export type ResolvedCdnConfig =
  | { kind: 'http'; chunkSize: number }
  | (Omit<S3CdnConfig, 'prefix' | 'chunkSize'> & { prefix: string | null; chunkSize: number });

const MAX_CHUNK_SIZE = 512 * 1024 * 1024;

/** Validates the `cdn` server option (default: `{kind: 'http'}`) and fills in defaults. */
export function resolveCdnConfig(config: CdnConfig | undefined): ResolvedCdnConfig {
  const c: CdnConfig = config ?? { kind: 'http' };
  const chunkSize = c.chunkSize ?? DEFAULT_CHUNK_SIZE;
  if (
    !Number.isSafeInteger(chunkSize) ||
    chunkSize <= 0 ||
    chunkSize % 16 !== 0 ||
    chunkSize > MAX_CHUNK_SIZE
  ) {
    throw invalidSetting('cdn.chunkSize', 'must be a positive multiple of 16 up to 512 MiB');
  }
  if (c.kind === 'http') return { kind: 'http', chunkSize };
  if (c.kind !== 's3') throw invalidSetting('cdn.kind', `must be 'http' or 's3'`);
  return {
    kind: 's3',
    endpoint: checkEndpoint(c.endpoint, 'cdn.endpoint'),
    region: nonEmpty(c.region, 'cdn.region'),
    bucket: checkBucket(c.bucket, 'cdn.bucket'),
    prefix: checkPrefix(c.prefix, 'cdn.prefix'),
    chunkSize,
    downloader: credentialsOf(c.downloader, 'cdn.downloader'),
    uploader: credentialsOf(c.uploader, 'cdn.uploader'),
  };
}

/** The part of the config without keys. */
export function publicCdnConfig(config: ResolvedCdnConfig): PublicCdnConfig {
  if (config.kind === 'http') return { kind: 'http', chunkSize: config.chunkSize };
  const { endpoint, region, bucket, prefix, chunkSize } = config;
  return { kind: 's3', endpoint, region, bucket, prefix, chunkSize };
}
