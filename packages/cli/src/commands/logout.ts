import { existsSync } from 'node:fs';
import { isHttpError } from '@sluice/core';
import { defineCommand, EXIT } from '../command.js';
import { authPath, readConfig } from '../config.js';
import { storedSession } from '../storedSession.js';

export const logoutCommand = defineCommand({
  name: 'logout',
  summary: 'Revoke the stored login on the server and delete its tokens',
  usage: '',
  positionals: [0, 0],
  async run(_values, _positionals, io) {
    const config = readConfig();
    if (config === undefined || !existsSync(authPath())) {
      io.err('not logged in');
      return EXIT.ok;
    }
    const { session } = storedSession();
    try {
      await session.logout();
    } catch (e) {
      // The tokens are deleted locally whatever the server says; a dead server only means the
      // refresh token lives on there until it expires.
      if (!isHttpError(e)) throw e;
      io.err(`warning: ${config.server} could not be told (${e.message}); local tokens deleted`);
      return EXIT.ok;
    }
    io.err(`logged out of ${config.server} (${authPath()} deleted)`);
    return EXIT.ok;
  },
});
