import { Session, type TokenResponse } from '@sluice/core';
import { defineCommand, EXIT } from '../command.js';
import { commonFlags } from '../commonFlags.js';
import { authPath } from '../config.js';
import { readPasswordChange } from '../password.js';
import { resolveLogin, serverSession } from '../storedSession.js';

export const passwdCommand = defineCommand({
  name: 'passwd',
  summary: 'Change your own password; every other login of the account ends',
  usage: '[--password-stdin] [--server URL]',
  flags: {
    'password-stdin': {
      ...commonFlags['password-stdin'],
      help: 'read the current password from the first line of stdin, the new one from the second',
    },
    server: commonFlags.server,
  },
  notes: [
    'The current password comes from $SLUICE_PASSWORD, the new one from $SLUICE_NEW_PASSWORD,',
    'else each from a prompt (the new one twice); --password-stdin reads both from stdin instead.',
    'Other machines and devices logged in to the account have to log in again; this one stays logged in.',
  ],
  positionals: [0, 0],
  async run(values, _positionals, io) {
    const login = resolveLogin(values.server);
    const { current, next } = await readPasswordChange(values['password-stdin'], login.email);
    const { session } = await serverSession(login, { password: current });
    const issued = await session.request<TokenResponse>('POST', '/me/password', {
      json: { password: current, newPassword: next },
    });
    // The answer is the account's new login, but a Session only keeps pairs it asked for itself:
    // log in again with the new password (saved as `sluice login` does) and retire that pair.
    const renewed = new Session({
      apiUrl: login.server,
      saveAuth: login.saved ? authPath() : undefined,
    });
    renewed.setCredentials(login.email, next);
    await renewed.login();
    await renewed.request('POST', '/logout', {
      json: { refreshToken: issued.refreshToken },
      auth: false,
      idempotent: true,
    });
    io.err(`password changed for ${login.email}; every other login of the account has ended`);
    return EXIT.ok;
  },
});
