import { checkLeases, hardwareHash, Session } from '@sluice/core';
import { apiUrl } from '../apiUrl.js';
import { defineCommand, EXIT, UsageError } from '../command.js';
import { commonFlags } from '../commonFlags.js';
import { authPath, readConfig, writeConfig } from '../config.js';
import { usingServer } from '../explainFailure.js';
import { promptLine, readUserPassword } from '../password.js';
import { defaultCacheDir } from './cache.js';

export const loginCommand = defineCommand({
  name: 'login',
  summary: 'Log in to a sluice server and keep the tokens in the config directory (0600)',
  usage: '[--server URL] [--email EMAIL] [--password-stdin]',
  flags: {
    server: {
      ...commonFlags.server,
      help: 'the resource API (default $SLUICE_SERVER, else the last one logged in to)',
    },
    email: {
      type: 'string',
      value: 'EMAIL',
      help: 'the account (default $SLUICE_EMAIL, else the last one used; asked on a terminal)',
    },
    'password-stdin': commonFlags['password-stdin'],
  },
  notes: [
    'The password comes from $SLUICE_PASSWORD, --password-stdin or a prompt, never a flag.',
    'Config directory: $SLUICE_CONFIG_DIR, else $XDG_CONFIG_HOME/sluice, else ~/.config/sluice.',
  ],
  positionals: [0, 0],
  async run(values, _positionals, io) {
    const stored = readConfig();
    // The environment wins over what the last login stored, as in every other command.
    const server = values.server ?? (process.env.SLUICE_SERVER || undefined) ?? stored?.server;
    if (server === undefined || server === '') {
      throw new UsageError('--server URL is required for the first login');
    }
    const url = apiUrl(server);
    const email =
      values.email ??
      (process.env.SLUICE_EMAIL || undefined) ??
      (stored?.server === url ? stored.email : undefined) ??
      (await promptLine('email: '));
    if (email === '') throw new UsageError('--email is required');
    usingServer(server, email);
    const password = await readUserPassword(values['password-stdin'], `password for ${email}: `);
    const path = authPath();
    const session = new Session({ apiUrl: url, saveAuth: path });
    session.setCredentials(email, password);
    const user = await session.login();
    await writeConfig({ server: url, email: user.email });
    io.err(`logged in to ${url} as ${user.email} (${user.role}); tokens in ${path}`);
    // A contact with the server: revoked offline leases in the default cache go now.
    const revoked = await checkLeases(session, {
      cacheDir: defaultCacheDir(),
      password,
      hardware: hardwareHash,
    });
    if (revoked > 0)
      io.err(`deleted ${revoked} revoked offline lease(s) from ${defaultCacheDir()}`);
    return EXIT.ok;
  },
});
