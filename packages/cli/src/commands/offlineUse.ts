import type { PullOptions } from '@sluice/core';
import type { Io } from '../command.js';

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
      io.err(
        `warning: ${server} cannot be reached (${firstLine(cause.message)}); opening ${what} ` +
          'from its offline lease',
      ),
  };
}

function firstLine(text: string): string {
  return text.split('\n')[0]?.slice(0, 200) ?? '';
}
