import { invalidSetting } from '../errors.js';
import type { LoginRefusal } from '../ops/metrics.js';
import { AccountCeiling, pairKey } from './accountCeiling.js';
import { BackoffCounter, type BackoffRule } from './backoffCounter.js';
import { type LimiterState, MemoryLimiterState } from './limiterState.js';
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
/** See `LoginLimiter.tokenPasswordStanding`. */
export interface TokenPasswordStanding {
  /** Seconds until the pair may try again; undefined unless it is locked. */
  wait: number | undefined;
  /** It has failures on record (that a right password clears). */
  failures: boolean;
}

export interface PasswordAttempt {
  succeeded(): Promise<void>;
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
 * The login limits, over a LimiterState: one process's memory on the embedded default, the
 * store's table with a database (shared by every instance). Each check is counted when it is let
 * through, before its outcome is known, so parallel guesses cannot slip past a limit; a success
 * takes its count back. A refusal is the seconds to wait (the answer's `Retry-After`).
 */
export class LoginLimiter {
  private readonly perClient: BackoffCounter;
  private readonly perAddress: WindowCounter;
  private readonly perAccount: AccountCeiling;
  private readonly withToken: BackoffCounter;
  private readonly state: LimiterState;

  /** `onRefused` hears of every refusal (the metrics' counter). */
  constructor(
    limits: Partial<LoginLimits> = {},
    state: LimiterState = new MemoryLimiterState(),
    private readonly onRefused: (kind: LoginRefusal) => void = () => {},
  ) {
    const rules = resolveLoginLimits(limits);
    this.perClient = new BackoffCounter(rules.perClient, 'c:');
    this.perAddress = new WindowCounter(rules.perAddress, 'a:');
    this.perAccount = new AccountCeiling(rules.perAccount, 'k:');
    this.withToken = new BackoffCounter(rules.withToken, 't:');
    this.state = state;
  }

  /** A login attempt for `account` (a normalised email) from `address`, or the wait. */
  async admitLogin(
    account: string,
    address: string,
    now = Date.now(),
  ): Promise<number | PasswordAttempt> {
    const pair = pairKey(account, address);
    const keys = [
      this.perClient.key(pair),
      this.perAddress.key(address),
      this.perAccount.bucketKey(account),
      this.perAccount.knownKey(account, address),
    ];
    const admitted = await this.state.run(keys, now, (m) => {
      const wait = Math.max(
        this.perClient.wait(m, pair, now),
        this.perAddress.wait(m, address, now),
        this.perAccount.wait(m, account, address, now),
      );
      if (wait > 0) return wait;
      this.perClient.add(m, pair, now);
      this.perAddress.add(m, address, now);
      return { tookToken: this.perAccount.take(m, account, address, now) };
    });
    if (typeof admitted === 'number') {
      this.onRefused('login');
      return admitted;
    }
    // Taken back against the clock of the admission: the check in between is a scrypt run.
    return {
      succeeded: () =>
        this.state.run(keys, now, (m) => {
          this.perClient.clear(m, pair);
          this.perAddress.remove(m, address, now);
          this.perAccount.succeeded(m, account, address, admitted.tookToken, now);
        }),
    };
  }

  /** A password check of the user `userId` holding a valid access token, or the wait. */
  async admitTokenPassword(
    userId: string,
    address: string,
    now = Date.now(),
  ): Promise<number | PasswordAttempt> {
    const pair = pairKey(userId, address);
    const keys = [this.withToken.key(pair)];
    const wait = await this.state.run(keys, now, (m) => {
      const w = this.withToken.wait(m, pair, now);
      if (w === 0) this.withToken.add(m, pair, now);
      return w;
    });
    if (wait > 0) {
      this.onRefused('token_password');
      return wait;
    }
    return { succeeded: () => this.state.run(keys, now, (m) => this.withToken.clear(m, pair)) };
  }

  /**
   * A (user, address) token-password pair in one read: its wait while locked (else undefined)
   * and whether it holds failures. Counts nothing: for checks that need no scrypt run (the
   * envelope cache), which must not answer while locked.
   */
  async tokenPasswordStanding(
    userId: string,
    address: string,
    now = Date.now(),
  ): Promise<TokenPasswordStanding> {
    const pair = pairKey(userId, address);
    const key = this.withToken.key(pair);
    return this.state.peek([key], (m) => {
      const wait = this.withToken.wait(m, pair, now);
      return { wait: wait > 0 ? wait : undefined, failures: m.has(key) };
    });
  }

  /**
   * The right password came with the token by a path that did not go through `admit…`: clears
   * the pair's failures. `standing`, read earlier in the request, saves a read when it had none.
   */
  async tokenPasswordOk(
    userId: string,
    address: string,
    standing?: TokenPasswordStanding,
    now = Date.now(),
  ): Promise<void> {
    const pair = pairKey(userId, address);
    const keys = [this.withToken.key(pair)];
    if (standing?.failures === false) return;
    // Nearly always nothing to clear: look before taking a transaction.
    if (!(await this.state.peek(keys, (m) => m.has(keys[0] ?? '')))) return;
    await this.state.run(keys, now, (m) => this.withToken.clear(m, pair));
  }
}
