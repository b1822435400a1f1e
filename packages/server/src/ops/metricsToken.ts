import { createHash, timingSafeEqual } from 'node:crypto';
import { SluiceError } from '@sluice/protocol';
import { invalidSetting } from '../errors.js';

/** Visible ASCII without spaces, long enough not to be guessed. */
const TOKEN = /^[\x21-\x7e]{16,512}$/;

/** The `metricsToken` option checked (ERR_INVALID_ARG naming the field, never the value). */
export function checkMetricsToken(token: unknown): string | undefined {
  if (token === undefined) return undefined;
  if (typeof token !== 'string' || !TOKEN.test(token)) {
    throw invalidSetting('metricsToken', 'must be 16 to 512 visible ASCII characters');
  }
  return token;
}

/**
 * Checks `Authorization: Bearer <token>` against the configured token in constant time (both
 * sides hashed first, so neither the length nor a prefix leaks); 401 otherwise.
 */
export class MetricsAuth {
  private readonly digest: Buffer;

  constructor(token: string) {
    this.digest = sha256(token);
  }

  require(authorization: string | undefined): void {
    const m = /^Bearer +(\S+) *$/i.exec(authorization ?? '');
    const presented = sha256(m?.[1] ?? '');
    if (m === null || !timingSafeEqual(presented, this.digest)) {
      throw new SluiceError('ERR_UNAUTHORIZED', 'GET /metrics needs the metrics bearer token');
    }
  }
}

function sha256(text: string): Buffer {
  return createHash('sha256').update(text, 'utf8').digest();
}
