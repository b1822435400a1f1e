import { invalidSetting } from '../errors.js';
import type { LoginRefusal } from '../ops/metrics.js';
import { AccountCeiling, pairKey } from './accountCeiling.js';
import { BackoffCounter, type BackoffRule } from './backoffCounter.js';
import { type LimitRule, WindowCounter } from './windowCounter.js';

export type { BackoffRule } from './backoffCounter.js';
export type { LimitRule } from './windowCounter.js';

/** The limits on password guessing (docs/SECURITY.md, "Login limits"). */
export interface LoginLimits {
  /**
   * Failed logins per (account, client address), unknown emails included: past `limit` that
   * pair is locked, the lock doubling with every further failure.
   */
  perClient: BackoffRule;
  /** Logins from one client address that did not succeed, over all accounts (spraying). */
  perAddress: LimitRule;
  /**
   * The ceiling on failed logins against one account from all addresses: past it, attempts
   * from addresses that never logged in to the account are spaced `windowSeconds / limit` apart.
   */
  perAccount: LimitRule;
  /**
   * Wrong passwords sent with a valid access token (device envelope, CDN config, password
   * change), per (user, client address): its own budget, apart from logins.
   */
  withToken: BackoffRule;
}

export const DEFAULT_LOGIN_LIMITS: Readonly<LoginLimits> = Object.freeze({
  perClient: { limit: 10, lockSeconds: 60, maxLockSeconds: 15 * 60, forgetSeconds: 15 * 60 },
  perAddress: { limit: 60, windowSeconds: 60 },
  perAccount: { limit: 100, windowSeconds: 60 * 60 },
  withToken: { limit: 10, lockSeconds: 60, maxLockSeconds: 15 * 60, forgetSeconds: 15 * 60 },
});

/** A password check that was let through: it counts as failed unless `succeeded` is called. */
export interface PasswordAttempt {
  succeeded(): void;
}

/** `limits` over the defaults, each rule checked; ERR_INVALID_ARG naming the field otherwise. */
export function resolveLoginLimits(limits: Partial<LoginLimits> = {}): LoginLimits {
  const d = DEFAULT_LOGIN_LIMITS;
  const resolved: LoginLimits = {
    perClient: limits.perClient ?? d.perClient,
    perAddress: limits.perAddress ?? d.perAddress,
    perAccount: limits.perAccount ?? d.perAccount,
    withToken: limits.withToken ?? d.withToken,
  };
  for (const name of ['perAddress', 'perAccount'] as const) {
    const rule: Partial<LimitRule> = resolved[name] ?? {};
    positive(`loginLimits.${name}.limit`, rule.limit, true);
    positive(`loginLimits.${name}.windowSeconds`, rule.windowSeconds);
  }
  for (const name of ['perClient', 'withToken'] as const) {
    const rule: Partial<BackoffRule> = resolved[name] ?? {};
    positive(`loginLimits.${name}.limit`, rule.limit, true);
    for (const field of ['lockSeconds', 'maxLockSeconds', 'forgetSeconds'] as const) {
      positive(`loginLimits.${name}.${field}`, rule[field]);
    }
  }
  return resolved;
}

function positive(field: string, v: unknown, integer = false): void {
  const ok = typeof v === 'number' && Number.isFinite(v) && v > 0;
  if (!ok || (integer && !Number.isInteger(v))) {
    throw invalidSetting(field, `must be a positive ${integer ? 'integer' : 'number'}`);
  }
}

/**
 * The login limits, in memory (per process; scale-out would move the counters to a shared
 * store). Each check is counted when it is let through, before its outcome is known, so parallel
 * guesses cannot slip past a limit; a success takes its count back. A refusal is the seconds to
 * wait (the answer's `Retry-After`).
 */
export class LoginLimiter {
  private readonly perClient: BackoffCounter;
  private readonly perAddress: WindowCounter;
  private readonly perAccount: AccountCeiling;
  private readonly withToken: BackoffCounter;

  /** `onRefused` hears of every refusal (the metrics' counter). */
  constructor(
    limits: Partial<LoginLimits> = {},
    private readonly onRefused: (kind: LoginRefusal) => void = () => {},
  ) {
    const rules = resolveLoginLimits(limits);
    this.perClient = new BackoffCounter(rules.perClient);
    this.perAddress = new WindowCounter(rules.perAddress);
    this.perAccount = new AccountCeiling(rules.perAccount);
    this.withToken = new BackoffCounter(rules.withToken);
  }

  /** A login attempt for `account` (a normalised email) from `address`, or the wait. */
  admitLogin(account: string, address: string, now = Date.now()): number | PasswordAttempt {
    const pair = pairKey(account, address);
    const wait = Math.max(
      this.perClient.wait(pair, now),
      this.perAddress.wait(address, now),
      this.perAccount.wait(account, address, now),
    );
    if (wait > 0) {
      this.onRefused('login');
      return wait;
    }
    this.perClient.add(pair, now);
    this.perAddress.add(address, now);
    const tookToken = this.perAccount.take(account, address, now);
    // Taken back against the clock of the admission: the check in between is a scrypt run.
    return {
      succeeded: () => {
        this.perClient.clear(pair);
        this.perAddress.remove(address, now);
        this.perAccount.succeeded(account, address, tookToken, now);
      },
    };
  }

  /** A password check of the user `userId` holding a valid access token, or the wait. */
  admitTokenPassword(userId: string, address: string, now = Date.now()): number | PasswordAttempt {
    const pair = pairKey(userId, address);
    const wait = this.withToken.wait(pair, now);
    if (wait > 0) {
      this.onRefused('token_password');
      return wait;
    }
    this.withToken.add(pair, now);
    return { succeeded: () => this.withToken.clear(pair) };
  }

  /**
   * The wait of a locked (user, address) token-password pair, or undefined. Counts nothing: for
   * checks that need no scrypt run (the envelope cache), which must not answer while locked.
   */
  tokenPasswordWait(userId: string, address: string, now = Date.now()): number | undefined {
    const wait = this.withToken.wait(pairKey(userId, address), now);
    return wait > 0 ? wait : undefined;
  }

  /** The right password came with the token by a path that did not go through `admit…`. */
  tokenPasswordOk(userId: string, address: string): void {
    this.withToken.clear(pairKey(userId, address));
  }
}
