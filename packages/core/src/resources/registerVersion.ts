import type { EnvelopeResource, Manifest } from '@sluice/protocol';
import type { Session } from '../http/session.js';
import { type MultipartPart, multipartBody } from './multipartBody.js';

/** The resource a push creates a new version of. */
export interface PushTarget {
  session: Session;
  folder: string;
  name: string;
}

/** What the API stores of a new version; `big` is the big part itself or its `cdnKey`. */
export interface VersionParts {
  manifest: Manifest;
  dataKey: Buffer;
  small: MultipartPart;
  big: MultipartPart;
}

/**
 * `POST /resources/{folder}`: registers a new version of the target with its small part,
 * manifest and data key, and the big part (sent along) or where it is on the CDN. Resolves with
 * the server's answer.
 */
export function registerVersion(
  { session, folder, name }: PushTarget,
  parts: VersionParts,
  signal: AbortSignal | undefined,
): Promise<EnvelopeResource> {
  const body = multipartBody([
    { name: 'name', value: name },
    { name: 'manifest', value: JSON.stringify(parts.manifest) },
    { name: 'dataKey', value: parts.dataKey.toString('base64') },
    parts.small,
    parts.big,
  ]);
  return session.request<EnvelopeResource>('POST', `/resources/${encodeURIComponent(folder)}`, {
    body: body.stream,
    headers: { 'content-type': body.contentType },
    signal,
  });
}
