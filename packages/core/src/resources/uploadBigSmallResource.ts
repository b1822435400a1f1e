import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import {
  cdnObjectKey,
  type DeliveredCdnConfig,
  type EnvelopeResource,
  SluiceError,
} from '@sluice/protocol';
import { BigPartCache } from '../cache/bigPartCache.js';
import { sealAndSplit } from '../format/sealAndSplit.js';
import type { Session } from '../http/session.js';
import { throwIfAborted } from '../platform/abort.js';
import { cdnPrefix, fetchCdnConfig, publicCdnConfig } from './cdnConfig.js';
import { type MultipartPart, multipartBody } from './multipartBody.js';
import { checkResourceName } from './resourceName.js';
import { sealedStream } from './sealedStream.js';

/** Default cap of the small part in KiB (the split rule also caps it at 30% of the blob). */
export const DEFAULT_SMALL_SIZE_KB = 1024;

export interface UploadProgress {
  /** Big-part bytes sent so far. */
  loaded: number;
  total: number;
}

export interface UploadBigSmallOptions {
  /** Cap of the small part in KiB (default 1024); see docs/FORMAT.md for the split rule. */
  smallSizeKB?: number;
  /** Big-part chunk size, a positive multiple of 16 (default: the server's CDN chunk size). */
  chunkSize?: number;
  /** Directory for the sealed parts while they are sent (default the OS temp directory). */
  tempDir?: string;
  /**
   * Password and hardware hash of the uploading account: needed only when the server keeps big
   * parts on an S3 CDN, to open the envelope that carries the uploader keys.
   */
  password?: string;
  hardware?: string;
  /** The CDN settings with uploader keys, when the caller already has them. */
  cdn?: DeliveredCdnConfig;
  /** Also keep the sealed big part in this local cache (as a later pull would). */
  cacheDir?: string;
  signal?: AbortSignal;
  onProgress?: (progress: UploadProgress) => void;
}

/**
 * Seals `path` with a fresh data key, splits it and uploads it as a new version of
 * `folder/name`: the big part to the CDN first (the API itself in the embedded default, else the
 * S3 CDN its `/cdn-config` names), then the small part, the manifest and the data key to the API.
 * A failure anywhere registers nothing (a big part already on S3 is removed again). The sealed
 * parts live in temp files that are removed whatever happens.
 */
export async function uploadBigSmallResource(
  session: Session,
  path: string,
  name: string,
  folder: string,
  options: UploadBigSmallOptions = {},
): Promise<EnvelopeResource> {
  const { signal } = options;
  const withSignal = signal ? { signal } : {};
  checkResourceName(folder, 'folder');
  checkResourceName(name, 'name');
  throwIfAborted(signal);
  const cdn = await uploaderCdnConfig(session, options);
  if (cdn.kind === 's3' && options.cacheDir === undefined) {
    return streamToS3(session, path, name, folder, cdn, options);
  }
  const dir = await mkdtemp(join(options.tempDir ?? tmpdir(), 'sluice-upload-'));
  let key: Buffer | undefined;
  try {
    const sealed = await sealAndSplit(path, {
      paths: { small: join(dir, 'small'), big: join(dir, 'big') },
      smallSizeKB: options.smallSizeKB ?? DEFAULT_SMALL_SIZE_KB,
      chunkSize: options.chunkSize ?? cdn.chunkSize,
      ...withSignal,
    });
    key = sealed.key;
    const dataKey = sealed.key.toString('base64');
    const manifest = JSON.stringify(sealed.manifest);
    const total = sealed.manifest.bigSize;
    let bigPart: MultipartPart;
    let removeFromCdn: (() => Promise<void>) | undefined;
    if (cdn.kind === 's3') {
      const { objects, cdnKey, objectKey } = await cdnTarget(cdn, folder, name);
      await objects.upload(objectKey, sealed.bigPath, {
        ...withSignal,
        ...(options.onProgress
          ? { onProgress: (p) => options.onProgress?.({ loaded: p.loaded, total }) }
          : {}),
      });
      removeFromCdn = () => objects.remove(objectKey);
      bigPart = { name: 'cdnKey', value: cdnKey };
    } else {
      bigPart = { name: 'big', path: sealed.bigPath, filename: 'big' };
    }
    const body = multipartBody([
      { name: 'name', value: name },
      { name: 'manifest', value: manifest },
      { name: 'dataKey', value: dataKey },
      { name: 'small', path: sealed.smallPath, filename: 'small' },
      bigPart,
    ]);
    let created: EnvelopeResource;
    try {
      created = await session.request<EnvelopeResource>(
        'POST',
        `/resources/${encodeURIComponent(folder)}`,
        { body: body.stream, headers: { 'content-type': body.contentType }, ...withSignal },
      );
    } catch (e) {
      // Nothing was registered: do not leave an unreachable big part on the CDN.
      await removeFromCdn?.().catch(() => {});
      throw e;
    }
    if (cdn.kind === 'http') options.onProgress?.({ loaded: total, total });
    if (options.cacheDir !== undefined) {
      // With its manifest and resource, so `sluice cache verify` can check it offline.
      const cache = await BigPartCache.open(options.cacheDir);
      await cache.put(sealed.bigPath, sealed.manifest, {
        resource: created,
        move: true,
        ...withSignal,
      });
    }
    return { folder: created.folder, name: created.name, version: created.version };
  } finally {
    key?.fill(0);
    await rm(dir, { recursive: true, force: true });
  }
}

