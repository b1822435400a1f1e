import { createHmac } from 'node:crypto';
import { SluiceError } from '@sluice/protocol';
import type { Store } from '../stores/store.js';

/**
 * Every instance over one database must hold the same keys: tokens signed by one are verified by
 * the others, and data keys wrapped by one are unwrapped by the others. The first instance
 * records what identifies its keys (the signing key's id, and an HMAC of a fixed label under the
 * master key: neither reveals a key); a later instance with other keys refuses to start, saying
 * which file differs, instead of answering 401 and 500 at random. (Replacing the keys on purpose:
 * delete the `keys.%` rows of `store_meta` while every instance is stopped.)
 */
export async function checkKeyAgreement(
  store: Store,
  keys: { signingKid: string; masterKey: Buffer },
  dataDir: string,
): Promise<void> {
  const master = createHmac('sha256', keys.masterKey)
    .update('sluice key agreement v1')
    .digest('hex');
  const want = { 'keys.signingKid': keys.signingKid, 'keys.masterKeyId': master };
  const files = { 'keys.signingKid': 'jwt-signing-key.json', 'keys.masterKeyId': 'master.key' };
  const found = await store.transaction(async (t) => {
    const seen: [string, string | undefined][] = [];
    for (const [name, value] of Object.entries(want)) {
      const stored = await t.meta.get(name);
      if (stored === undefined) await t.meta.set(name, value);
      seen.push([name, stored]);
    }
    return seen;
  });
  for (const [name, stored] of found) {
    if (stored !== undefined && stored !== want[name as keyof typeof want]) {
      throw new SluiceError(
        'ERR_INVALID_ARG',
        `${dataDir}/${files[name as keyof typeof files]} is not the one the other instances over this database use: copy it from the first instance's data directory (docs/OPERATIONS.md)`,
        { field: 'dataDir' },
      );
    }
  }
}
