import type { Entries } from './backoffCounter.js';
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
 * that logged in to the account before are not held back by it at all. Buckets and known pairs
 * live in the `Entries` each call is given (keys `<prefix>b…` and `<prefix>k…`).
 */
export class AccountCeiling {
  /** Tokens per ms. */
  private readonly rate: number;

  constructor(
    private readonly rule: LimitRule,
    readonly prefix: string,
  ) {
    this.rate = rule.limit / (rule.windowSeconds * 1000);
  }

  bucketKey(account: string): string {
    return `${this.prefix}b${account}`;
  }

  knownKey(account: string, address: string): string {
    return `${this.prefix}k${pairKey(account, address)}`;
  }

  /** Seconds until an attempt from `address` may proceed against `account`; 0 when it may now. */
  wait(m: Entries, account: string, address: string, now: number): number {
    if (this.isKnown(m, account, address, now)) return 0;
    const tokens = this.level(m, account, now);
    return tokens >= 1 ? 0 : Math.max(1, Math.ceil((1 - tokens) / this.rate / 1000));
  }

  /** Takes a token for an attempt (none for a known address); true when one was taken. */
  take(m: Entries, account: string, address: string, now: number): boolean {
    if (this.isKnown(m, account, address, now)) return false;
    if (!m.has(this.bucketKey(account)) && m.size >= SWEEP_THRESHOLD) this.sweep(m, now);
    m.set(this.bucketKey(account), { tokens: this.level(m, account, now) - 1, at: now });
    return true;
  }

  /** The attempt succeeded: its token goes back and `address` is known to `account` from now. */
  succeeded(m: Entries, account: string, address: string, tookToken: boolean, now: number): void {
    const b = m.get(this.bucketKey(account)) as Bucket | undefined;
    if (tookToken && b !== undefined) b.tokens = Math.min(this.rule.limit, b.tokens + 1);
    const known = this.knownKey(account, address);
    m.delete(known);
    m.set(known, now);
    if (m.size <= KNOWN_CLIENTS_MAX) return;
    let pairs = 0;
    for (const k of m.keys()) if (k.startsWith(`${this.prefix}k`)) pairs += 1;
    // Map order is insertion order: the first known pairs are the least recently used.
    for (const k of m.keys()) {
      if (pairs <= KNOWN_CLIENTS_MAX) break;
      if (k.startsWith(`${this.prefix}k`)) {
        m.delete(k);
        pairs -= 1;
      }
    }
  }

  private isKnown(m: Entries, account: string, address: string, now: number): boolean {
    const at = m.get(this.knownKey(account, address)) as number | undefined;
    return at !== undefined && now - at < KNOWN_CLIENT_MS;
  }

  /** The bucket's tokens now (refilled since it was last touched); a new bucket is full. */
  private level(m: Entries, account: string, now: number): number {
    const b = m.get(this.bucketKey(account)) as Bucket | undefined;
    if (b === undefined) return this.rule.limit;
    return Math.min(this.rule.limit, b.tokens + (now - b.at) * this.rate);
  }

  private sweep(m: Entries, now: number): void {
    const buckets = `${this.prefix}b`;
    for (const k of m.keys()) {
      if (k.startsWith(buckets) && this.level(m, k.slice(buckets.length), now) >= this.rule.limit) {
        m.delete(k);
      }
    }
  }
}

/** One key for an (account, address) pair; an address never holds the separator. */
export function pairKey(account: string, address: string): string {
  return `${address}\n${account}`;
}
