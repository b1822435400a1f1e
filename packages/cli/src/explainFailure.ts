import { isHttpError, isSluiceError, SluiceError } from '@sluice/core';

/** The login a run uses, once a command chose it: failures name it rather than internal paths. */
let inUse: { server: string; email?: string | undefined } | undefined;

/** Records the server (and account) this run talks to. */
export function usingServer(server: string, email?: string): void {
  inUse = { server, email };
}

/** What a connection failure's code means to a user. */
const NETWORK_REASONS: Record<string, string> = {
  ECONNREFUSED: 'connection refused',
  ECONNRESET: 'connection reset',
  ENOTFOUND: 'host not found',
  EAI_AGAIN: 'host not found (DNS lookup failed)',
  ETIMEDOUT: 'connection timed out',
  UND_ERR_CONNECT_TIMEOUT: 'connection timed out',
  EHOSTUNREACH: 'host unreachable',
  ENETUNREACH: 'network unreachable',
};

/** A connection failure's code (`ECONNREFUSED`, …) as a user reads it. */
export function networkReason(code: string | undefined): string {
  if (code === undefined || code === '') return 'no answer';
  return NETWORK_REASONS[code] ?? code;
}

/**
 * The failure as a CLI user should read it: an unreachable server named by the URL the user
 * gave (not the route that failed), refusals with the `sluice` command that fixes them rather
 * than an API path. Anything else is returned as it is.
 */
export function explainFailure(err: unknown): unknown {
  if (isHttpError(err, 'ERR_NETWORK') && !err.message.includes('the answer was cut off')) {
    const reason = networkReason(err.serverMessage);
    const server = inUse?.server ?? new URL(err.url).origin;
    const proxy = (err as { proxy?: unknown }).proxy;
    // Through a proxy, it is the proxy that did not answer (a server behind it that does not
    // would be the proxy's own error status).
    const what =
      typeof proxy === 'string'
        ? `cannot reach the proxy ${proxy} (for the sluice server at ${server})`
        : `cannot reach the sluice server at ${server}`;
    return new SluiceError('ERR_NETWORK', `${what}: ${reason}`, { cause: err });
  }
  if (isSluiceError(err, 'ERR_DEVICE_NOT_BOUND')) {
    const who = inUse?.email ?? 'EMAIL';
    return new SluiceError(
      'ERR_DEVICE_NOT_BOUND',
      'this account is bound to another device (or this one changed more hardware than the server ' +
        `tolerates); an admin frees it with \`sluice user reset-device ${who}\`` +
        ' (the next pull then binds the device it comes from)',
      { cause: err },
    );
  }
  const lapsed =
    (isHttpError(err, 'ERR_UNAUTHORIZED') && err.url.endsWith('/token/refresh')) ||
    (isSluiceError(err, 'ERR_NOT_LOGGED_IN') && err.message.includes('setCredentials'));
  if (lapsed) {
    return new SluiceError(
      'ERR_NOT_LOGGED_IN',
      'the saved login has expired or was ended: run `sluice login` again, ' +
        'or give the password in SLUICE_PASSWORD',
      { cause: err },
    );
  }
  const role = isSluiceError(err, 'ERR_FORBIDDEN') && /role \S+ may not /.exec(err.message);
  if (role) {
    const who = inUse?.email ?? 'EMAIL';
    return new SluiceError(
      'ERR_FORBIDDEN',
      `${role.input.slice(role.index)}: an admin can change the role with \`sluice user role ${who} ROLE\``,
      { cause: err },
    );
  }
  if (isSluiceError(err, 'ERR_UNTRUSTED_PUBLISHER') && err.message.includes('not registered')) {
    return new SluiceError(
      'ERR_UNTRUSTED_PUBLISHER',
      `${firstClause(err.message)}: register it with \`sluice keys register\`, or push without --sign-key`,
      { cause: err },
    );
  }
  return err;
}

/** The server's message up to the API-path hint in parentheses. */
function firstClause(message: string): string {
  const text = message.replace(/^.* answered \d+: /, '');
  return text.replace(/\s*\([A-Z]+ \/[^)]*\)\s*$/, '');
}
