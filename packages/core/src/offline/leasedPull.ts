import { isSluiceError, SluiceError } from '@sluice/protocol';
import type { Session } from '../http/session.js';
import type { PullOptions, PullResult } from '../resources/pullOptions.js';
import { warnOnce } from '../resources/pullWarning.js';
import { LeaseKeeper, leaseDirProblem } from './leaseKeeper.js';
import type { LeaseAccount } from './leaseStore.js';
import { pullOffline } from './pullOffline.js';

type Pulled = PullResult & { path?: string; data?: Buffer };

/** An online pull that hands the envelope's lease to `keeper` (undefined: offline use is off). */
export type OnlinePull = (
  session: Session,
  folder: string,
  name: string,
  options: PullOptions,
  keeper: LeaseKeeper | undefined,
) => Promise<Pulled>;

/**
 * A pull with its `offline` mode: 'only' opens the offline lease without the server; 'auto' pulls
 * online keeping the lease, and opens the lease instead (after `onOffline`) when the server cannot
 * be reached — never when it answers, so a 401 or 403 is never bypassed. Without a mode (or a
 * cache) it is the online pull alone.
 */
export async function leasedPull(
  session: Session,
  folder: string,
  name: string,
  given: PullOptions,
  online: OnlinePull,
): Promise<Pulled> {
  const { offline, cacheDir } = given;
  // One warning per kind for the whole pull: the lease store and the big-part cache share a
  // directory, so an unusable cache is reported once, by whichever meets it first.
  const options = { ...given, onWarning: warnOnce(given.onWarning) };
  if (offline !== undefined && offline !== 'auto' && offline !== 'only') {
    throw new TypeError("offline must be 'auto' or 'only'");
  }
  if (offline === 'only') return pullOffline(accountOf(session), folder, name, options);
  if (offline === undefined || cacheDir === undefined)
    return online(session, folder, name, options, undefined);
  const account = accountOf(session);
  const keeper = new LeaseKeeper(session, account, { ...options, cacheDir });
  try {
    const result = await online(session, folder, name, options, keeper);
    await keeper.checkOthers(folder, name);
    return { ...result, offline: false, leaseNotAfter: keeper.notAfter };
  } catch (e) {
    if (isSluiceError(e, 'ERR_NETWORK') && !options.signal?.aborted) {
      options.onOffline?.(e);
      return pullOffline(account, folder, name, options).catch((o: unknown) => {
        // No lease, nothing cached or a cache that cannot be read: the failure to report is the
        // network's.
        throw isSluiceError(o, 'ERR_NO_LEASE') || leaseDirProblem(o, cacheDir) ? e : o;
      });
    }
    await keeper.forgetOnRefusal(e).catch(() => undefined);
    throw e;
  } finally {
    await keeper.close();
  }
}

function accountOf(session: Session): LeaseAccount {
  const email = session.account;
  if (email === null) {
    throw new SluiceError(
      'ERR_NOT_LOGGED_IN',
      'offline use needs the account: call setCredentials()',
    );
  }
  return { server: session.apiUrl, email };
}
