import { SluiceError } from '@sluice/protocol';
import type { FastifyBaseLogger } from 'fastify';
import type { MetadataStore, UserRecord } from '../stores/metadataStore.js';
import type { LoginLimiter } from './loginLimiter.js';
import { verifyPassword } from './passwordHash.js';

/** What the check of an envelope password needs. */
export interface EnvelopePasswordDeps {
  store: MetadataStore;
  limiter: LoginLimiter;
}

/**
 * Checks the password that unlocks a device envelope against the caller's own hash and returns
 * the caller. Wrong guesses count against the account as failed logins do (429 with
 * `Retry-After` over the limit); right ones are not limited, so batch clients fetching many
 * envelopes from one address are not slowed.
 */
export async function checkEnvelopePassword(
  deps: EnvelopePasswordDeps,
  userId: string,
  password: string,
  log: FastifyBaseLogger,
): Promise<UserRecord> {
  const user = deps.store.getUser(userId);
  if (user === undefined) throw new SluiceError('ERR_UNAUTHORIZED', 'user no longer exists');
  const wait = deps.limiter.accountWait(user.email);
  if (wait !== undefined) {
    throw new SluiceError('ERR_RATE_LIMITED', 'too many password attempts; try again later', {
      retryAfterSeconds: wait,
    });
  }
  if (!(await verifyPassword(password, user.passwordHash))) {
    deps.limiter.failed(user.email);
    log.info({ event: 'envelope.badPassword', userId: user.id }, 'wrong password');
    throw new SluiceError('ERR_UNAUTHORIZED', 'wrong password');
  }
  deps.limiter.succeeded(user.email);
  return user;
}
