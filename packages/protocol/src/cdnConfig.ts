import type { EnvelopeResource } from './envelope.js';
import { SluiceError } from './errors.js';

/** One S3 key pair. Never logged, never in an error message, never sent in the clear. */
export interface S3Credentials {
  accessKeyId: string;
  secretAccessKey: string;
}

/** Server option: big parts from this API's own big-part route (the embedded default). */
export interface HttpCdnConfig {
  kind: 'http';
  /** Chunk size clients cut big parts into (default 8 MiB). */
  chunkSize?: number;
}

/** Server option: big parts in an S3-compatible store (Ceph RGW, MinIO, AWS S3), path-style. */
export interface S3CdnConfig {
  kind: 's3';
  /** `http(s)://host[:port]`, no path. */
  endpoint: string;
  region: string;
  bucket: string;
  /** `/`-separated key prefix; an upload's `cdnKey` is stored at `<prefix>/<cdnKey>`. */
  prefix?: string;
  chunkSize?: number;
  /** Read-only keys, handed to every device user in the CDN-config envelope. */
  downloader: S3Credentials;
  /** Read-write keys, handed only to roles that may upload and ask for them. */
  uploader: S3Credentials;
}

/** The `cdn` server option: where big parts live. */
export type CdnConfig = HttpCdnConfig | S3CdnConfig;

/** `GET /cdn-config`: what anyone signed in may read, no keys. */
export type PublicCdnConfig =
  | { kind: 'http'; chunkSize: number }
  | {
      kind: 's3';
      endpoint: string;
      region: string;
      bucket: string;
      /** Object keys are `<prefix>/<cdnKey>`, or `<cdnKey>` without a prefix. */
      prefix: string | null;
      chunkSize: number;
    };

/** `POST /cdn-config`: the public settings with the keys the caller may have, from an envelope. */
export type DeliveredCdnConfig =
  | { kind: 'http'; chunkSize: number }
  | (Extract<PublicCdnConfig, { kind: 's3' }> & {
      /** Read keys. */
      downloader?: S3Credentials;
      /** Write keys, only for uploaders who asked for them. */
      uploader?: S3Credentials;
    });

/** The additional authenticated data of the CDN-config envelope (docs/API.md, POST /cdn-config). */
export const CDN_CONFIG_AAD = 'sluice-envelope-v1|cdn-config';
/** The `resource` inside the CDN-config envelope's plaintext. */
export const CDN_CONFIG_RESOURCE: Readonly<EnvelopeResource> = Object.freeze({
  folder: 'cdn-config',
  name: 'cdn-config',
  version: 1,
});

/** Where the CDN holds the big part stored under `cdnKey`: the prefix, then the key. */
export function cdnObjectKey(prefix: string | null, cdnKey: string): string {
  return prefix ? `${prefix}/${cdnKey}` : cdnKey;
}

/** Checks a CDN config as the server sent it (public or delivered); ERR_BAD_RESPONSE otherwise. */
export function parseDeliveredCdnConfig(v: unknown): DeliveredCdnConfig {
  const bad = (what: string) =>
    new SluiceError('ERR_BAD_RESPONSE', `the server's CDN config is malformed: ${what}`);
  if (typeof v !== 'object' || v === null) throw bad('not an object');
  const c = v as Record<string, unknown>;
  const chunkSize = c.chunkSize;
  if (typeof chunkSize !== 'number' || !Number.isSafeInteger(chunkSize) || chunkSize <= 0) {
    throw bad('chunkSize');
  }
  if (c.kind === 'http') return { kind: 'http', chunkSize };
  if (c.kind !== 's3') throw bad('kind');
  for (const f of ['endpoint', 'region', 'bucket'] as const) {
    if (typeof c[f] !== 'string' || c[f] === '') throw bad(f);
  }
  if (c.prefix !== undefined && c.prefix !== null && typeof c.prefix !== 'string') {
    throw bad('prefix');
  }
  const keys = (k: unknown, name: string): S3Credentials | undefined => {
    if (k === undefined || k === null) return undefined;
    const o = k as Record<string, unknown>;
    if (typeof o.accessKeyId !== 'string' || typeof o.secretAccessKey !== 'string') throw bad(name);
    return { accessKeyId: o.accessKeyId, secretAccessKey: o.secretAccessKey };
  };
  const config: DeliveredCdnConfig = {
    kind: 's3',
    endpoint: c.endpoint as string,
    region: c.region as string,
    bucket: c.bucket as string,
    prefix: typeof c.prefix === 'string' && c.prefix !== '' ? c.prefix : null,
    chunkSize,
  };
  const downloader = keys(c.downloader, 'downloader');
  const uploader = keys(c.uploader, 'uploader');
  if (downloader) config.downloader = downloader;
  if (uploader) config.uploader = uploader;
  return config;
}
