import type { Downloader } from '@sluice/cdn';
import type { Session } from '../http/session.js';

/**
 * An HttpRangeDriver for the API's big-part route: each range carries the session's current token;
 * a 401 marks it refused and the range is tried once more with a renewed one.
 */
export async function apiRangeDriver(session: Session): Promise<Downloader> {
  // Loaded on first use: the crypto and format parts of core work without the transport installed.
  const { HttpRangeDriver } = await import('@sluice/cdn');
  return new HttpRangeDriver({
    authorize: async (signal) => ({ authorization: await session.authorization(signal) }),
    onUnauthorized: async (sent) => {
      if (sent.authorization !== undefined) session.tokenRefused(sent.authorization);
      return true;
    },
  });
}
