import {
  type ReleaseResponse,
  type RemoveVersionResponse,
  SluiceError,
  type VersionsResponse,
} from '@sluice/protocol';
import type { Session } from '../http/session.js';
import { checkResourceName } from './resourceName.js';

/** The largest version number the API takes (9 digits). */
const MAX_VERSION = 999_999_999;

/** A version number as the API takes it, or ERR_INVALID_ARG before any request. */
export function checkVersion(value: unknown): number {
  if (
    typeof value !== 'number' ||
    !Number.isSafeInteger(value) ||
    value < 1 ||
    value > MAX_VERSION
  ) {
    const shown = typeof value === 'number' ? String(value) : typeof value;
    throw new SluiceError(
      'ERR_INVALID_ARG',
      `invalid version ${shown}: a whole number from 1 to ${MAX_VERSION}`,
    );
  }
  return value;
}

interface Call {
  signal?: AbortSignal;
}

function resourcePath(folder: string, name: string): string {
  checkResourceName(folder, 'folder');
  checkResourceName(name, 'name');
  return `/resources/${encodeURIComponent(folder)}/${encodeURIComponent(name)}`;
}

/**
 * Every stored version of `folder/name`, oldest first: number, sizes, when and by whom it was
 * uploaded, and which one is released (`current`, the version a device gets by default).
 */
export async function listVersions(
  session: Session,
  folder: string,
  name: string,
  options: Call = {},
): Promise<VersionsResponse> {
  return session.request<VersionsResponse>('GET', `${resourcePath(folder, name)}/versions`, {
    signal: options.signal,
  });
}

/**
 * Makes `version` of `folder/name` the released one: devices that name no version get it from
 * their next pull. Rolling back is releasing the previous one (`previous` in the answer).
 */
export async function releaseVersion(
  session: Session,
  folder: string,
  name: string,
  version: number,
  options: Call = {},
): Promise<ReleaseResponse> {
  const path = `${resourcePath(folder, name)}/release`;
  return session.request<ReleaseResponse>('POST', path, {
    json: { version: checkVersion(version) },
    signal: options.signal,
  });
}

/**
 * Deletes one version of `folder/name` with its parts. The released version is refused
 * (ERR_CONFLICT) unless `force`: then the newest older version (else the newest) becomes the
 * released one. Deleting the last version deletes the resource (`current` null).
 */
export async function removeVersion(
  session: Session,
  folder: string,
  name: string,
  version: number,
  options: Call & { force?: boolean } = {},
): Promise<RemoveVersionResponse> {
  const query = `version=${checkVersion(version)}${options.force === true ? '&force=true' : ''}`;
  return session.request<RemoveVersionResponse>(
    'DELETE',
    `${resourcePath(folder, name)}?${query}`,
    {
      signal: options.signal,
    },
  );
}

/** Deletes `folder/name`: every version, its metadata and its parts. */
export async function removeResource(
  session: Session,
  folder: string,
  name: string,
  options: Call = {},
): Promise<void> {
  await session.request('DELETE', resourcePath(folder, name), { signal: options.signal });
}
