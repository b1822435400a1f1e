import {
  type CdnConfig,
  DEFAULT_CHUNK_SIZE,
  isObjectKey,
  type PublicCdnConfig,
  type S3CdnConfig,
  type S3Credentials,
  SluiceError,
} from '@sluice/protocol';

/** A bad server setting: ERR_INVALID_ARG naming the field (never its value, which may be a key). */
export function invalidSetting(field: string, rule: string): SluiceError {
  return new SluiceError('ERR_INVALID_ARG', `${field} ${rule}`, { field });
}

/** A checked config with its defaults filled in. */
export type ResolvedCdnConfig =
  | { kind: 'http'; chunkSize: number }
  | (Omit<S3CdnConfig, 'prefix' | 'chunkSize'> & { prefix: string | null; chunkSize: number });

// S3 bucket naming rules (lower case, 3–63 characters, no leading or trailing dot or dash).
const BUCKET = /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/;
const MAX_CHUNK_SIZE = 512 * 1024 * 1024;

/** Checks a required setting; the message names the field (`name`), never its value. */
export function nonEmpty(value: unknown, name: string): string {
  if (typeof value !== 'string' || value.trim() === '' || value.length > 1024) {
    throw invalidSetting(name, `must be a non-empty string`);
  }
  return value;
}

/** Checks a key pair; messages name the field, never a key. */
export function credentialsOf(value: unknown, name: string): S3Credentials {
  const c = value as Partial<S3Credentials> | null | undefined;
  if (typeof c !== 'object' || c === null) {
    throw invalidSetting(name, `must be {accessKeyId, secretAccessKey}`);
  }
  return {
    accessKeyId: nonEmpty(c.accessKeyId, `${name}.accessKeyId`),
    secretAccessKey: nonEmpty(c.secretAccessKey, `${name}.secretAccessKey`),
  };
}

/** Checks an S3 endpoint: an http(s) origin, nothing after it. */
export function checkEndpoint(value: unknown, name: string): string {
  const text = nonEmpty(value, name);
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw invalidSetting(name, `must be an http(s) URL`);
  }
  if (
    (url.protocol !== 'http:' && url.protocol !== 'https:') ||
    url.username !== '' ||
    url.password !== '' ||
    url.search !== '' ||
    url.hash !== '' ||
    (url.pathname !== '/' && url.pathname !== '')
  ) {
    throw invalidSetting(name, `must be an http(s) origin without credentials, path or query`);
  }
  return url.origin;
}

/** Checks a bucket name against the S3 rules. */
export function checkBucket(value: unknown, name: string): string {
  if (typeof value !== 'string' || !BUCKET.test(value) || value.includes('..')) {
    throw invalidSetting(name, `must be a valid S3 bucket name`);
  }
  return value;
}

/** Checks an optional key prefix; undefined or empty means none. */
export function checkPrefix(value: unknown, name: string): string | null {
  if (value === undefined || value === '') return null;
  if (!isObjectKey(value)) {
    throw invalidSetting(name, `must be /-separated names without empty, . or .. segments`);
  }
  return value;
}

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
