import { describe, expect, it } from 'vitest';
import { TEST_SCRYPT } from '../test-helpers.js';
import {
  DEFAULT_SCRYPT_PARAMS,
  hashPassword,
  parsePasswordHash,
  verifyPassword,
} from './passwordHash.js';

describe('password hashing', () => {
  it('uses scrypt N=2^15 r=8 p=1 with a 16-byte salt and 32-byte key by default', async () => {
    const hash = await hashPassword('correct horse battery staple');
    expect(hash).toMatch(/^scrypt\$15\$8\$1\$[A-Za-z0-9_-]{22}\$[A-Za-z0-9_-]{43}$/);
    expect(parsePasswordHash(hash)?.params).toEqual(DEFAULT_SCRYPT_PARAMS);
    expect(await verifyPassword('correct horse battery staple', hash)).toBe(true);
  });

  it('salts per hash and rejects wrong passwords', async () => {
    const a = await hashPassword('same password here', TEST_SCRYPT);
    const b = await hashPassword('same password here', TEST_SCRYPT);
    expect(a).not.toBe(b);
    expect(await verifyPassword('same password here', b)).toBe(true);
    expect(await verifyPassword('same password herf', a)).toBe(false);
    expect(await verifyPassword('', a)).toBe(false);
  });

  it('treats Unicode-equivalent passwords alike (NFC) and malformed hashes as no match', async () => {
    const hash = await hashPassword('caf\u00e9 au lait 1234', TEST_SCRYPT);
    expect(await verifyPassword('cafe\u0301 au lait 1234', hash)).toBe(true);
    expect(await verifyPassword('x', 'plain')).toBe(false);
    expect(await verifyPassword('x', hash.replace('$12$', '$40$'))).toBe(false);
    await expect(hashPassword('x', { logN: 4, r: 8, p: 1 })).rejects.toThrow(RangeError);
  });
});
