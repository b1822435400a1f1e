import { isSluiceError } from '@sluice/protocol';
import { describe, expect, it } from 'vitest';
import {
  BadRequest,
  Conflict,
  Forbidden,
  httpErrorFor,
  isHttpError,
  NetworkError,
  NotFound,
  RateLimited,
  ServerError,
  TooLarge,
  Unauthorized,
} from './errors.js';

const at = { method: 'GET', url: 'http://127.0.0.1:1/x' };

describe('HTTP errors', () => {
  it('maps each status to its class and code', () => {
    const cases: Array<[number, unknown, string]> = [
      [400, BadRequest, 'ERR_BAD_REQUEST'],
      [405, BadRequest, 'ERR_BAD_REQUEST'],
      [415, BadRequest, 'ERR_BAD_REQUEST'],
      [401, Unauthorized, 'ERR_UNAUTHORIZED'],
      [403, Forbidden, 'ERR_FORBIDDEN'],
      [404, NotFound, 'ERR_NOT_FOUND'],
      [410, NotFound, 'ERR_NOT_FOUND'],
      [409, Conflict, 'ERR_CONFLICT'],
      [413, TooLarge, 'ERR_TOO_LARGE'],
      [429, RateLimited, 'ERR_RATE_LIMITED'],
      [500, ServerError, 'ERR_SERVER'],
      [502, ServerError, 'ERR_SERVER'],
      [503, ServerError, 'ERR_SERVER'],
    ];
    for (const [status, cls, code] of cases) {
      const e = httpErrorFor({ ...at, status, serverMessage: 'nope' });
      expect(e).toBeInstanceOf(cls as new (...a: never[]) => unknown);
      expect([e.code, e.status, e.method, e.url]).toEqual([code, status, 'GET', at.url]);
      expect(e.message).toBe(`GET ${at.url} answered ${status}: nope`);
      expect(e.name).toBe('SluiceError');
    }
  });

  it('a 403 ERR_DEVICE_NOT_BOUND keeps its class and takes that code', () => {
    const e = httpErrorFor({ ...at, status: 403, serverCode: 'ERR_DEVICE_NOT_BOUND' });
    expect(e).toBeInstanceOf(Forbidden);
    expect(e.code).toBe('ERR_DEVICE_NOT_BOUND');
    expect(e.serverCode).toBe('ERR_DEVICE_NOT_BOUND');
  });

  it('the codes that refine 400, 403 and 409 are taken; any other server code is not', () => {
    const cases = [
      [400, 'ERR_BAD_SIGNATURE', BadRequest, 'ERR_BAD_SIGNATURE'],
      [403, 'ERR_UNTRUSTED_PUBLISHER', Forbidden, 'ERR_UNTRUSTED_PUBLISHER'],
      [409, 'ERR_VERSION_CONFLICT', Conflict, 'ERR_VERSION_CONFLICT'],
      [403, 'ERR_VERSION_CONFLICT', Forbidden, 'ERR_FORBIDDEN'],
      [409, 'ERR_INTERNAL', Conflict, 'ERR_CONFLICT'],
    ] as const;
    for (const [status, serverCode, cls, code] of cases) {
      const e = httpErrorFor({ ...at, status, serverCode });
      expect(e).toBeInstanceOf(cls);
      expect(e.code).toBe(code);
    }
  });

  it('NetworkError has status 0; isHttpError also matches copies by shape', () => {
    const e = new NetworkError({ ...at, serverMessage: 'ECONNREFUSED' });
    expect([e.status, e.code]).toEqual([0, 'ERR_NETWORK']);
    expect(e.message).toBe(`GET ${at.url} failed: ECONNREFUSED`);
    expect(isHttpError(e, 'ERR_NETWORK')).toBe(true);
    expect(isHttpError(e, 'ERR_SERVER')).toBe(false);
    const copy = structuredClone({
      name: 'SluiceError',
      code: 'ERR_NOT_FOUND',
      status: 404,
      method: 'GET',
    });
    expect(isHttpError(copy, 'ERR_NOT_FOUND')).toBe(true);
    expect(isHttpError({ name: 'SluiceError', code: 'ERR_IO' })).toBe(false);
    expect(isSluiceError(e)).toBe(true);
  });
});
