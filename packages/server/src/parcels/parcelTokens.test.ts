import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadOrCreateSigningKeys, type SigningKeys } from '../auth/keys.js';
import { Store } from '../stores/store.js';
import { PARCEL_TOKEN_TTL_SECONDS, ParcelTokens } from './parcelTokens.js';

let dir: string;
let keys: SigningKeys;
let store: Store;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'sluice-parcel-tokens-'));
  keys = await loadOrCreateSigningKeys(dir);
  store = await Store.open({ dataDir: join(dir, 'data') });
});
afterAll(async () => {
  await store.close();
  await rm(dir, { recursive: true, force: true });
});

const user = 'ab'.repeat(20);
const id = 'cd'.repeat(32);

describe('ParcelTokens', () => {
  it('verifies its own tokens and refuses another issuer’s', async () => {
    const tokens = new ParcelTokens(keys, 'sluice', store);
    const token = await tokens.issue(user, { name: 'remove', id });
    expect(await tokens.verify(token)).toMatchObject({ sub: user, op: 'remove', id });
    expect(await new ParcelTokens(keys, 'other', store).verify(token)).toBeUndefined();
    expect(tokens.unverifiedSubject(token)).toBe(user);
    expect(tokens.unverifiedSubject('not.a.jwt')).toBeUndefined();
  });

  it('consumes a token once, remembers it until it expires, then forgets it', async () => {
    const tokens = new ParcelTokens(keys, 'sluice', store);
    // A second ahead: `iat` is whole seconds, and the tokens below are issued after `now` is
    // read, so at a second boundary they would otherwise be issued "in the future" of `now`.
    const now = Date.now() + 1000;
    const claims = await tokens.verify(await tokens.issue(user, { name: 'download', id }), now);
    if (claims === undefined) throw new Error('token refused');
    expect(await tokens.consume(claims, now)).toBe(true);
    expect(await tokens.consume(claims, now)).toBe(false);
    const used = await tokens.issue(user, { name: 'download', id });
    const usedClaims = await tokens.verify(used, now);
    if (usedClaims === undefined) throw new Error('token refused');
    await tokens.consume(usedClaims, now);
    expect(await tokens.verify(used, now)).toBeUndefined();
    expect(await tokens.usedCount()).toBe(2);
    // Well past expiry, the next consume drops both; the tokens themselves are expired by then.
    const later = now + (PARCEL_TOKEN_TTL_SECONDS + 10) * 1000;
    expect(await tokens.verify(used, later)).toBeUndefined();
    const fresh = await tokens.issue(user, { name: 'download', id });
    const freshClaims = await tokens.verify(fresh);
    if (freshClaims === undefined) throw new Error('token refused');
    expect(await tokens.consume(freshClaims, later)).toBe(true);
    expect(await tokens.usedCount()).toBe(1);
  });

  it('keeps used ids in the store: a store reopened after a restart still refuses them', async () => {
    const own = await mkdtemp(join(tmpdir(), 'sluice-parcel-tokens-restart-'));
    try {
      const first = await Store.open({ dataDir: own });
      const tokens = new ParcelTokens(keys, 'sluice', first);
      const token = await tokens.issue(user, { name: 'remove', id });
      const claims = await tokens.verify(token);
      if (claims === undefined) throw new Error('token refused');
      expect(await tokens.consume(claims)).toBe(true);
      await first.close();
      const second = await Store.open({ dataDir: own });
      try {
        const again = new ParcelTokens(keys, 'sluice', second);
        expect(await again.verify(token)).toBeUndefined();
        expect(await again.consume(claims)).toBe(false);
        expect(await again.usedCount()).toBe(1);
      } finally {
        await second.close();
      }
    } finally {
      await rm(own, { recursive: true, force: true });
    }
  });
});
