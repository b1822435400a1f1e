import { ApiError } from '../errors.js';

/**
 * Folder and resource names: ASCII letters, digits, `.`, `_`, `-`, starting with a letter or
 * digit, at most 128 characters. That excludes `.`, `..`, separators (also once URL-decoded),
 * NUL, whitespace and Unicode look-alikes.
 */
export const RESOURCE_NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

/** Returns `value` when it is an acceptable folder or resource name, else throws 400. */
export function checkResourceName(value: unknown, what: 'folder' | 'name'): string {
  if (typeof value !== 'string' || !RESOURCE_NAME_PATTERN.test(value)) {
    throw new ApiError(
      'ERR_BAD_REQUEST',
      `invalid ${what}: use 1 to 128 ASCII letters, digits, '.', '_' or '-', starting with a letter or digit`,
    );
  }
  return value;
}
