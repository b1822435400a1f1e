import { setTimeout as delay } from 'node:timers/promises';
import {
  type EnvelopeResource,
  isSluiceError,
  type ListResponse,
  type Manifest,
  type ManifestV2,
} from '@sluice/protocol';
import { toManifestV2 } from '../format/manifest.js';
import { type PublisherPrivateKey, signManifest } from '../format/manifestSignature.js';
import type { Session } from '../http/session.js';
import { type MultipartPart, multipartBody } from './multipartBody.js';

/** How many times a push proposes a version number before it gives up (ERR_VERSION_CONFLICT). */
export const MAX_VERSION_ATTEMPTS = 16;

/** The resource a push creates a new version of. */
export interface PushTarget {
  session: Session;
  folder: string;
  name: string;
}

/** What the API stores of a new version; `big` is the big part itself or its `cdnKey`. */
export interface VersionParts {
  /** The split's layout (sizes and chunk digests), from sealAndSplit or sealedStream. */
  layout: Manifest;
  /** Lower-case hex SHA-256 of the small part. */
  smallSha256: string;
  dataKey: Buffer;
  small: MultipartPart;
  big: MultipartPart;
}

/**
 * `POST /resources/{folder}`: registers a new version of the target with a v2 manifest naming it
 * (signed with `signKey` when given), its small part and data key, and the big part (sent along)
 * or where it is on the CDN. The version proposed is the latest + 1; when another push took that
 * number first (409 ERR_VERSION_CONFLICT) the manifest is made and signed again for the next one.
 * Resolves with the server's answer and the manifest it accepted.
 */
export async function registerVersion(
  target: PushTarget,
  parts: VersionParts,
  options: {
    signal?: AbortSignal | undefined;
    signKey?: PublisherPrivateKey | undefined;
    /** False: the new version is stored but devices keep getting the released one. */
    release?: boolean | undefined;
  },
): Promise<{ created: EnvelopeResource; manifest: ManifestV2 }> {
  const { folder, name } = target;
  for (let attempt = 1; ; attempt++) {
    const version = (await latestVersion(target, options.signal)) + 1;
    const unsigned = toManifestV2(parts.layout, {
      resource: { folder, name, version },
      smallSha256: parts.smallSha256,
      dataKey: parts.dataKey,
    });
    const manifest = options.signKey ? signManifest(unsigned, options.signKey) : unsigned;
    try {
      const created = await send(target, parts, manifest, options);
      return { created, manifest };
    } catch (e) {
      if (!isSluiceError(e, 'ERR_VERSION_CONFLICT') || attempt >= MAX_VERSION_ATTEMPTS) throw e;
      // Concurrent pushes of one name: spread the next proposals a little.
      await delay(Math.random() * 20 * attempt, undefined, { signal: options.signal });
    }
  }
}

/** The highest version the target has had on the server (0 for none), from the folder's list. */
async function latestVersion(
  { session, folder, name }: PushTarget,
  signal: AbortSignal | undefined,
): Promise<number> {
  const list = await session.request<ListResponse>(
    'GET',
    `/resources/${encodeURIComponent(folder)}`,
    { signal },
  );
  const listed = list.resources.find((r) => r.name === name);
  // `nextVersion` skips the numbers of deleted versions (servers without it never reuse none).
  return listed === undefined ? 0 : (listed.nextVersion ?? listed.version + 1) - 1;
}

function send(
  { session, folder, name }: PushTarget,
  parts: VersionParts,
  manifest: ManifestV2,
  { signal, release }: { signal?: AbortSignal | undefined; release?: boolean | undefined },
): Promise<EnvelopeResource> {
  const body = multipartBody([
    { name: 'name', value: name },
    { name: 'manifest', value: JSON.stringify(manifest) },
    { name: 'dataKey', value: parts.dataKey.toString('base64') },
    // Sent only to keep a version back: a server from before releases never sees the field.
    ...(release === false ? [{ name: 'release', value: 'false' }] : []),
    parts.small,
    parts.big,
  ]);
  return session.request<EnvelopeResource>('POST', `/resources/${encodeURIComponent(folder)}`, {
    body: body.stream,
    headers: { 'content-type': body.contentType },
    signal,
  });
}
