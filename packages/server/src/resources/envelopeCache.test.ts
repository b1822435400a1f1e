import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import type { UserRecord } from '../stores/records.js';
import { DEFAULT_ENVELOPE_CACHE, EnvelopeCache } from './envelopeCache.js';

const HW = 'a1'.repeat(32);
const PW = 'correct horse battery staple';

function user(over: Partial<UserRecord> = {}): UserRecord {
  return {
    id: 'u1',
    email: 'op@example.test',
    role: 'Operator',
    disabled: false,
    passwordHash: 'scrypt$12$8$1$salt$hash',
    boundHardwareHash: HW,
    orgId: 'default',
    createdAt: '2026-01-01T00:00:00.000Z',
    updatedAt: '2026-01-01T00:00:00.000Z',
    ...over,
  };
}

function clock() {
  let t = 1_000_000;
  return { now: () => t, advance: (ms: number) => (t += ms) };
}

describe('EnvelopeCache', () => {
  it('gives back a copy of the key for the same user, password and device only', () => {
    const cache = new EnvelopeCache();
    const key = randomBytes(32);
    cache.rememberKey(user(), PW, HW, key);
    const got = cache.envelopeKey(user(), PW, HW);
    expect(got?.equals(key)).toBe(true);
    got?.fill(0);
    expect(cache.envelopeKey(user(), PW, HW)?.equals(key)).toBe(true);
    expect(cache.envelopeKey(user(), `${PW} `, HW)).toBeUndefined();
    expect(cache.envelopeKey(user({ boundHardwareHash: 'b2'.repeat(32) }), PW, HW)).toBeUndefined();
    expect(cache.envelopeKey(user({ boundHardwareHash: null }), PW, HW)).toBeUndefined();
    expect(cache.envelopeKey(user({ disabled: true }), PW, HW)).toBeUndefined();
    expect(cache.envelopeKey(user({ passwordHash: 'scrypt$12$8$1$salt$other' }), PW, HW)).toBe(
      undefined,
    );
    expect(cache.envelopeKey(user({ role: 'Admin' }), PW, HW)).toBeUndefined();
    expect(cache.envelopeKey(user({ email: 'other@example.test' }), PW, HW)).toBeUndefined();
    expect(cache.envelopeKey(user({ id: 'u2' }), PW, HW)).toBeUndefined();
  });

  it('expires a key at the TTL (10 minutes by default) and wipes it', () => {
    expect(DEFAULT_ENVELOPE_CACHE.ttlMs).toBe(10 * 60 * 1000);
    const c = clock();
    const cache = new EnvelopeCache({ now: c.now });
    const key = randomBytes(32);
    cache.rememberKey(user(), PW, HW, key);
    c.advance(DEFAULT_ENVELOPE_CACHE.ttlMs - 1);
    expect(cache.envelopeKey(user(), PW, HW)?.equals(key)).toBe(true);
    // Use does not extend it: the TTL counts from the verification.
    c.advance(1);
    expect(cache.envelopeKey(user(), PW, HW)).toBeUndefined();
    expect(cache.size.devices).toBe(0);
  });

  it('sweep drops expired keys nobody asks for', () => {
    const c = clock();
    const cache = new EnvelopeCache({ ttlMs: 1000, now: c.now });
    cache.rememberKey(user(), PW, HW, randomBytes(32));
    cache.rememberKey(user({ id: 'u2' }), PW, HW, randomBytes(32));
    c.advance(1000);
    cache.sweep();
    expect(cache.size.devices).toBe(0);
  });

  it('keeps at most maxDevices entries, least recently used out first', () => {
    const cache = new EnvelopeCache({ maxDevices: 2 });
    const keys = [randomBytes(32), randomBytes(32), randomBytes(32)];
    cache.rememberKey(user({ id: 'a' }), PW, HW, keys[0] as Buffer);
    cache.rememberKey(user({ id: 'b' }), PW, HW, keys[1] as Buffer);
    expect(cache.envelopeKey(user({ id: 'a' }), PW, HW)).toBeDefined();
    cache.rememberKey(user({ id: 'c' }), PW, HW, keys[2] as Buffer);
    expect(cache.size.devices).toBe(2);
    expect(cache.envelopeKey(user({ id: 'b' }), PW, HW)).toBeUndefined();
    expect(cache.envelopeKey(user({ id: 'a' }), PW, HW)?.equals(keys[0] as Buffer)).toBe(true);
    expect(cache.envelopeKey(user({ id: 'c' }), PW, HW)?.equals(keys[2] as Buffer)).toBe(true);
  });

  it('keeps small parts within the byte budget and until the TTL', async () => {
    const c = clock();
    const cache = new EnvelopeCache({ maxSmallBytes: 4096, ttlMs: 1000, now: c.now });
    let reads = 0;
    const read = (n: number) => async () => {
      reads++;
      return Buffer.alloc(n, 7);
    };
    expect((await cache.smallPart('x', read(1000))).length).toBe(1000);
    await cache.smallPart('x', read(1000));
    expect(reads).toBe(1);
    // Over a quarter of the budget: served, never kept.
    await cache.smallPart('big', read(2000));
    await cache.smallPart('big', read(2000));
    expect(reads).toBe(3);
    for (const id of ['y', 'z', 'w', 'v']) await cache.smallPart(id, read(1000));
    expect(cache.size.smallBytes).toBeLessThanOrEqual(4096);
    expect(cache.size.smallParts).toBe(4);
    await cache.smallPart('x', read(1000));
    expect(reads).toBe(8);
    c.advance(1000);
    await cache.smallPart('v', read(1000));
    expect(reads).toBe(9);
    cache.forgetSmall('v');
    expect(cache.size.smallParts).toBe(3);
  });

  it('keeps nothing with a TTL of 0', async () => {
    const cache = new EnvelopeCache({ ttlMs: 0 });
    cache.rememberKey(user(), PW, HW, randomBytes(32));
    expect(cache.envelopeKey(user(), PW, HW)).toBeUndefined();
    await cache.smallPart('x', async () => Buffer.alloc(10));
    expect(cache.size).toEqual({ devices: 0, smallParts: 0, smallBytes: 0 });
  });

  it('lets one request verify in full while the same ones wait for it', async () => {
    const cache = new EnvelopeCache();
    const first = cache.verifying(user(), PW, HW);
    expect(first.wait).toBeUndefined();
    const second = cache.verifying(user(), PW, HW);
    expect(second.wait).toBeInstanceOf(Promise);
    // Another password or record is not the same request.
    expect(cache.verifying(user(), `${PW}!`, HW).wait).toBeUndefined();
    expect(cache.verifying(user({ passwordHash: 'other' }), PW, HW).wait).toBeUndefined();
    let settled = false;
    void second.wait?.then(() => {
      settled = true;
    });
    await Promise.resolve();
    expect(settled).toBe(false);
    cache.rememberKey(user(), PW, HW, randomBytes(32));
    first.done();
    await second.wait;
    expect(settled).toBe(true);
    expect(cache.envelopeKey(user(), PW, HW)).toBeDefined();
    expect(cache.verifying(user(), PW, HW).wait).toBeUndefined();
  });

  it('refuses negative or fractional limits', () => {
    expect(() => new EnvelopeCache({ ttlMs: -1 })).toThrow(RangeError);
    expect(() => new EnvelopeCache({ maxSmallBytes: 1.5 })).toThrow(RangeError);
  });
});
