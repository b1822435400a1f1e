import { isResourceName, RESOURCE_NAME_RULE, SluiceError } from '@sluice/protocol';

/**
 * Checked before any request, so `..`, separators (plain or percent-encoded) and look-alikes never
 * reach a URL, where `..` and `%2e%2e` would be resolved away rather than sent.
 */
export function checkResourceName(value: unknown, what: 'folder' | 'name'): string {
  if (!isResourceName(value)) {
    const shown = typeof value === 'string' ? JSON.stringify(value.slice(0, 64)) : typeof value;
    throw new SluiceError('ERR_INVALID_ARG', `invalid ${what} ${shown}: ${RESOURCE_NAME_RULE}`);
  }
  return value;
}
