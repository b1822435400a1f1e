import type { PullOptions } from './pullOptions.js';

/** The trust list of a pull, checked: public keys as strings (raw 32 bytes, base64). */
export function trustedPublishers(options: PullOptions): readonly string[] | undefined {
  const list = options.trustedPublishers;
  if (list === undefined) return undefined;
  if (!Array.isArray(list) || !list.every((k) => typeof k === 'string')) {
    throw new TypeError('trustedPublishers must be an array of public keys (base64 strings)');
  }
  return list;
}
