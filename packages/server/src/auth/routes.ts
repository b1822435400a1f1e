import { SluiceError } from '@sluice/protocol';
import type { FastifyInstance } from 'fastify';
import { verifyPassword } from '../auth/passwordHash.js';
import { PASSWORD_MAX_LENGTH, toPublicUser } from '../auth/userAccounts.js';
import type { ServerContext } from '../serverContext.js';
import { normaliseEmail } from '../stores/metadataStore.js';

const refreshBody = {
  type: 'object',
  required: ['refreshToken'],
  properties: { refreshToken: { type: 'string', minLength: 1, maxLength: 256 } },
} as const;

/** Login, refresh, logout, `GET /me` and the JWKS. */
export async function authRoutes(app: FastifyInstance, ctx: ServerContext): Promise<void> {
  app.post<{ Body: { email: string; password: string } }>(
    '/login',
    {
      config: { operation: 'public' },
      schema: {
        body: {
          type: 'object',
          required: ['email', 'password'],
          properties: {
            email: { type: 'string', minLength: 1, maxLength: 320 },
            password: { type: 'string', minLength: 1, maxLength: PASSWORD_MAX_LENGTH * 4 },
          },
        },
      },
    },
    async (request) => {
      const email = normaliseEmail(request.body.email);
      const wait = ctx.limiter.admit(request.ip, email);
      if (wait !== undefined) {
        request.log.warn({ event: 'login.rateLimited', retryAfterSeconds: wait }, 'login refused');
        throw new SluiceError('ERR_RATE_LIMITED', 'too many login attempts; try again later', {
          retryAfterSeconds: wait,
        });
      }
      const user = ctx.store.findUserByEmail(email);
      // Unknown emails are checked against a dummy hash so they take as long as wrong passwords.
      const ok = await verifyPassword(
        request.body.password,
        user?.passwordHash ?? ctx.dummyPasswordHash,
      );
      if (user === undefined || !ok || user.disabled) {
        ctx.limiter.failed(email);
        const reason = user === undefined ? 'unknown user' : ok ? 'disabled' : 'wrong password';
        request.log.info({ event: 'login.failed', reason, userId: user?.id }, 'login failed');
        throw new SluiceError('ERR_UNAUTHORIZED', 'invalid email or password');
      }
      ctx.limiter.succeeded(email);
      const tokens = await ctx.tokens.startSession(user);
      request.log.info({ event: 'login.ok', userId: user.id }, 'login');
      return tokens;
    },
  );

  app.post<{ Body: { refreshToken: string } }>(
    '/token/refresh',
    { config: { operation: 'public' }, schema: { body: refreshBody } },
    async (request) => {
      try {
        const tokens = await ctx.tokens.refresh(request.body.refreshToken);
        request.log.info({ event: 'token.refreshed' }, 'token refreshed');
        return tokens;
      } catch (e) {
        request.log.info({ event: 'token.refreshFailed' }, 'token refresh refused');
        throw e;
      }
    },
  );

  app.post<{ Body: { refreshToken: string } }>(
    '/logout',
    { config: { operation: 'public' }, schema: { body: refreshBody } },
    async (request, reply) => {
      // Always 204: whether the token was live is not the caller's business.
      const revoked = await ctx.tokens.revoke(request.body.refreshToken, 'logout');
      request.log.info({ event: 'logout', revoked }, 'logout');
      return reply.status(204).send();
    },
  );

  app.get('/me', { config: { operation: 'me' } }, async (request) => {
    const user = ctx.store.getUser(request.user?.id ?? '');
    if (user === undefined) throw new SluiceError('ERR_UNAUTHORIZED', 'user no longer exists');
    return { user: toPublicUser(user) };
  });

  app.get(
    '/.well-known/jwks.json',
    { config: { operation: 'public' } },
    async (_request, reply) => {
      reply.header('cache-control', 'public, max-age=300');
      return ctx.keys.jwks;
    },
  );
}
