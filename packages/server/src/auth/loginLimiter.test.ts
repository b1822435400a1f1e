import { isSluiceError } from '@sluice/protocol';
import { describe, expect, it } from 'vitest';
import { checkTrustProxy } from '../app/trustProxy.js';
import { LoginLimiter, type PasswordAttempt, resolveLoginLimits } from './loginLimiter.js';

const A = '192.0.2.1';
const B = '192.0.2.2';
const T0 = 1_000_000_000_000;
const s = (seconds: number) => T0 + seconds * 1000;

function attempt(r: number | PasswordAttempt): PasswordAttempt {
  if (typeof r === 'number') throw new Error(`refused for ${r} s`);
  return r;
}

describe('LoginLimiter', () => {
  it('per client: locks after the limit, doubles the lock per further failure, caps it, forgets later', () => {
    const l = new LoginLimiter({
      perClient: { limit: 3, lockSeconds: 10, maxLockSeconds: 40, forgetSeconds: 100 },
    });
    for (let i = 0; i < 3; i++) attempt(l.admitLogin('x@example.test', A, s(0)));
    expect(l.admitLogin('x@example.test', A, s(1))).toBe(9);
    // Another address and another account are not affected.
    attempt(l.admitLogin('x@example.test', B, s(1)));
    attempt(l.admitLogin('y@example.test', A, s(1)));
    attempt(l.admitLogin('x@example.test', A, s(10))); // 4th failure: 20 s
    expect(l.admitLogin('x@example.test', A, s(11))).toBe(19);
    attempt(l.admitLogin('x@example.test', A, s(30))); // 5th: 40 s
    expect(l.admitLogin('x@example.test', A, s(31))).toBe(39);
    attempt(l.admitLogin('x@example.test', A, s(70))); // 6th: capped at 40 s
    expect(l.admitLogin('x@example.test', A, s(71))).toBe(39);
    // 100 s after the last failure (and unlocked), the count starts over.
    for (let i = 0; i < 2; i++) attempt(l.admitLogin('x@example.test', A, s(171)));
    attempt(l.admitLogin('x@example.test', A, s(171)));
    expect(l.admitLogin('x@example.test', A, s(172))).toBe(9);
  });

  it('counts an attempt before its outcome (parallel guesses cannot pass the limit); a success takes it back', () => {
    const l = new LoginLimiter({
      perClient: { limit: 2, lockSeconds: 60, maxLockSeconds: 60, forgetSeconds: 60 },
    });
    const first = attempt(l.admitLogin('x@example.test', A, s(0)));
    attempt(l.admitLogin('x@example.test', A, s(0)));
    expect(l.admitLogin('x@example.test', A, s(0))).toBe(60);
    first.succeeded();
    attempt(l.admitLogin('x@example.test', A, s(0)));
  });

  it('per address: only attempts that did not succeed use the budget', () => {
    const l = new LoginLimiter({ perAddress: { limit: 3, windowSeconds: 60 } });
    for (let i = 0; i < 10; i++) attempt(l.admitLogin(`ok${i}@example.test`, A, s(0))).succeeded();
    for (let i = 0; i < 3; i++) attempt(l.admitLogin(`bad${i}@example.test`, A, s(0)));
    expect(l.admitLogin('ok0@example.test', A, s(1))).toBe(59);
    attempt(l.admitLogin('ok0@example.test', B, s(1)));
    attempt(l.admitLogin('ok0@example.test', A, s(60)));
  });

  it('per account: past the ceiling new addresses are spaced out, refilled over time; known ones pass', () => {
    const l = new LoginLimiter({ perAccount: { limit: 4, windowSeconds: 40 } });
    attempt(l.admitLogin('x@example.test', A, s(0))).succeeded(); // A is now known
    for (let i = 0; i < 4; i++) attempt(l.admitLogin('x@example.test', `198.51.100.${i}`, s(0)));
    // One token per 10 s: the next new address waits at most that long.
    expect(l.admitLogin('x@example.test', B, s(0))).toBe(10);
    expect(l.admitLogin('x@example.test', B, s(7))).toBe(3);
    attempt(l.admitLogin('x@example.test', A, s(7)));
    attempt(l.admitLogin('x@example.test', B, s(10)));
    expect(l.admitLogin('x@example.test', B, s(10))).toBe(10);
    // Other accounts have buckets of their own.
    attempt(l.admitLogin('y@example.test', B, s(10)));
  });

  it('token passwords: a budget per (user, address) of their own, cleared by a right password', () => {
    const l = new LoginLimiter({
      perClient: { limit: 1, lockSeconds: 60, maxLockSeconds: 60, forgetSeconds: 60 },
      withToken: { limit: 2, lockSeconds: 30, maxLockSeconds: 60, forgetSeconds: 60 },
    });
    attempt(l.admitLogin('x@example.test', A, s(0)));
    expect(l.admitLogin('x@example.test', A, s(0))).toBe(60);
    attempt(l.admitTokenPassword('user-1', A, s(0)));
    attempt(l.admitTokenPassword('user-1', A, s(0)));
    expect(l.admitTokenPassword('user-1', A, s(1))).toBe(29);
    expect(l.tokenPasswordWait('user-1', A, s(1))).toBe(29);
    expect(l.tokenPasswordWait('user-1', B, s(1))).toBeUndefined();
    l.tokenPasswordOk('user-1', A);
    expect(l.tokenPasswordWait('user-1', A, s(1))).toBeUndefined();
  });

  it('refuses rules that are not positive numbers, naming the field', () => {
    const bad = [
      { perClient: { limit: 0, lockSeconds: 1, maxLockSeconds: 1, forgetSeconds: 1 } },
      { perAddress: { limit: 1.5, windowSeconds: 60 } },
      { perAccount: { limit: 10, windowSeconds: -1 } },
      { withToken: { limit: 3, lockSeconds: Number.NaN, maxLockSeconds: 1, forgetSeconds: 1 } },
    ];
    const fields = bad.map((limits) => {
      try {
        resolveLoginLimits(limits);
        return 'accepted';
      } catch (e) {
        return isSluiceError(e, 'ERR_INVALID_ARG') ? e.field : String(e);
      }
    });
    expect(fields).toEqual([
      'loginLimits.perClient.limit',
      'loginLimits.perAddress.limit',
      'loginLimits.perAccount.windowSeconds',
      'loginLimits.withToken.lockSeconds',
    ]);
  });
});

describe('checkTrustProxy', () => {
  it('accepts booleans, addresses, CIDRs and range names, as a comma list or an array', () => {
    for (const v of [
      true,
      false,
      '127.0.0.1',
      '10.0.0.0/8, 192.168.1.1',
      ['loopback', 'fd00::/8', '::1'],
    ]) {
      expect(checkTrustProxy(v)).toEqual(v);
    }
  });

  it('refuses anything else with ERR_INVALID_ARG naming trustProxy', () => {
    for (const v of ['', 'yes', '10.0.0.0/33', '1.2.3.4/8/9', ['127.0.0.1', 7], [], 2, null, {}]) {
      let caught: unknown;
      try {
        checkTrustProxy(v);
      } catch (e) {
        caught = e;
      }
      expect(isSluiceError(caught, 'ERR_INVALID_ARG'), JSON.stringify(v)).toBe(true);
      expect((caught as { field?: string }).field).toBe('trustProxy');
    }
  });
});
