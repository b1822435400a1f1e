import {
  type CreateUserRequest,
  ROLES,
  type Role,
  type SetPasswordRequest,
  type SetRoleRequest,
  SluiceError,
  USERS_PAGE_DEFAULT,
  USERS_PAGE_MAX,
  type UserResponse,
  type UsersResponse,
} from '@sluice/protocol';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { GuardRequest } from '../auth/guardRequest.js';
import type { CredentialCaches } from '../auth/passwordChange.js';
import type { ScryptParams } from '../auth/passwordHash.js';
import { PASSWORD_SCHEMA } from '../auth/passwordRules.js';
import { publicUser } from '../auth/publicUser.js';
import { authorize } from '../auth/routeGuard.js';
import type { UserRecord } from '../stores/records.js';
import type { Store } from '../stores/store.js';
import { UserService } from './service.js';

/** What the user-administration routes need. */
export interface UserRoutesDeps {
  store: Store;
  scrypt: ScryptParams;
  guardRequest: GuardRequest;
  caches: CredentialCaches;
}

const config = { operation: 'users.admin' } as const;

const idParams = {
  type: 'object',
  required: ['id'],
  properties: { id: { type: 'string', minLength: 1, maxLength: 64 } },
} as const;

const createBody = {
  type: 'object',
  required: ['email', 'password', 'role'],
  properties: {
    email: { type: 'string' },
    password: { type: 'string' },
    role: { type: 'string', enum: [...ROLES] },
  },
} as const;

const roleBody = {
  type: 'object',
  required: ['role'],
  properties: { role: { type: 'string', enum: [...ROLES] } },
} as const;

const passwordBody = {
  type: 'object',
  required: ['password'],
  properties: { password: PASSWORD_SCHEMA },
} as const;

type IdParams = { id: string };
type IdRequest = FastifyRequest<{ Params: IdParams }>;

/** The service and the guard every handler of the feature uses. */
interface Feature {
  users: UserService;
  guardRequest: GuardRequest;
}

/** User administration (operation `users.admin`: Admin and ApiAdmin). */
export async function userRoutes(app: FastifyInstance, deps: UserRoutesDeps): Promise<void> {
  const f: Feature = {
    users: new UserService(deps.store, deps.scrypt, deps.caches),
    guardRequest: deps.guardRequest,
  };
  const byId = { config, schema: { params: idParams } };
  app.get<{ Querystring: ListQuery }>(
    '/users',
    { config, schema: { querystring: listQuery } },
    (request) => listUsers(f, request.query),
  );
  app.post<{ Body: CreateUserRequest }>(
    '/users',
    { config, schema: { body: createBody } },
    (request, reply) => createUser(f, request, reply),
  );
  app.post<{ Params: IdParams }>('/users/:id/disable', byId, (request) => disableUser(f, request));
  app.post<{ Params: IdParams }>('/users/:id/enable', byId, (request) => enableUser(f, request));
  app.post<{ Params: IdParams; Body: SetRoleRequest }>(
    '/users/:id/role',
    { config, schema: { params: idParams, body: roleBody } },
    (request) => setRole(f, request),
  );
  app.post<{ Params: IdParams }>('/users/:id/reset-device', byId, (request) =>
    resetDevice(f, request),
  );
  app.post<{ Params: IdParams; Body: SetPasswordRequest }>(
    '/users/:id/password',
    { config, schema: { params: idParams, body: passwordBody } },
    (request) => setPassword(f, request),
  );
}

/** Re-runs the guard with the target's role: only an ApiAdmin manages ApiAdmins. */
function authorizeOn(f: Feature, request: FastifyRequest, ...roles: Role[]) {
  return Promise.all(
    roles.map((targetRole) => authorize(f.guardRequest, request, 'users.admin', { targetRole })),
  );
}

/** Logs the change and answers with the user's new view. */
function changed(request: IdRequest, event: string, user: UserRecord): UserResponse {
  request.log.info({ event, userId: user.id, by: request.user?.id }, 'user changed');
  return { user: publicUser(user) };
}

interface ListQuery {
  limit?: string;
  cursor?: string;
  email?: string;
}

const listQuery = {
  type: 'object',
  additionalProperties: false,
  properties: {
    limit: { type: 'string', pattern: '^[1-9][0-9]{0,3}$' },
    cursor: { type: 'string', maxLength: 512 },
    email: { type: 'string', maxLength: 1024 },
  },
} as const;

/** One page of users in creation order (`nextCursor` when more follow), or the one `email`. */
async function listUsers(f: Feature, query: ListQuery): Promise<UsersResponse> {
  if (query.email !== undefined) {
    const user = await f.users.findByEmail(query.email);
    return { users: user === undefined ? [] : [publicUser(user)] };
  }
  const limit = query.limit === undefined ? USERS_PAGE_DEFAULT : Number(query.limit);
  if (limit > USERS_PAGE_MAX) {
    throw new SluiceError('ERR_BAD_REQUEST', `limit must be at most ${USERS_PAGE_MAX}`);
  }
  const page = await f.users.list(limit, query.cursor);
  const answer: UsersResponse = { users: page.users.map(publicUser) };
  if (page.next !== undefined) answer.nextCursor = page.next;
  return answer;
}

async function createUser(
  f: Feature,
  request: FastifyRequest<{ Body: CreateUserRequest }>,
  reply: FastifyReply,
): Promise<FastifyReply> {
  await authorizeOn(f, request, request.body.role);
  const user = await f.users.create(request.body);
  request.log.info(
    { event: 'user.created', userId: user.id, role: user.role, by: request.user?.id },
    'user created',
  );
  return reply.status(201).send({ user: publicUser(user) } satisfies UserResponse);
}

async function disableUser(f: Feature, request: IdRequest): Promise<UserResponse> {
  await authorizeOn(f, request, (await f.users.get(request.params.id)).role);
  return changed(request, 'user.disabled', await f.users.disable(request.params.id));
}

async function enableUser(f: Feature, request: IdRequest): Promise<UserResponse> {
  await authorizeOn(f, request, (await f.users.get(request.params.id)).role);
  return changed(request, 'user.enabled', await f.users.enable(request.params.id));
}

async function setRole(
  f: Feature,
  request: FastifyRequest<{ Params: IdParams; Body: SetRoleRequest }>,
): Promise<UserResponse> {
  const { role } = request.body;
  await authorizeOn(f, request, (await f.users.get(request.params.id)).role, role);
  return changed(request, 'user.roleChanged', await f.users.setRole(request.params.id, role));
}

async function resetDevice(f: Feature, request: IdRequest): Promise<UserResponse> {
  await authorizeOn(f, request, (await f.users.get(request.params.id)).role);
  return changed(request, 'user.deviceReset', await f.users.resetDevice(request.params.id));
}

async function setPassword(
  f: Feature,
  request: FastifyRequest<{ Params: IdParams; Body: SetPasswordRequest }>,
): Promise<UserResponse> {
  await authorizeOn(f, request, (await f.users.get(request.params.id)).role);
  const user = await f.users.setPassword(request.params.id, request.body.password);
  return changed(request, 'user.passwordReset', user);
}
