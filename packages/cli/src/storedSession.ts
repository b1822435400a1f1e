import { existsSync } from 'node:fs';
import { Session, SluiceError } from '@sluice/core';
import { authPath, type CliConfig, readConfig } from './config.js';

export interface StoredSession {
  session: Session;
  config: CliConfig;
}

/**
 * The session `sluice login` saved: its server, email and tokens (renewed by Session as needed).
 * `password`, when the command has it anyway, lets Session log in again if the refresh token died.
 */
export function storedSession(password?: string): StoredSession {
  const config = readConfig();
  const path = authPath();
  if (config === undefined || !existsSync(path)) {
    throw new SluiceError(
      'ERR_NOT_LOGGED_IN',
      'not logged in: run `sluice login --server URL --email EMAIL` first',
    );
  }
  const session = new Session({ apiUrl: config.server, saveAuth: path });
  if (password !== undefined) session.setCredentials(config.email, password);
  return { session, config };
}
