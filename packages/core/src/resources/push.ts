import { createHash } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import type { DeliveredCdnConfig, EnvelopeResource } from '@sluice/protocol';
import { BigPartCache } from '../cache/bigPartCache.js';
import { sealAndSplit } from '../format/sealAndSplit.js';
import type { Session } from '../http/session.js';
import { throwIfAborted } from '../platform/abort.js';
import { DEFAULT_SMALL_SIZE_KB, type PushOptions } from './pushOptions.js';
import { type PushTarget, registerVersion } from './registerVersion.js';
import { checkResourceName } from './resourceName.js';
import { type S3Config, uploadBigPart, uploaderCdnConfig } from './s3BigPart.js';
import { sealedStream } from './sealedStream.js';

/**
 * Seals a file (a path), or bytes held in memory, with a fresh data key, splits it and uploads it
 * as a new version of `folder/name`: the big part to the CDN first (the API itself in the
 * embedded default, else the S3 CDN its `/cdn-config` names), then the small part, the manifest
 * and the data key to the API. A failure anywhere registers nothing (a big part already on S3 is
 * removed again). The sealed parts, and bytes from memory, live in private temp files that are
 * removed whatever happens.
 */
export async function push(
  session: Session,
  folder: string,
  name: string,
  source: string | Uint8Array,
  options: PushOptions = {},
): Promise<EnvelopeResource> {
  checkResourceName(folder, 'folder');
  checkResourceName(name, 'name');
  const target = { session, folder, name };
  if (typeof source === 'string') return pushFile(target, source, options);
  if (!(source instanceof Uint8Array)) {
    throw new TypeError('source must be a file path or a Uint8Array');
  }
  const dir = await mkdtemp(join(options.tempDir ?? tmpdir(), 'sluice-bytes-'));
  try {
    const path = join(dir, 'source');
    await writeFile(path, source, { mode: 0o600 });
    return await pushFile(target, path, options);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

async function pushFile(
  target: PushTarget,
  path: string,
  options: PushOptions,
): Promise<EnvelopeResource> {
  throwIfAborted(options.signal);
  const cdn = await uploaderCdnConfig(target.session, options);
  const created =
    cdn.kind === 's3' && options.cacheDir === undefined
      ? await streamToS3(target, path, cdn, options)
      : await sealThenSend(target, path, cdn, options);
  return { folder: created.folder, name: created.name, version: created.version };
}

/**
 * The S3 path without a local cache: the big part goes to the CDN as it is encrypted (one pass, no
 * temp file, multipart parts in parallel), chunk digests taken on the way; then the small part,
 * the manifest and the data key go to the API. A failure after the upload removes the object.
 */
async function streamToS3(
  target: PushTarget,
  path: string,
  cdn: S3Config,
  options: PushOptions,
): Promise<EnvelopeResource> {
  const { signal } = options;
  const sealed = await sealedStream(path, {
    smallSizeKB: options.smallSizeKB ?? DEFAULT_SMALL_SIZE_KB,
    chunkSize: options.chunkSize ?? cdn.chunkSize,
    signal,
  });
  try {
    const { folder, name } = target;
    const body = Readable.from(sealed.big);
    const onCdn = await uploadBigPart(cdn, folder, name, body, sealed.bigSize, options);
    try {
      const { small, manifest } = sealed.finish();
      const parts = {
        layout: manifest,
        smallSha256: createHash('sha256').update(small).digest('hex'),
        dataKey: sealed.key,
        small: { name: 'small', data: small, filename: 'small' },
        big: { name: 'cdnKey', value: onCdn.cdnKey },
      };
      const { signKey, release } = options;
      return (await registerVersion(target, parts, { signal, signKey, release })).created;
    } catch (e) {
      await onCdn.remove().catch(() => {});
      throw e;
    }
  } finally {
    sealed.key.fill(0);
  }
}

/**
 * Seals into temp files first, then sends the big part to the API itself (the embedded default)
 * or to the S3 CDN, registers the version and, with `cacheDir`, moves the big part into the cache.
 */
async function sealThenSend(
  target: PushTarget,
  path: string,
  cdn: DeliveredCdnConfig,
  options: PushOptions,
): Promise<EnvelopeResource> {
  const { signal } = options;
  const dir = await mkdtemp(join(options.tempDir ?? tmpdir(), 'sluice-upload-'));
  let key: Buffer | undefined;
  try {
    const sealed = await sealAndSplit(path, {
      paths: { small: join(dir, 'small'), big: join(dir, 'big') },
      smallSizeKB: options.smallSizeKB ?? DEFAULT_SMALL_SIZE_KB,
      chunkSize: options.chunkSize ?? cdn.chunkSize,
      signal,
    });
    key = sealed.key;
    const total = sealed.manifest.bigSize;
    const { folder, name } = target;
    const onCdn =
      cdn.kind === 's3'
        ? await uploadBigPart(cdn, folder, name, sealed.bigPath, total, options)
        : undefined;
    const parts = {
      layout: sealed.manifest,
      smallSha256: sealed.smallSha256,
      dataKey: sealed.key,
      small: { name: 'small', path: sealed.smallPath, filename: 'small' },
      big: onCdn
        ? { name: 'cdnKey', value: onCdn.cdnKey }
        : { name: 'big', path: sealed.bigPath, filename: 'big' },
    };
    const { signKey, release } = options;
    const how = { signal, signKey, release };
    const { created, manifest } = await registerVersion(target, parts, how).catch(
      async (e: unknown) => {
        // Nothing was registered: do not leave an unreachable big part on the CDN.
        await onCdn?.remove().catch(() => {});
        throw e;
      },
    );
    if (cdn.kind === 'http') options.onProgress?.({ loaded: total, total });
    if (options.cacheDir !== undefined) {
      // With its manifest and resource, so `sluice cache verify` can check it offline.
      const cache = await BigPartCache.open(options.cacheDir);
      await cache.put(sealed.bigPath, manifest, { resource: created, move: true, signal });
    }
    return created;
  } finally {
    key?.fill(0);
    await rm(dir, { recursive: true, force: true });
  }
}
