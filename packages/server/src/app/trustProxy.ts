import { isIP } from 'node:net';
import { invalidSetting } from '../errors.js';

/** Fastify's `trustProxy` as sluice accepts it (no function: settings come from JSON too). */
export type TrustProxy = boolean | string | string[];

/** Names proxy-addr gives to address ranges. */
const RANGE_NAMES = new Set(['loopback', 'linklocal', 'uniquelocal']);

/**
 * `value` if it is a `trustProxy` Fastify can use: a boolean, or addresses, CIDRs (`10.0.0.0/8`,
 * `fd00::/8`) and range names as a comma list or an array. Anything else is ERR_INVALID_ARG
 * naming `trustProxy` (Fastify would throw later, or worse, trust what was not meant). Hop counts
 * are refused: Fastify trusts no proxy for one, since a count cannot check the peer's address.
 */
export function checkTrustProxy(value: unknown): TrustProxy {
  if (typeof value === 'boolean') return value;
  if (typeof value === 'number') {
    throw invalidSetting(
      'trustProxy',
      'hop counts are not supported: name the proxies by address or CIDR',
    );
  }
  const list = typeof value === 'string' ? value.split(',') : value;
  if (!Array.isArray(list) || list.length === 0) {
    throw invalidSetting(
      'trustProxy',
      'must be true, false, or a list of proxy addresses and CIDRs',
    );
  }
  list.forEach((entry, i) => {
    if (typeof entry !== 'string' || !isProxyEntry(entry.trim())) {
      const shown = typeof entry === 'string' ? `'${entry.slice(0, 64)}'` : typeof entry;
      throw invalidSetting(
        'trustProxy',
        `entry ${i + 1} (${shown}) is not an IP address, a CIDR or one of ${[...RANGE_NAMES].join(', ')}`,
      );
    }
  });
  return typeof value === 'string' ? value : (list as string[]);
}

function isProxyEntry(entry: string): boolean {
  if (RANGE_NAMES.has(entry)) return true;
  const [address = '', prefix, extra] = entry.split('/');
  const family = isIP(address);
  if (family === 0 || extra !== undefined) return false;
  if (prefix === undefined) return true;
  const bits = Number(prefix);
  return /^\d{1,3}$/.test(prefix) && bits <= (family === 4 ? 32 : 128);
}
