import { existsSync } from 'node:fs';
import type { Session } from '../http/session.js';
import { LeaseKeeper } from './leaseKeeper.js';
import { accountDir } from './leaseStore.js';

/**
 * Asks the server which offline leases the session's account holds in `cacheDir` were revoked
 * (`POST /leases/check`) and deletes those; resolves with how many. For a contact that is not a
 * pull (`sluice login`); best effort, like the check after a pull: a failure deletes nothing.
 */
export async function checkLeases(
  session: Session,
  options: {
    cacheDir: string;
    password: string;
    /** The hardware hash, or how to get it (only read when the account holds leases there). */
    hardware: string | (() => Promise<string>);
    signal?: AbortSignal;
  },
): Promise<number> {
  const email = session.account;
  if (email === null) return 0;
  const account = { server: session.apiUrl, email };
  if (!existsSync(accountDir(options.cacheDir, account))) return 0;
  const { hardware } = options;
  const hw = typeof hardware === 'string' ? hardware : await hardware();
  const keeper = new LeaseKeeper(session, account, { ...options, hardware: hw, to: 'buffer' });
  try {
    return await keeper.checkOthers('', '');
  } finally {
    await keeper.close();
  }
}
