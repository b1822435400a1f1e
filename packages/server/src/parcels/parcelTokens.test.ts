import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadOrCreateSigningKeys, type SigningKeys } from '../auth/keys.js';
import { PARCEL_TOKEN_TTL_SECONDS, ParcelTokens } from './parcelTokens.js';

let dir: string;
let keys: SigningKeys;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'sluice-parcel-tokens-'));
  keys = await loadOrCreateSigningKeys(dir);
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const user = 'ab'.repeat(20);
const id = 'cd'.repeat(32);

describe('ParcelTokens', () => {
  it('verifies its own tokens and refuses another issuer’s', async () => {
    const tokens = new ParcelTokens(keys, 'sluice');
    const token = await tokens.issue(user, { name: 'remove', id });
    expect(await tokens.verify(token)).toMatchObject({ sub: user, op: 'remove', id });
    expect(await new ParcelTokens(keys, 'other').verify(token)).toBeUndefined();
    expect(tokens.unverifiedSubject(token)).toBe(user);
    expect(tokens.unverifiedSubject('not.a.jwt')).toBeUndefined();
  });

  it('consumes a token once, remembers it until it expires, then forgets it', async () => {
    const tokens = new ParcelTokens(keys, 'sluice');
    const now = Date.now();
    const claims = await tokens.verify(await tokens.issue(user, { name: 'download', id }), now);
    if (claims === undefined) throw new Error('token refused');
    expect(tokens.consume(claims, now)).toBe(true);
    expect(tokens.consume(claims, now)).toBe(false);
    const used = await tokens.issue(user, { name: 'download', id });
    const usedClaims = await tokens.verify(used, now);
    if (usedClaims === undefined) throw new Error('token refused');
    tokens.consume(usedClaims, now);
    expect(await tokens.verify(used, now)).toBeUndefined();
    expect(tokens.usedCount).toBe(2);
    // Well past expiry, the next consume drops both; the tokens themselves are expired by then.
    const later = now + (PARCEL_TOKEN_TTL_SECONDS + 10) * 1000;
    expect(await tokens.verify(used, later)).toBeUndefined();
    const fresh = await tokens.issue(user, { name: 'download', id });
    const freshClaims = await tokens.verify(fresh);
    if (freshClaims === undefined) throw new Error('token refused');
    expect(tokens.consume(freshClaims, later)).toBe(true);
    expect(tokens.usedCount).toBe(1);
  });
});
