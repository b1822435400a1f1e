import { Session } from '@sluice/core';
import { UsageError } from './command.js';

/** `--server URL` in the form Session uses (and `sluice login` stores); a usage error if bad. */
export function apiUrl(server: string): string {
  try {
    return new Session({ apiUrl: server }).apiUrl;
  } catch {
    throw new UsageError(`--server must be an http(s) URL, got '${server}'`);
  }
}
