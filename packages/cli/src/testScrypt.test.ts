import { describe, expect, it } from 'vitest';
import { testScryptParams } from './testScrypt.js';

describe('testScryptParams', () => {
  it('is unset unless SLUICE_TEST_SCRYPT_N is, and takes only powers of two', () => {
    expect(testScryptParams({})).toBeUndefined();
    expect(testScryptParams({ SLUICE_TEST_SCRYPT_N: '4096' })).toEqual({ logN: 12, r: 8, p: 1 });
    expect(() => testScryptParams({ SLUICE_TEST_SCRYPT_N: '5000' })).toThrow(/power of two/);
    expect(() => testScryptParams({ SLUICE_TEST_SCRYPT_N: 'lots' })).toThrow(/power of two/);
  });
});
