import { existsSync } from 'node:fs';
import { Session, SluiceError } from '@sluice/core';
import { apiUrl } from './apiUrl.js';
import { authPath, type CliConfig, readConfig } from './config.js';
import { usingServer } from './explainFailure.js';
import { readUserPassword } from './password.js';

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
    throw new SluiceError('ERR_NOT_LOGGED_IN', NOT_LOGGED_IN);
  }
  usingServer(config.server, config.email);
  const session = new Session({ apiUrl: config.server, saveAuth: path });
  if (password !== undefined) session.setCredentials(config.email, password);
  return { session, config };
}

const NOT_LOGGED_IN =
  'not logged in: run `sluice login --server URL --email EMAIL` first, ' +
  'or set SLUICE_SERVER, SLUICE_EMAIL and SLUICE_PASSWORD';

/** The account a command acts as, and whether `sluice login`'s saved tokens belong to it. */
export interface CliLogin {
  server: string;
  email: string;
  /** The stored login is this very account on this very server: its tokens are used (and kept). */
  saved: boolean;
}

/**
 * The account to use: `--server`, else $SLUICE_SERVER, else the stored server; $SLUICE_EMAIL,
 * else the stored email when the server is the stored one. The environment wins over the stored
 * login, so a CI job or a device needs no `sluice login` at all.
 */
export function resolveLogin(serverFlag: string | undefined): CliLogin {
  const config = readConfig();
  const given = serverFlag ?? nonEmpty(process.env.SLUICE_SERVER);
  const server = given === undefined ? config?.server : apiUrl(given);
  if (server === undefined) throw new SluiceError('ERR_NOT_LOGGED_IN', NOT_LOGGED_IN);
  const sameServer = config !== undefined && config.server === server;
  const email =
    nonEmpty(process.env.SLUICE_EMAIL)?.trim() ?? (sameServer ? config.email : undefined);
  if (email === undefined) {
    throw new SluiceError(
      'ERR_NOT_LOGGED_IN',
      `no account for ${server}: set SLUICE_EMAIL (and SLUICE_PASSWORD), ` +
        `or run \`sluice login --server ${server} --email EMAIL\``,
    );
  }
  usingServer(given ?? server, email);
  const saved =
    sameServer && config.email.toLowerCase() === email.toLowerCase() && existsSync(authPath());
  return { server, email, saved };
}

/** The password of `login`'s account: `--password-stdin`, $SLUICE_PASSWORD or a prompt naming it. */
export function loginPassword(login: CliLogin, stdin: boolean | undefined): Promise<string> {
  return readUserPassword(stdin, `password for ${login.email}: `);
}

export interface ServerSession {
  session: Session;
  login: CliLogin;
  /** The password, when it was needed (no saved tokens) or given. */
  password: string | undefined;
}

/**
 * A session for any command that talks to the server: the saved tokens when they belong to the
 * account (`resolveLogin`), else a login with its password (read here unless given). Tokens of
 * an account other than the stored one are kept in memory only, never written over the stored login.
 */
export async function serverSession(
  login: CliLogin,
  options: { passwordStdin?: boolean | undefined; password?: string | undefined } = {},
): Promise<ServerSession> {
  let password = options.password;
  // With saved tokens, $SLUICE_PASSWORD (never a prompt) still lets Session log in again if they lapsed.
  if (password === undefined && login.saved) password = nonEmpty(process.env.SLUICE_PASSWORD);
  if (password === undefined && !login.saved) {
    if (!options.passwordStdin && !process.env.SLUICE_PASSWORD && !process.stdin.isTTY) {
      throw new SluiceError(
        'ERR_NOT_LOGGED_IN',
        `not logged in to ${login.server} as ${login.email}: run \`sluice login\`, ` +
          'or give the password in SLUICE_PASSWORD',
      );
    }
    password = await loginPassword(login, options.passwordStdin);
  }
  const session = new Session({
    apiUrl: login.server,
    saveAuth: login.saved ? authPath() : undefined,
  });
  if (password !== undefined) session.setCredentials(login.email, password);
  return { session, login, password };
}

function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value === '' ? undefined : value;
}
