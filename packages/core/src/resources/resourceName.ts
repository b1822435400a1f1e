import { SluiceError } from '../errors.js';

/**
 * Folder and resource names, the server's rule (docs/API.md): ASCII letters, digits, `.`, `_`,
 * `-`, starting with a letter or digit, at most 128 characters. Checked before any request, so
 * `..`, separators (plain or percent-encoded) and look-alikes never reach a URL, where `..` and
 * `%2e%2e` would be resolved away rather than sent.
 */
export const RESOURCE_NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

export function checkResourceName(value: unknown, what: 'folder' | 'name'): string {
  if (typeof value !== 'string' || !RESOURCE_NAME_PATTERN.test(value)) {
    const shown = typeof value === 'string' ? JSON.stringify(value.slice(0, 64)) : typeof value;
    throw new SluiceError(
      'ERR_INVALID_ARG',
      `invalid ${what} ${shown}: use 1 to 128 ASCII letters, digits, '.', '_' or '-', starting with a letter or digit`,
    );
  }
  return value;
}
