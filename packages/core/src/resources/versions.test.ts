// Argument checks of the version calls: a bad number or name is ERR_INVALID_ARG before any request
// (the session has no login, so anything that got as far as a request is ERR_NOT_LOGGED_IN).
import { isSluiceError } from '@sluice/protocol';
import { describe, expect, it } from 'vitest';
import { Session } from '../http/session.js';
import { pull } from './pull.js';
import { checkVersion, listVersions, releaseVersion, removeVersion } from './versions.js';

const session = new Session({ apiUrl: 'http://127.0.0.1:9' });

async function code(p: Promise<unknown>): Promise<string | undefined> {
  const e = await p.then(
    () => undefined,
    (err: unknown) => err,
  );
  return isSluiceError(e) ? e.code : String(e);
}

describe('version arguments', () => {
  it('takes whole numbers from 1 to 999999999 only', () => {
    expect(checkVersion(1)).toBe(1);
    expect(checkVersion(999_999_999)).toBe(999_999_999);
    for (const bad of [0, -1, 1.5, 1_000_000_000, Number.NaN, '2', null]) {
      expect(() => checkVersion(bad)).toThrow(/invalid version/);
    }
  });

  it('refuses bad versions and names before any request', async () => {
    expect(await code(releaseVersion(session, 'models', 'm.bin', 0))).toBe('ERR_INVALID_ARG');
    expect(await code(removeVersion(session, 'models', 'm.bin', 2.5))).toBe('ERR_INVALID_ARG');
    expect(await code(listVersions(session, 'models', '../m.bin'))).toBe('ERR_INVALID_ARG');
    expect(await code(releaseVersion(session, '..', 'm.bin', 1))).toBe('ERR_INVALID_ARG');
    const asked = pull(session, 'models', 'm.bin', {
      to: 'buffer',
      password: 'pw',
      hardware: 'a'.repeat(64),
      version: -3,
    });
    expect(await code(asked)).toBe('ERR_INVALID_ARG');
    // A good one does get as far as the session.
    expect(await code(listVersions(session, 'models', 'm.bin'))).toBe('ERR_NOT_LOGGED_IN');
    expect(await code(releaseVersion(session, 'models', 'm.bin', 2))).toBe('ERR_NOT_LOGGED_IN');
  });
});
