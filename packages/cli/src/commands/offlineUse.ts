import type { PullOptions } from '@sluice/core';
import type { Io } from '../command.js';
import { explainFailure } from '../explainFailure.js';

/**
 * The offline mode of `sluice pull`: `--offline` opens the lease only; any pull through a cache
 * keeps the lease and falls back to it, with one warning line, when the server cannot be reached.
 */
export function offlineUse(
  only: boolean,
  cacheDir: string | undefined,
  io: Io,
  what: string,
  server: string,
): Pick<PullOptions, 'offline' | 'onOffline'> {
  if (only) return { offline: 'only' };
  if (cacheDir === undefined) return {};
  return {
    offline: 'auto',
    onOffline: (cause) =>
      io.err(`warning: ${unreachable(cause, server)}; opening ${what} from its offline lease`),
  };
}

/** Why the server was not reached, in CLI terms: its URL and the reason, not an internal route. */
function unreachable(cause: Error, server: string): string {
  const explained = explainFailure(cause);
  if (explained !== cause && explained instanceof Error) return firstLine(explained.message);
  return `${server} cannot be reached (${firstLine(cause.message)})`;
}

function firstLine(text: string): string {
  return text.split('\n')[0]?.slice(0, 200) ?? '';
}
