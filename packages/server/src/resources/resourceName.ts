import { isResourceName, RESOURCE_NAME_RULE, SluiceError } from '@sluice/protocol';

/** Returns `value` when it is an acceptable folder or resource name, else throws 400. */
export function checkResourceName(value: unknown, what: 'folder' | 'name'): string {
  if (!isResourceName(value)) {
    throw new SluiceError('ERR_BAD_REQUEST', `invalid ${what}: ${RESOURCE_NAME_RULE}`);
  }
  return value;
}
