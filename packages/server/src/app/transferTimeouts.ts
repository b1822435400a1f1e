import { invalidSetting } from '../errors.js';

/**
 * How long the server waits on a client (docs/SECURITY.md, "Slow clients"). Every value is in ms
 * except the rate.
 */
export interface TransferTimeouts {
  /** The request line and headers must all arrive within this (Slowloris). */
  headersMs: number;
  /** A kept-alive connection with no request in flight is closed after this. */
  keepAliveMs: number;
  /** A response the client stops reading (no byte taken for this long) is cut off. */
  idleMs: number;
  /** A request body has this long before its rate is checked (slow start, a busy client). */
  bodyGraceMs: number;
  /**
   * After the grace period, each further `bodyGraceMs` of a body must bring at least this many
   * bytes per second on average, or the connection is closed (408). Time the server itself
   * spends not reading (writing a part to storage, checking a token first) does not count.
   */
  bodyMinBytesPerSecond: number;
}

export const DEFAULT_TRANSFER_TIMEOUTS: Readonly<TransferTimeouts> = Object.freeze({
  headersMs: 30_000,
  keepAliveMs: 72_000,
  idleMs: 60_000,
  bodyGraceMs: 10_000,
  bodyMinBytesPerSecond: 1024,
});

/** `timeouts` over the defaults, each checked; ERR_INVALID_ARG naming the field otherwise. */
export function resolveTransferTimeouts(
  timeouts: Partial<TransferTimeouts> = {},
): TransferTimeouts {
  const resolved = { ...DEFAULT_TRANSFER_TIMEOUTS };
  for (const key of Object.keys(DEFAULT_TRANSFER_TIMEOUTS) as (keyof TransferTimeouts)[]) {
    const v: unknown = timeouts[key] ?? resolved[key];
    const ok = typeof v === 'number' && Number.isSafeInteger(v) && v > 0;
    if (!ok) throw invalidSetting(`timeouts.${key}`, 'must be a positive integer');
    resolved[key] = v;
  }
  return resolved;
}

/**
 * The Fastify options that hand the head and keep-alive limits to Node's HTTP server. Node checks
 * `headersTimeout` every `connectionsCheckingInterval` (30 s by default, too coarse for a limit
 * of a few seconds); requests as a whole get no time limit, since a multi-GB upload legitimately
 * takes long: the body's rate is watched instead (`TransferWatchdog`).
 */
export function serverTimeoutOptions(t: TransferTimeouts) {
  return {
    http: {
      headersTimeout: t.headersMs,
      requestTimeout: 0,
      connectionsCheckingInterval: Math.max(10, Math.min(1000, Math.floor(t.headersMs / 4))),
    },
    keepAliveTimeout: t.keepAliveMs,
    requestTimeout: 0,
    connectionTimeout: 0,
  };
}
