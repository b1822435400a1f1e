import { SluiceError } from '../errors.js';
import { deriveEnvelopeKey, openEnvelope } from '../format/envelope.js';
import type { Session } from '../session/session.js';

export interface CdnKeys {
  accessKeyId: string;
  secretAccessKey: string;
}

/** Where big parts live, as `/cdn-config` describes it (docs/API.md). */
export type CdnConfig =
  | { kind: 'http'; chunkSize: number }
  | {
      kind: 's3';
      endpoint: string;
      region: string;
      bucket: string;
      /** Object keys are `<prefix>/<cdnKey>`, or `<cdnKey>` without a prefix. */
      prefix: string | null;
      chunkSize: number;
      /** Read keys (absent in the public form). */
      downloader?: CdnKeys;
      /** Write keys, only for uploaders who asked for them. */
      uploader?: CdnKeys;
    };

export interface CdnConfigRequest {
  /** The account's password: the keys come in a device envelope like a resource's. */
  password: string;
  hardware: string;
  /** Ask for the uploader keys too (ResourceUploader, Admin, ApiAdmin only). */
  write?: boolean;
  signal?: AbortSignal;
}

export const CDN_CONFIG_AAD = 'sluice-envelope-v1|cdn-config';

/** `GET /cdn-config`: the kind, endpoint, bucket and chunk size, without any key. */
export async function publicCdnConfig(
  session: Session,
  options: { signal?: AbortSignal } = {},
): Promise<CdnConfig> {
  const body = await session.request<unknown>('GET', '/cdn-config', {
    ...(options.signal ? { signal: options.signal } : {}),
  });
  return parseCdnConfig(body);
}

/**
 * `POST /cdn-config`: the settings with their keys, opened from the device envelope with the
 * account's password and this device's hardware hash.
 */
export async function fetchCdnConfig(
  session: Session,
  options: CdnConfigRequest,
): Promise<CdnConfig> {
  const { password, hardware, write, signal } = options;
  const sealed = await session.request<unknown>('POST', '/cdn-config', {
    json: { password, hardware, ...(write ? { write: true } : {}) },
    ...(signal ? { signal } : {}),
  });
  const email = session.user?.email;
  if (email === undefined) throw new SluiceError('ERR_NOT_LOGGED_IN', 'no signed-in user');
  const key = await deriveEnvelopeKey(email, password, hardware);
  let small: Buffer;
  try {
    ({ small } = openEnvelope(key, sealed, CDN_CONFIG_AAD));
  } finally {
    key.fill(0);
  }
  try {
    return parseCdnConfig(JSON.parse(small.toString('utf8')));
  } finally {
    small.fill(0);
  }
}

/** The object key of a big part stored under `cdnKey`. */
export function cdnObjectKey(config: CdnConfig, cdnKey: string): string {
  return config.kind === 's3' && config.prefix ? `${config.prefix}/${cdnKey}` : cdnKey;
}

function parseCdnConfig(v: unknown): CdnConfig {
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
  const keys = (k: unknown, name: string): CdnKeys | undefined => {
    if (k === undefined || k === null) return undefined;
    const o = k as Record<string, unknown>;
    if (typeof o.accessKeyId !== 'string' || typeof o.secretAccessKey !== 'string') throw bad(name);
    return { accessKeyId: o.accessKeyId, secretAccessKey: o.secretAccessKey };
  };
  const downloader = keys(c.downloader, 'downloader');
  const uploader = keys(c.uploader, 'uploader');
  return {
    kind: 's3',
    endpoint: c.endpoint as string,
    region: c.region as string,
    bucket: c.bucket as string,
    prefix: typeof c.prefix === 'string' && c.prefix !== '' ? c.prefix : null,
    chunkSize,
    ...(downloader ? { downloader } : {}),
    ...(uploader ? { uploader } : {}),
  };
}
