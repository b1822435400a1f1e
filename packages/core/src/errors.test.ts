import { describe, expect, it } from 'vitest';
import { isSluiceError, SluiceError } from './errors.js';

describe('SluiceError', () => {
  it('carries name, code, cause and message', () => {
    const cause = new Error('inner');
    const e = new SluiceError('ERR_IO', 'disk gone', {
      cause,
      syscall: 'read',
      errno: 5,
      path: '/x',
    });
    expect(e).toBeInstanceOf(Error);
    expect(e.name).toBe('SluiceError');
    expect(e.code).toBe('ERR_IO');
    expect(e.cause).toBe(cause);
    expect(e.message).toBe('disk gone');
    expect([e.syscall, e.errno, e.path]).toEqual(['read', 5, '/x']);
    expect(String(e)).toBe('SluiceError: disk gone');
  });

  it('isSluiceError matches by instance or by name+code, and filters by code', () => {
    const e = new SluiceError('ERR_BAD_DECRYPT', 'x');
    expect(isSluiceError(e)).toBe(true);
    expect(isSluiceError(e, 'ERR_BAD_DECRYPT')).toBe(true);
    expect(isSluiceError(e, 'ERR_IO')).toBe(false);
    const foreign = { name: 'SluiceError', code: 'ERR_IO', message: 'from another copy' };
    expect(isSluiceError(foreign, 'ERR_IO')).toBe(true);
    expect(isSluiceError(structuredClone(foreign))).toBe(true);
    expect(isSluiceError({ name: 'SluiceError' })).toBe(false);
    expect(isSluiceError(Object.assign(new Error('x'), { code: 'ERR_IO' }))).toBe(false);
    expect(isSluiceError(null)).toBe(false);
    expect(isSluiceError('SluiceError')).toBe(false);
  });
});
