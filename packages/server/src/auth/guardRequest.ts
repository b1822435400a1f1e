import type { Role } from '@sluice/protocol';
import { type ApiErrorCode, isApiError } from '../errors.js';
import type { UserRecord } from '../stores/records.js';
import type { Store } from '../stores/store.js';
import { isAllowed, isOperation, mayManageRole, type Operation } from './permissions.js';
import { firstValidIat, type TokenService } from './tokens.js';

/** The caller as the user store describes it at the moment of the check. */
export interface UserContext {
  id: string;
  email: string;
  role: Role;
  disabled: boolean;
  boundHardwareHash: string | null;
  createdAt: string;
  /** The access token the caller presented. */
  token: { jti: string; iat: number; exp: number };
}

export interface GuardError {
  code: ApiErrorCode;
  status: number;
  message: string;
}

export interface GuardResult {
  isAuthenticated: boolean;
  isAuthorized: boolean;
  /** Null unless authenticated. */
  context: UserContext | null;
  /** Null when authorized. */
  error: GuardError | null;
}

/** Facts about the object an operation acts on that can narrow the role table. */
export interface GuardMetadata {
  /** For `users.admin`: the role of the user acted on, or the role being granted. */
  targetRole?: Role;
}

export type GuardRequest = (
  jwt: string | undefined,
  operation: Operation,
  metadata?: GuardMetadata,
) => Promise<GuardResult>;

/** The store record each context was made from (kept off the context: it holds the hash). */
const records = new WeakMap<UserContext, UserRecord>();

/**
 * The user record the guard read to make `context`, so a handler that needs more of it (the
 * password hash) does not read the store again within the same request; undefined for a
 * context the guard did not make.
 */
export function guardedRecord(context: UserContext | null): UserRecord | undefined {
  return context === null ? undefined : records.get(context);
}

/**
 * Builds `guardRequest(jwt, operation, metadata?)`, the one authorization check: the routes use it
 * and other services can import it. The token is verified, then the user is read from the live
 * store, so disabling a user or changing a role takes effect on the next request rather than when
 * the token expires; the role in the token is never trusted. Never throws for a bad token.
 * `jwt` may be a bare token or an `Authorization` header value (`Bearer <token>`).
 */
export function createGuard(store: Store, tokens: TokenService): GuardRequest {
  return async (jwt, operation, metadata = {}) => {
    const token = bareToken(jwt);
    if (token === undefined) return deny(false, null, 'ERR_UNAUTHORIZED', 'missing access token');
    let claims: Awaited<ReturnType<TokenService['verifyAccessToken']>>;
    try {
      claims = await tokens.verifyAccessToken(token);
    } catch (e) {
      const message = isApiError(e) ? e.message : 'invalid access token';
      return deny(false, null, 'ERR_UNAUTHORIZED', message);
    }
    const user = await store.users.get(claims.nameid);
    if (user === undefined) return deny(false, null, 'ERR_UNAUTHORIZED', 'user no longer exists');
    if (user.disabled) return deny(false, null, 'ERR_UNAUTHORIZED', 'account disabled');
    if (claims.iat < firstValidIat(user)) {
      return deny(false, null, 'ERR_UNAUTHORIZED', 'access token revoked; log in again');
    }
    const context: UserContext = {
      id: user.id,
      email: user.email,
      role: user.role,
      disabled: user.disabled,
      boundHardwareHash: user.boundHardwareHash,
      createdAt: user.createdAt,
      token: { jti: claims.jti, iat: claims.iat, exp: claims.exp },
    };
    records.set(context, user);
    if (!isOperation(operation)) {
      return deny(true, context, 'ERR_FORBIDDEN', `unknown operation ${String(operation)}`);
    }
    if (!isAllowed(user.role, operation)) {
      return deny(true, context, 'ERR_FORBIDDEN', `role ${user.role} may not perform ${operation}`);
    }
    if (metadata.targetRole !== undefined && !mayManageRole(user.role, metadata.targetRole)) {
      return deny(true, context, 'ERR_FORBIDDEN', `only an ApiAdmin may manage ApiAdmin accounts`);
    }
    return { isAuthenticated: true, isAuthorized: true, context, error: null };
  };
}

function bareToken(jwt: string | undefined): string | undefined {
  if (typeof jwt !== 'string') return undefined;
  const t = jwt.replace(/^Bearer\s+/i, '').trim();
  return t === '' ? undefined : t;
}

function deny(
  isAuthenticated: boolean,
  context: UserContext | null,
  code: 'ERR_UNAUTHORIZED' | 'ERR_FORBIDDEN',
  message: string,
): GuardResult {
  return {
    isAuthenticated,
    isAuthorized: false,
    context,
    error: { code, status: code === 'ERR_UNAUTHORIZED' ? 401 : 403, message },
  };
}
