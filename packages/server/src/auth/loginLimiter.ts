export interface LimitRule {
  /** Attempts allowed per window. */
  limit: number;
  windowSeconds: number;
}

export interface LoginLimits {
  /** Every login attempt from one client address. */
  perAddress: LimitRule;
  /** Failed attempts against one account (counted for unknown emails too, so a 429 reveals nothing). */
  perAccount: LimitRule;
}

export const DEFAULT_LOGIN_LIMITS: Readonly<LoginLimits> = {
  perAddress: { limit: 60, windowSeconds: 60 },
  perAccount: { limit: 10, windowSeconds: 15 * 60 },
};

interface Window {
  count: number;
  resetAt: number;
}

/** Above this many tracked keys, expired windows are swept before adding another. */
const SWEEP_THRESHOLD = 10_000;

/**
 * Fixed-window login limiter kept in memory: all attempts per address, failures per account.
 * A successful login clears its account's failures. Per process; scale-out would move the
 * counters to a shared store.
 */
export class LoginLimiter {
  private readonly limits: LoginLimits;
  private readonly byAddress = new Map<string, Window>();
  private readonly byAccount = new Map<string, Window>();

  constructor(limits: LoginLimits = DEFAULT_LOGIN_LIMITS) {
    for (const rule of [limits.perAddress, limits.perAccount]) {
      if (!(Number.isInteger(rule.limit) && rule.limit > 0 && rule.windowSeconds > 0)) {
        throw new RangeError(`invalid login limit ${JSON.stringify(rule)}`);
      }
    }
    this.limits = limits;
  }

  /**
   * Admits one attempt (counting it against the address) or returns the seconds until the
   * caller may retry.
   */
  admit(address: string, account: string, now = Date.now()): number | undefined {
    const wait = Math.max(
      this.waitFor(this.byAddress, address, this.limits.perAddress, now),
      this.waitFor(this.byAccount, account, this.limits.perAccount, now),
    );
    if (wait > 0) return wait;
    this.bump(this.byAddress, address, this.limits.perAddress, now);
    return undefined;
  }

  /**
   * The wait for an account over its failure limit, or undefined. Counts nothing: for password
   * checks outside login (the device envelope), which busy clients make many times a minute.
   */
  accountWait(account: string, now = Date.now()): number | undefined {
    const wait = this.waitFor(this.byAccount, account, this.limits.perAccount, now);
    return wait > 0 ? wait : undefined;
  }

  failed(account: string, now = Date.now()): void {
    this.bump(this.byAccount, account, this.limits.perAccount, now);
  }

  succeeded(account: string): void {
    this.byAccount.delete(account);
  }

  private waitFor(map: Map<string, Window>, key: string, rule: LimitRule, now: number): number {
    const w = map.get(key);
    if (w === undefined || w.resetAt <= now || w.count < rule.limit) return 0;
    return Math.max(1, Math.ceil((w.resetAt - now) / 1000));
  }

  private bump(map: Map<string, Window>, key: string, rule: LimitRule, now: number): void {
    const w = map.get(key);
    if (w !== undefined && w.resetAt > now) {
      w.count += 1;
      return;
    }
    if (map.size >= SWEEP_THRESHOLD) {
      for (const [k, v] of map) if (v.resetAt <= now) map.delete(k);
    }
    map.set(key, { count: 1, resetAt: now + rule.windowSeconds * 1000 });
  }
}
