import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ERROR_CODES, httpStatusOf, isErrorCode, isSluiceError, SluiceError } from './errors.js';

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

  it('isSluiceError accepts a list of codes', () => {
    const e = new SluiceError('ERR_NETWORK', 'x');
    expect(isSluiceError(e, ['ERR_IO', 'ERR_NETWORK'])).toBe(true);
    expect(isSluiceError(e, ['ERR_IO'])).toBe(false);
  });

  it('carries the HTTP status of its code, and the answer status that caused it', () => {
    expect(new SluiceError('ERR_DEVICE_NOT_BOUND', 'x').statusCode).toBe(403);
    expect(new SluiceError('ERR_BAD_DECRYPT', 'x').statusCode).toBe(500);
    const e = new SluiceError('ERR_HTTP', 'x', { status: 404, retryAfterSeconds: 3, field: 'f' });
    expect([e.status, e.retryAfterSeconds, e.field]).toEqual([404, 3, 'f']);
  });
});

describe('the error-code registry', () => {
  it('gives every code the API sends the status docs/API.md lists, and nothing else a status', () => {
    const doc = readFileSync(new URL('../../../docs/API.md', import.meta.url), 'utf8');
    const section = doc.slice(doc.indexOf('## Errors'), doc.indexOf('## Roles and operations'));
    const rows = [...section.matchAll(/^\|\s*(\d{3})\s*\|\s*`(ERR_[A-Z_]+)`/gm)].map((m) => [
      m[2],
      Number(m[1]),
    ]);
    expect(rows.length).toBeGreaterThan(5);
    const documented = Object.fromEntries(rows);
    const withStatus = Object.fromEntries(
      Object.entries(ERROR_CODES)
        .filter(([, info]) => info.status !== null)
        .map(([code, info]) => [code, info.status]),
    );
    // ERR_GONE is a parcel route's answer, documented with the parcel routes.
    expect({ ...documented, ERR_GONE: 410 }).toEqual(withStatus);
  });

  it('recognises its codes and nothing else', () => {
    expect(isErrorCode('ERR_IO')).toBe(true);
    expect(isErrorCode('ERR_NOPE')).toBe(false);
    expect(isErrorCode('toString')).toBe(false);
    expect(httpStatusOf('ERR_RATE_LIMITED')).toBe(429);
  });
});
