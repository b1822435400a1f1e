import { Session } from '@sluice/core';
import { type Command, EXIT, UsageError } from '../command.js';
import { authPath, readConfig, writeConfig } from '../config.js';
import { promptLine, readPassword } from '../password.js';

export const loginCommand: Command = {
  name: 'login',
  summary: 'Log in to a sluice server and keep the tokens in the config directory (0600)',
  usage: '[--server URL] [--email EMAIL] [--password-stdin]',
  help: [
    '  --server URL      the resource API (default: the last one logged in to, or $SLUICE_SERVER)',
    '  --email EMAIL     the account (default: the last one used; asked on a terminal)',
    '  --password-stdin  read the password from the first line of stdin',
    '',
    'The password comes from $SLUICE_PASSWORD, --password-stdin or a prompt, never a flag.',
    'Config directory: $SLUICE_CONFIG_DIR, else $XDG_CONFIG_HOME/sluice, else ~/.config/sluice.',
  ],
  options: {
    server: { type: 'string' },
    email: { type: 'string' },
    'password-stdin': { type: 'boolean' },
  },
  positionals: [0, 0],
  async run(values, _positionals, io) {
    const stored = readConfig();
    const server =
      (values.server as string | undefined) ?? stored?.server ?? process.env.SLUICE_SERVER;
    if (server === undefined || server === '') {
      throw new UsageError('--server URL is required for the first login');
    }
    let apiUrl: string;
    try {
      apiUrl = new Session({ apiUrl: server }).apiUrl;
    } catch {
      throw new UsageError(`--server must be an http(s) URL, got '${server}'`);
    }
    const email =
      (values.email as string | undefined) ??
      (stored?.server === apiUrl ? stored.email : undefined) ??
      (await promptLine('email: '));
    if (email === '') throw new UsageError('--email is required');
    const password = await readPassword({
      env: 'SLUICE_PASSWORD',
      stdin: values['password-stdin'] === true,
      prompt: `password for ${email}: `,
    });
    const path = authPath();
    const session = new Session({ apiUrl, saveAuth: path });
    session.setCredentials(email, password);
    const user = await session.login();
    await writeConfig({ server: apiUrl, email: user.email });
    io.err(`logged in to ${apiUrl} as ${user.email} (${user.role}); tokens in ${path}`);
    return EXIT.ok;
  },
};
