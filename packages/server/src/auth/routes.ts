import type {
  ChangePasswordRequest,
  JwksResponse,
  LoginRequest,
  RefreshRequest,
  TokenResponse,
  UserResponse,
} from '@sluice/protocol';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Store } from '../stores/store.js';
import type { SigningKeys } from './keys.js';
import type { LoginLimiter } from './loginLimiter.js';
import type { CredentialCaches } from './passwordChange.js';
import type { ScryptParams } from './passwordHash.js';
import { PASSWORD_SCHEMA } from './passwordRules.js';
import { AuthService } from './service.js';
import type { TokenService } from './tokens.js';

/** What the auth routes need. */
export interface AuthRoutesDeps {
  store: Store;
  keys: SigningKeys;
  tokens: TokenService;
  limiter: LoginLimiter;
  scrypt: ScryptParams;
  caches: CredentialCaches;
}

const loginBody = {
  type: 'object',
  required: ['email', 'password'],
  properties: {
    email: { type: 'string', minLength: 1, maxLength: 320 },
    password: PASSWORD_SCHEMA,
  },
} as const;

const changePasswordBody = {
  type: 'object',
  required: ['password', 'newPassword'],
  properties: { password: PASSWORD_SCHEMA, newPassword: PASSWORD_SCHEMA },
} as const;

const refreshBody = {
  type: 'object',
  required: ['refreshToken'],
  properties: { refreshToken: { type: 'string', minLength: 1, maxLength: 256 } },
} as const;

const open = { operation: 'public' } as const;

/** The service and the key set every handler of the feature uses. */
interface Feature {
  auth: AuthService;
  jwks: JwksResponse;
}

/** Login, refresh, logout, `GET /me` and the JWKS. */
export async function authRoutes(app: FastifyInstance, deps: AuthRoutesDeps): Promise<void> {
  const f: Feature = { auth: await AuthService.create(deps), jwks: deps.keys.jwks };
  const refreshSchema = { body: refreshBody };
  app.post<{ Body: LoginRequest }>(
    '/login',
    { config: open, schema: { body: loginBody } },
    (request) => login(f, request),
  );
  app.post<{ Body: RefreshRequest }>(
    '/token/refresh',
    { config: open, schema: refreshSchema },
    (request) => refresh(f, request),
  );
  app.post<{ Body: RefreshRequest }>(
    '/logout',
    { config: open, schema: refreshSchema },
    (request, reply) => logout(f, request, reply),
  );
  app.get('/me', { config: { operation: 'me' } }, (request) => me(f, request));
  app.post<{ Body: ChangePasswordRequest }>(
    '/me/password',
    { config: { operation: 'me' }, schema: { body: changePasswordBody } },
    (request) => changePassword(f, request),
  );
  app.get('/.well-known/jwks.json', { config: open }, (_request, reply) => jwks(f, reply));
}

async function login(
  f: Feature,
  request: FastifyRequest<{ Body: LoginRequest }>,
): Promise<TokenResponse> {
  return f.auth.login(request.ip, request.body, request.log);
}

async function refresh(
  f: Feature,
  request: FastifyRequest<{ Body: RefreshRequest }>,
): Promise<TokenResponse> {
  return f.auth.refresh(request.body.refreshToken, request.log);
}

async function logout(
  f: Feature,
  request: FastifyRequest<{ Body: RefreshRequest }>,
  reply: FastifyReply,
): Promise<FastifyReply> {
  // Always 204: whether the token was live is not the caller's business.
  await f.auth.logout(request.body.refreshToken, request.log);
  return reply.status(204).send();
}

async function me(f: Feature, request: FastifyRequest): Promise<UserResponse> {
  return { user: await f.auth.currentUser(request.user?.id ?? '') };
}

async function changePassword(
  f: Feature,
  request: FastifyRequest<{ Body: ChangePasswordRequest }>,
): Promise<TokenResponse> {
  const caller = { userId: request.user?.id ?? '', address: request.ip };
  return f.auth.changePassword(caller, request.body, request.log);
}

async function jwks(f: Feature, reply: FastifyReply): Promise<JwksResponse> {
  reply.header('cache-control', 'public, max-age=300');
  return f.jwks;
}
