import { SluiceError } from '@sluice/protocol';
import type { FastifyRequest } from 'fastify';
import type { ServerContext } from '../serverContext.js';
import type { UserRecord } from '../stores/metadataStore.js';
import { verifyPassword } from './passwordHash.js';

/**
 * Checks the password that unlocks a device envelope against the caller's own hash and returns
 * the caller. Wrong guesses count against the account as failed logins do (429 with
 * `Retry-After` over the limit); right ones are not limited, so batch clients fetching many
 * envelopes from one address are not slowed.
 */
export async function checkEnvelopePassword(
  ctx: ServerContext,
  request: FastifyRequest,
  password: string,
): Promise<UserRecord> {
  const user = ctx.store.getUser(request.user?.id ?? '');
  if (user === undefined) throw new SluiceError('ERR_UNAUTHORIZED', 'user no longer exists');
  const wait = ctx.limiter.accountWait(user.email);
  if (wait !== undefined) {
    throw new SluiceError('ERR_RATE_LIMITED', 'too many password attempts; try again later', {
      retryAfterSeconds: wait,
    });
  }
  if (!(await verifyPassword(password, user.passwordHash))) {
    ctx.limiter.failed(user.email);
    request.log.info({ event: 'envelope.badPassword', userId: user.id }, 'wrong password');
    throw new SluiceError('ERR_UNAUTHORIZED', 'wrong password');
  }
  ctx.limiter.succeeded(user.email);
  return user;
}
