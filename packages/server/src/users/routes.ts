import { SluiceError } from '@sluice/protocol';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { ROLES, type Role } from '../auth/permissions.js';
import { revokeUserFamilies } from '../auth/tokens.js';
import { createUser, otherActiveApiAdmins, toPublicUser } from '../auth/userAccounts.js';
import type { ServerContext } from '../serverContext.js';
import type { MetadataState, UserRecord } from '../stores/metadataStore.js';
import { authorize } from './routeGuard.js';

const idParams = {
  type: 'object',
  required: ['id'],
  properties: { id: { type: 'string', minLength: 1, maxLength: 64 } },
} as const;

type IdRequest = FastifyRequest<{ Params: { id: string } }>;

/** User administration (operation `users.admin`: Admin and ApiAdmin). */
export async function userRoutes(app: FastifyInstance, ctx: ServerContext): Promise<void> {
  const config = { operation: 'users.admin' } as const;

  /** Re-runs the guard with the target's role: only an ApiAdmin manages ApiAdmins. */
  const authorizeOn = (request: FastifyRequest, ...roles: Role[]) =>
    Promise.all(
      roles.map((targetRole) =>
        authorize(ctx.guardRequest, request, 'users.admin', { targetRole }),
      ),
    );

  const targetOf = (request: IdRequest): UserRecord => {
    const user = ctx.store.getUser(request.params.id);
    if (user === undefined) throw new SluiceError('ERR_NOT_FOUND', 'no such user');
    return user;
  };

  /** Applies `change` to the target inside one store mutation and answers with the new view. */
  const update = async (
    request: IdRequest,
    event: string,
    change: (user: UserRecord, draft: MetadataState) => void,
  ) => {
    const user = await ctx.store.mutate((draft) => {
      const u = Object.hasOwn(draft.users, request.params.id)
        ? draft.users[request.params.id]
        : undefined;
      if (u === undefined) throw new SluiceError('ERR_NOT_FOUND', 'no such user');
      change(u, draft);
      u.updatedAt = new Date().toISOString();
      return { ...u };
    });
    request.log.info({ event, userId: user.id, by: request.user?.id }, 'user changed');
    return { user: toPublicUser(user) };
  };

  app.get('/users', { config }, async () => ({
    users: ctx.store.listUsers().map(toPublicUser),
  }));

  app.post<{ Body: { email: string; password: string; role: Role } }>(
    '/users',
    {
      config,
      schema: {
        body: {
          type: 'object',
          required: ['email', 'password', 'role'],
          properties: {
            email: { type: 'string' },
            password: { type: 'string' },
            role: { type: 'string', enum: [...ROLES] },
          },
        },
      },
    },
    async (request, reply) => {
      await authorizeOn(request, request.body.role);
      const user = await createUser(ctx.store, request.body, { scrypt: ctx.scrypt });
      request.log.info(
        { event: 'user.created', userId: user.id, role: user.role, by: request.user?.id },
        'user created',
      );
      return reply.status(201).send({ user: toPublicUser(user) });
    },
  );

  app.post<{ Params: { id: string } }>(
    '/users/:id/disable',
    { config, schema: { params: idParams } },
    async (request) => {
      await authorizeOn(request, targetOf(request).role);
      return update(request, 'user.disabled', (u, draft) => {
        if (u.role === 'ApiAdmin' && !u.disabled && otherActiveApiAdmins(draft, u.id) === 0) {
          throw new SluiceError('ERR_CONFLICT', 'cannot disable the last active ApiAdmin');
        }
        u.disabled = true;
        revokeUserFamilies(draft, u.id, 'user disabled');
      });
    },
  );

  app.post<{ Params: { id: string } }>(
    '/users/:id/enable',
    { config, schema: { params: idParams } },
    async (request) => {
      await authorizeOn(request, targetOf(request).role);
      return update(request, 'user.enabled', (u) => {
        u.disabled = false;
      });
    },
  );

  app.post<{ Params: { id: string }; Body: { role: Role } }>(
    '/users/:id/role',
    {
      config,
      schema: {
        params: idParams,
        body: {
          type: 'object',
          required: ['role'],
          properties: { role: { type: 'string', enum: [...ROLES] } },
        },
      },
    },
    async (request) => {
      const role = request.body.role;
      await authorizeOn(request, targetOf(request).role, role);
      return update(request, 'user.roleChanged', (u, draft) => {
        if (
          u.role === 'ApiAdmin' &&
          role !== 'ApiAdmin' &&
          !u.disabled &&
          otherActiveApiAdmins(draft, u.id) === 0
        ) {
          throw new SluiceError('ERR_CONFLICT', 'cannot demote the last active ApiAdmin');
        }
        u.role = role;
      });
    },
  );

  app.post<{ Params: { id: string } }>(
    '/users/:id/reset-device',
    { config, schema: { params: idParams } },
    async (request) => {
      await authorizeOn(request, targetOf(request).role);
      return update(request, 'user.deviceReset', (u) => {
        u.boundHardwareHash = null;
      });
    },
  );
}
