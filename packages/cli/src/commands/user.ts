import { isRole, ROLES, type Session, SluiceError, USERS_PAGE_MAX } from '@sluice/core';
import { checkAction } from '../checkAction.js';
import { defineCommand, EXIT, type Io, UsageError } from '../command.js';
import { commonFlags } from '../commonFlags.js';
import { readPassword } from '../password.js';
import { type CliLogin, resolveLogin, serverSession } from '../storedSession.js';

interface User {
  id: string;
  email: string;
  role: string;
  disabled: boolean;
  deviceBound: boolean;
}

interface UsersResponse {
  users: User[];
  nextCursor?: string;
}

const ACTIONS: Record<string, number> = {
  create: 1,
  disable: 1,
  enable: 1,
  role: 2,
  'reset-device': 1,
  'set-password': 1,
  list: 0,
};

export const userCommand = defineCommand({
  name: 'user',
  actions: Object.keys(ACTIONS),
  summary:
    'Administer users (Admin or ApiAdmin): create, disable, enable, role, reset-device, set-password, list',
  usage: [
    'create EMAIL --role ROLE [--password-stdin] [--json]',
    'role EMAIL ROLE',
    'disable EMAIL',
    'enable EMAIL',
    'reset-device EMAIL',
    'set-password EMAIL [--password-stdin]',
    'list [--json]',
  ].join('\n'),
  flags: {
    role: {
      type: 'string',
      value: 'ROLE',
      help: `for create: ${ROLES.slice(0, -1).join(', ')} or ${ROLES.at(-1)}`,
    },
    'password-stdin': {
      ...commonFlags['password-stdin'],
      help: 'for create and set-password: read the new password from the first line of stdin',
    },
    json: { ...commonFlags.json, help: 'print the resulting user (or list) as one JSON line' },
    server: commonFlags.server,
  },
  notes: [
    'create and set-password take the new password from $SLUICE_NEW_PASSWORD, --password-stdin or a prompt.',
    'reset-device clears the device binding: the next pull binds the device it comes from.',
    'reset-device, role, disable and set-password end the sessions of the user: it logs in again.',
  ],
  positionals: [1, 3],
  async run(values, [action = '', ...args], io) {
    checkAction('user', ACTIONS, action, args);
    const [email = '', role = ''] = args;
    // Before any password prompt: a typo in the role costs no password.
    if (action === 'create') checkRole(values.role ?? '', '--role is required for create');
    if (action === 'role') checkRole(role, 'role needs EMAIL ROLE');
    const login = resolveLogin(values.server);
    if (action === 'create') {
      const password = await readPassword({
        env: 'SLUICE_NEW_PASSWORD',
        stdin: values['password-stdin'],
        prompt: `password for the new user ${email}: `,
        confirm: true,
      });
      const { session } = await serverSession(login);
      const { user } = await session.request<{ user: User }>('POST', '/users', {
        json: { email, password, role: values.role },
      });
      return show(io, values.json === true, 'created', user);
    }
    if (action === 'set-password') return setPassword(io, login, email, values);
    const { session } = await serverSession(login);
    if (action === 'list') {
      const users = await allUsers(session);
      if (values.json) io.out(JSON.stringify({ users }));
      else for (const u of users) io.out(describe(u));
      return EXIT.ok;
    }
    const id = (await findUser(session, email)).id;
    const path = `/users/${encodeURIComponent(id)}/${action}`;
    const { user } = await session.request<{ user: User }>(
      'POST',
      path,
      action === 'role' ? { json: { role } } : { json: {} },
    );
    return show(io, values.json === true, verb(action), user);
  },
});

/** An admin's reset of `email`'s password (`POST /users/:id/password`). */
async function setPassword(
  io: Io,
  login: CliLogin,
  email: string,
  values: { 'password-stdin'?: boolean; json?: boolean },
): Promise<number> {
  const password = await readPassword({
    env: 'SLUICE_NEW_PASSWORD',
    stdin: values['password-stdin'],
    prompt: `new password for ${email}: `,
    confirm: true,
  });
  const { session } = await serverSession(login);
  const id = (await findUser(session, email)).id;
  const { user } = await session.request<{ user: User }>(
    'POST',
    `/users/${encodeURIComponent(id)}/password`,
    { json: { password } },
  );
  return show(io, values.json === true, 'password set', user);
}

/** Every user, page after page (`GET /users` pages by cursor). */
async function allUsers(session: Session): Promise<User[]> {
  const users: User[] = [];
  let cursor: string | undefined;
  do {
    const query = `limit=${USERS_PAGE_MAX}${cursor === undefined ? '' : `&cursor=${encodeURIComponent(cursor)}`}`;
    const page = await session.request<UsersResponse>('GET', `/users?${query}`);
    users.push(...page.users);
    cursor = page.nextCursor;
  } while (cursor !== undefined);
  return users;
}

async function findUser(session: Session, email: string): Promise<User> {
  const { users } = await session.request<UsersResponse>(
    'GET',
    `/users?email=${encodeURIComponent(email)}`,
  );
  const wanted = email.trim().toLowerCase();
  const user = users.find((u) => u.email === wanted);
  if (user === undefined) throw new SluiceError('ERR_NOT_FOUND', `no user ${email}`);
  return user;
}

/** A UsageError listing the valid roles unless `role` is one (`missing` when it is empty). */
function checkRole(role: string, missing: string): void {
  if (role === '') throw new UsageError(missing);
  if (!isRole(role)) {
    throw new UsageError(`unknown role '${role}': the roles are ${ROLES.join(', ')}`);
  }
}

function verb(action: string): string {
  if (action === 'role') return 'role set';
  if (action === 'reset-device') return 'device binding reset';
  return `${action}d`;
}

function describe(u: User): string {
  const flags = [u.disabled ? 'disabled' : 'active', u.deviceBound ? 'device bound' : 'no device'];
  return `${u.email}  ${u.role}  ${flags.join(', ')}`;
}

function show(io: Io, json: boolean, what: string, user: User): number {
  if (json) io.out(JSON.stringify({ user }));
  else io.err(`${what}: ${describe(user)}`);
  return EXIT.ok;
}
