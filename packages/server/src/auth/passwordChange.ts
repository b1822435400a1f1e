import { SluiceError } from '@sluice/protocol';
import type { UserRecord } from '../stores/records.js';
import type { Store } from '../stores/store.js';
import { hashPassword, type ScryptParams } from './passwordHash.js';
import { checkPasswordRules } from './passwordRules.js';
import { cutOffSessions } from './tokens.js';

/** What keeps credential-derived secrets of a user in memory (the envelope cache). */
export interface CredentialCaches {
  /** Drops (and wipes) everything remembered for `userId`. */
  forgetUser(userId: string): void;
}

export interface PasswordChangeDeps {
  store: Store;
  scrypt: ScryptParams;
  caches: CredentialCaches;
}

/**
 * Gives the user `userId` the password `password`: checks the rules, hashes it (outside the
 * transaction: it is the slow part), then in one mutation stores the hash and cuts off
 * every session issued until now (`reason` is what the revoked logins record), and last forgets
 * what the caches derived from the old password. ERR_NOT_FOUND when the user is gone.
 */
export async function replacePassword(
  deps: PasswordChangeDeps,
  userId: string,
  password: string,
  reason: string,
): Promise<UserRecord> {
  checkPasswordRules(password);
  const passwordHash = await hashPassword(password, deps.scrypt);
  const user = await deps.store.transaction(async (t) => {
    const u = await t.users.get(userId);
    if (u === undefined) throw new SluiceError('ERR_NOT_FOUND', 'no such user');
    u.passwordHash = passwordHash;
    await cutOffSessions(t, u, reason);
    u.updatedAt = new Date().toISOString();
    await t.users.update(u);
    return { ...u };
  });
  deps.caches.forgetUser(userId);
  return user;
}
