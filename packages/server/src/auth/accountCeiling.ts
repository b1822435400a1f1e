import type { LimitRule } from './windowCounter.js';

/** How long an address that logged in to an account stays known to that account. */
export const KNOWN_CLIENT_MS = 30 * 24 * 60 * 60 * 1000;
/** Most (account, address) pairs remembered; the least recently used go first. */
export const KNOWN_CLIENTS_MAX = 100_000;
/** Above this many tracked accounts, full buckets are swept before adding another. */
const SWEEP_THRESHOLD = 10_000;

interface Bucket {
  tokens: number;
  at: number;
}

/**
 * The per-account ceiling on guessing spread over many addresses: a token bucket per account
 * holding `limit` attempts, refilled at `limit` per `windowSeconds`. Every attempt from an address
 * that has not logged in to the account within KNOWN_CLIENT_MS takes a token and a success gives
 * it back; with the bucket empty such attempts wait for the next token (windowSeconds / limit),
 * so distributed guessing is slowed to the ceiling's rate without locking anyone out. Addresses
 * that logged in to the account before are not held back by it at all. In memory, per process.
 */
export class AccountCeiling {
  private readonly buckets = new Map<string, Bucket>();
  private readonly known = new Map<string, number>();
  /** Tokens per ms. */
  private readonly rate: number;

  constructor(private readonly rule: LimitRule) {
    this.rate = rule.limit / (rule.windowSeconds * 1000);
  }

  /** Seconds until an attempt from `address` may proceed against `account`; 0 when it may now. */
  wait(account: string, address: string, now: number): number {
    if (this.isKnown(account, address, now)) return 0;
    const tokens = this.level(account, now);
    return tokens >= 1 ? 0 : Math.max(1, Math.ceil((1 - tokens) / this.rate / 1000));
  }

  /** Takes a token for an attempt (none for a known address); true when one was taken. */
  take(account: string, address: string, now: number): boolean {
    if (this.isKnown(account, address, now)) return false;
    if (!this.buckets.has(account) && this.buckets.size >= SWEEP_THRESHOLD) this.sweep(now);
    this.buckets.set(account, { tokens: this.level(account, now) - 1, at: now });
    return true;
  }

  /** The attempt succeeded: its token goes back and `address` is known to `account` from now. */
  succeeded(account: string, address: string, tookToken: boolean, now: number): void {
    const b = this.buckets.get(account);
    if (tookToken && b !== undefined) b.tokens = Math.min(this.rule.limit, b.tokens + 1);
    const pair = pairKey(account, address);
    this.known.delete(pair);
    this.known.set(pair, now);
    while (this.known.size > KNOWN_CLIENTS_MAX) {
      const [oldest] = this.known.keys();
      if (oldest === undefined) break;
      this.known.delete(oldest);
    }
  }

  private isKnown(account: string, address: string, now: number): boolean {
    const at = this.known.get(pairKey(account, address));
    return at !== undefined && now - at < KNOWN_CLIENT_MS;
  }

  /** The bucket's tokens now (refilled since it was last touched); a new bucket is full. */
  private level(account: string, now: number): number {
    const b = this.buckets.get(account);
    if (b === undefined) return this.rule.limit;
    return Math.min(this.rule.limit, b.tokens + (now - b.at) * this.rate);
  }

  private sweep(now: number): void {
    for (const account of this.buckets.keys()) {
      if (this.level(account, now) >= this.rule.limit) this.buckets.delete(account);
    }
  }
}

/** One key for an (account, address) pair; an address never holds the separator. */
export function pairKey(account: string, address: string): string {
  return `${address}\n${account}`;
}