type S3Config = Extract<DeliveredCdnConfig, { kind: 's3' }>;

/**
 * The S3 path without a local cache: the big part goes to the CDN as it is encrypted (one pass, no
 * temp file, multipart parts in parallel), chunk digests taken on the way; then the small part,
 * the manifest and the data key go to the API. A failure after the upload removes the object.
 */
async function streamToS3(
  session: Session,
  path: string,
  name: string,
  folder: string,
  cdn: S3Config,
  options: UploadBigSmallOptions,
): Promise<EnvelopeResource> {
  const { signal } = options;
  const withSignal = signal ? { signal } : {};
  const sealed = await sealedStream(path, {
    smallSizeKB: options.smallSizeKB ?? DEFAULT_SMALL_SIZE_KB,
    chunkSize: options.chunkSize ?? cdn.chunkSize,
    ...withSignal,
  });
  try {
    const { objects, cdnKey, objectKey } = await cdnTarget(cdn, folder, name);
    const total = sealed.bigSize;
    await objects.upload(objectKey, Readable.from(sealed.big), {
      contentLength: total,
      ...withSignal,
      ...(options.onProgress
        ? { onProgress: (p) => options.onProgress?.({ loaded: p.loaded, total }) }
        : {}),
    });
    try {
      const { small, manifest } = sealed.finish();
      const body = multipartBody([
        { name: 'name', value: name },
        { name: 'manifest', value: JSON.stringify(manifest) },
        { name: 'dataKey', value: sealed.key.toString('base64') },
        { name: 'small', data: small, filename: 'small' },
        { name: 'cdnKey', value: cdnKey },
      ]);
      const created = await session.request<EnvelopeResource>(
        'POST',
        `/resources/${encodeURIComponent(folder)}`,
        { body: body.stream, headers: { 'content-type': body.contentType }, ...withSignal },
      );
      return { folder: created.folder, name: created.name, version: created.version };
    } catch (e) {
      await objects.remove(objectKey).catch(() => {});
      throw e;
    }
  } finally {
    sealed.key.fill(0);
  }
}

/** The uploader's S3Objects and a fresh key for a big part of `folder/name`. */
async function cdnTarget(cdn: S3Config, folder: string, name: string) {
  const { S3Objects } = await import('@sluice/cdn');
  const objects = new S3Objects({
    endpoint: cdn.endpoint,
    region: cdn.region,
    bucket: cdn.bucket,
    uploader: cdn.uploader,
  });
  const cdnKey = `${folder}/${name}/${randomBytes(16).toString('hex')}.big`;
  return { objects, cdnKey, objectKey: cdnObjectKey(cdnPrefix(cdn), cdnKey) };
}

/** The server's CDN config; for S3, with the uploader keys from the device envelope. */
async function uploaderCdnConfig(
  session: Session,
  options: UploadBigSmallOptions,
): Promise<DeliveredCdnConfig> {
  const signal = options.signal ? { signal: options.signal } : {};
  if (options.cdn !== undefined) return options.cdn;
  const config = await publicCdnConfig(session, signal);
  if (config.kind === 'http') return config;
  if (options.password === undefined || options.hardware === undefined) {
    throw new SluiceError(
      'ERR_INVALID_ARG',
      `this server keeps big parts on an S3 CDN (${config.endpoint}): pass password and hardware so the uploader keys can be fetched`,
    );
  }
  const full = await fetchCdnConfig(session, {
    password: options.password,
    hardware: options.hardware,
    write: true,
    ...signal,
  });
  if (full.kind !== 's3' || full.uploader === undefined) {
    throw new SluiceError('ERR_CDN', 'the server sent no uploader keys for its S3 CDN');
  }
  return full;
}

/** Moves (or copies, across file systems) a verified big part into the cache, atomically. */
