import { type Session, SluiceError } from '@sluice/core';
import { type Command, EXIT, type Io, UsageError } from '../command.js';
import { readPassword } from '../password.js';
import { storedSession } from '../storedSession.js';

interface User {
  id: string;
  email: string;
  role: string;
  disabled: boolean;
  deviceBound: boolean;
}

const ACTIONS: Record<string, number> = {
  create: 1,
  disable: 1,
  enable: 1,
  role: 2,
  'reset-device': 1,
  list: 0,
};

export const userCommand: Command = {
  name: 'user',
  summary:
    'Administer users (Admin or ApiAdmin): create, disable, enable, role, reset-device, list',
  usage: [
    'create EMAIL --role ROLE [--password-stdin] [--json]',
    'role EMAIL ROLE',
    'disable EMAIL',
    'enable EMAIL',
    'reset-device EMAIL',
    'list [--json]',
  ].join('\n'),
  help: [
    '  --role ROLE       for create: ApiAdmin, Admin, ResourceUploader, Validator or Operator',
    "  --password-stdin  for create: read the new user's password from the first line of stdin",
    '  --json            print the resulting user (or list) as one JSON line',
    '',
    "create takes the new user's password from $SLUICE_NEW_PASSWORD, --password-stdin or a prompt.",
    'reset-device clears the device binding: the next pull binds the device it comes from.',
  ],
  options: {
    role: { type: 'string' },
    'password-stdin': { type: 'boolean' },
    json: { type: 'boolean' },
  },
  positionals: [1, 3],
  async run(values, [action = '', ...args], io) {
    const arity = ACTIONS[action];
    if (arity === undefined) throw new UsageError(`unknown action '${action}'`);
    if (args.length !== arity) {
      throw new UsageError(`user ${action} takes ${arity} argument(s), got ${args.length}`);
    }
    const [email = '', role = ''] = args;
    if (action === 'create') {
      if (typeof values.role !== 'string') throw new UsageError('--role is required for create');
      const password = await readPassword({
        env: 'SLUICE_NEW_PASSWORD',
        stdin: values['password-stdin'] === true,
        prompt: `password for the new user ${email}: `,
        confirm: true,
      });
      const { session } = storedSession();
      const { user } = await session.request<{ user: User }>('POST', '/users', {
        json: { email, password, role: values.role },
      });
      return show(io, values.json === true, 'created', user);
    }
    const { session } = storedSession();
    if (action === 'list') {
      const { users } = await session.request<{ users: User[] }>('GET', '/users');
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
};

async function findUser(session: Session, email: string): Promise<User> {
  const { users } = await session.request<{ users: User[] }>('GET', '/users');
  const wanted = email.trim().toLowerCase();
  const user = users.find((u) => u.email === wanted);
  if (user === undefined) throw new SluiceError('ERR_NOT_FOUND', `no user ${email}`);
  return user;
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
