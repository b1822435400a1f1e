import { SluiceError } from '@sluice/protocol';
import type { FastifyBaseLogger } from 'fastify';
import type { UserRecord } from '../stores/records.js';
import type { Store } from '../stores/store.js';
import type { LoginLimiter } from './loginLimiter.js';
import { verifyPassword } from './passwordHash.js';

/** What the check of a password sent with an access token needs. */
export interface TokenPasswordDeps {
  store: Store;
  limiter: LoginLimiter;
}

/** Who sends a password with an access token: the token's user, from a client address. */
export interface TokenCaller {
  userId: string;
  address: string;
  /** The caller's record as this request's guard read it, when it did (saves a read). */
  record?: UserRecord;
}

/**
 * Checks a password sent with a valid access token (device envelope, CDN config, password
 * change) against the caller's own hash and returns the caller. Wrong ones count against the
 * (user, address) pair on a budget of their own (`loginLimits.withToken`, 429 with
 * `Retry-After` over it), so nobody's failed logins can lock a device's envelope requests, and
 * right ones clear it: busy batch clients are never slowed.
 */
export async function checkTokenPassword(
  deps: TokenPasswordDeps,
  caller: TokenCaller,
  password: string,
  log: FastifyBaseLogger,
  options: { event?: string } = {},
): Promise<UserRecord> {
  const user = await deps.store.users.get(caller.userId);
  if (user === undefined) throw new SluiceError('ERR_UNAUTHORIZED', 'user no longer exists');
  const attempt = await deps.limiter.admitTokenPassword(user.id, caller.address);
  if (typeof attempt === 'number') {
    throw new SluiceError('ERR_RATE_LIMITED', 'too many password attempts; try again later', {
      retryAfterSeconds: attempt,
    });
  }
  if (!(await verifyPassword(password, user.passwordHash))) {
    log.info({ event: options.event ?? 'envelope.badPassword', userId: user.id }, 'wrong password');
    throw new SluiceError('ERR_UNAUTHORIZED', 'wrong password');
  }
  await attempt.succeeded();
  return user;
}
