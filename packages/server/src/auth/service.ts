import { randomBytes } from 'node:crypto';
import {
  type ChangePasswordRequest,
  SluiceError,
  type TokenResponse,
  type User,
} from '@sluice/protocol';
import type { FastifyBaseLogger } from 'fastify';
import { normaliseEmail } from '../stores/records.js';
import type { Store } from '../stores/store.js';
import type { LoginLimiter } from './loginLimiter.js';
import { type CredentialCaches, replacePassword } from './passwordChange.js';
import { hashPassword, type ScryptParams, verifyPassword } from './passwordHash.js';
import { checkPasswordRules } from './passwordRules.js';
import { publicUser } from './publicUser.js';
import { checkTokenPassword, type TokenCaller } from './tokenPassword.js';
import type { TokenService } from './tokens.js';

export interface AuthServiceDeps {
  store: Store;
  tokens: TokenService;
  limiter: LoginLimiter;
  /** Cost of new password hashes. */
  scrypt: ScryptParams;
  /** Forgets what was derived from a password once it changes. */
  caches: CredentialCaches;
  /** A hash of a random password, checked for unknown emails so they cost as much as known ones. */
  dummyPasswordHash: string;
}

/** Logins and sessions: the password check behind the limiter, refresh, logout, the caller. */
export class AuthService {
  private constructor(private readonly deps: AuthServiceDeps) {}

  /** The service, with its dummy hash made at the cost new password hashes have. */
  static async create(deps: Omit<AuthServiceDeps, 'dummyPasswordHash'>): Promise<AuthService> {
    const random = randomBytes(32).toString('base64url');
    const dummyPasswordHash = await hashPassword(random, deps.scrypt);
    return new AuthService({ ...deps, dummyPasswordHash });
  }

  /** Starts a session, or ERR_RATE_LIMITED / ERR_UNAUTHORIZED (the same for every failure). */
  async login(
    address: string,
    input: { email: string; password: string },
    log: FastifyBaseLogger,
  ): Promise<TokenResponse> {
    const { store, tokens, limiter, dummyPasswordHash } = this.deps;
    const email = normaliseEmail(input.email);
    const attempt = await limiter.admitLogin(email, address);
    if (typeof attempt === 'number') {
      log.warn({ event: 'login.rateLimited', retryAfterSeconds: attempt }, 'login refused');
      throw new SluiceError('ERR_RATE_LIMITED', 'too many login attempts; try again later', {
        retryAfterSeconds: attempt,
      });
    }
    const user = await store.users.byEmail(email);
    // Unknown emails are checked against a dummy hash so they take as long as wrong passwords.
    const ok = await verifyPassword(input.password, user?.passwordHash ?? dummyPasswordHash);
    if (user === undefined || !ok || user.disabled) {
      const reason = user === undefined ? 'unknown user' : ok ? 'disabled' : 'wrong password';
      log.info({ event: 'login.failed', reason, userId: user?.id }, 'login failed');
      throw new SluiceError('ERR_UNAUTHORIZED', 'invalid email or password');
    }
    await attempt.succeeded();
    const issued = await tokens.startSession(user);
    log.info({ event: 'login.ok', userId: user.id }, 'login');
    return issued;
  }

  async refresh(refreshToken: string, log: FastifyBaseLogger): Promise<TokenResponse> {
    try {
      const issued = await this.deps.tokens.refresh(refreshToken);
      log.info({ event: 'token.refreshed' }, 'token refreshed');
      return issued;
    } catch (e) {
      log.info({ event: 'token.refreshFailed' }, 'token refresh refused');
      throw e;
    }
  }

  /** Revokes the token's family; never says whether it was live (the route answers 204). */
  async logout(refreshToken: string, log: FastifyBaseLogger): Promise<void> {
    const revoked = await this.deps.tokens.revoke(refreshToken, 'logout');
    log.info({ event: 'logout', revoked }, 'logout');
  }

  /**
   * The caller's own password change: the current password is checked like any password sent
   * with a token (its limit is `loginLimits.withToken`), the new one against the rules; then every
   * login of the account ends (access tokens, refresh families, cached envelope keys) and the
   * answer is a new login, so the caller goes on while every other session has to log in again.
   */
  async changePassword(
    caller: TokenCaller,
    input: ChangePasswordRequest,
    log: FastifyBaseLogger,
  ): Promise<TokenResponse> {
    checkPasswordRules(input.newPassword, 'newPassword');
    if (input.newPassword === input.password) {
      throw new SluiceError('ERR_BAD_REQUEST', 'newPassword must differ from the current one');
    }
    const { store, limiter, tokens } = this.deps;
    const user = await checkTokenPassword({ store, limiter }, caller, input.password, log, {
      event: 'password.wrongCurrent',
    });
    const updated = await replacePassword(
      this.deps,
      user.id,
      input.newPassword,
      'password changed',
    );
    const issued = await tokens.startSession(updated);
    log.info({ event: 'password.changed', userId: user.id }, 'password changed');
    return issued;
  }

  /** The caller as the API shows it, or ERR_UNAUTHORIZED when the account is gone. */
  async currentUser(userId: string): Promise<User> {
    const user = await this.deps.store.users.get(userId);
    if (user === undefined) throw new SluiceError('ERR_UNAUTHORIZED', 'user no longer exists');
    return publicUser(user);
  }
}
