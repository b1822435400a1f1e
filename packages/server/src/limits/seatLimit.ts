import { SluiceError } from '@sluice/protocol';
import type { UserRecord } from '../stores/records.js';
import type { Tables } from '../stores/store.js';

/**
 * Claims a seat for the first bind of `user`, inside the bind's transaction `t`: refused with
 * ERR_SEAT_LIMIT when the user's organisation has a seat limit and that many of its accounts are
 * bound already (an account holds its seat until an admin resets its device). Of two binds racing
 * for the last seat exactly one wins: the count and the bind are read and written in one
 * serializable transaction. A drift or a rebind of a bound account claims nothing.
 */
export async function claimSeat(t: Tables, user: UserRecord): Promise<void> {
  const limits = await t.limits.get(user.orgId);
  if (limits === undefined || limits.seatLimit === null) return;
  const used = await t.limits.boundSeats(user.orgId);
  if (used < limits.seatLimit) return;
  throw new SluiceError(
    'ERR_SEAT_LIMIT',
    `organisation ${user.orgId} has all of its ${limits.seatLimit} device seats taken; ` +
      'an admin can free one (POST /users/:id/reset-device) or raise the seat limit',
  );
}
