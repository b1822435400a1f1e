import type { FastifyBaseLogger } from 'fastify';
import type { TokenPasswordStanding } from '../auth/loginLimiter.js';
import {
  checkTokenPassword,
  type TokenCaller,
  type TokenPasswordDeps,
} from '../auth/tokenPassword.js';
import type { UserRecord } from '../stores/records.js';
import type { EnvelopeCache } from './envelopeCache.js';

/** A caller whose password was checked, and the envelope key when the cache had it. */
export interface VerifiedCaller {
  user: UserRecord;
  key: Buffer | undefined;
  /** Lets requests waiting on this verification look again; call it once the key is remembered. */
  done: () => void;
}

/**
 * The caller, its password checked: from the envelope cache when this (user, password, device)
 * was verified before and nothing it depended on changed (with the envelope key), else by scrypt
 * (`key` undefined). A wrong password always takes the scrypt path and counts as a failure. While
 * one request verifies in full, the same request from the same device waits for it and then
 * looks again. `done` must be called once the key is remembered (or the request failed).
 */
export async function verifyEnvelopeRequest(
  deps: TokenPasswordDeps & { cache: EnvelopeCache | null },
  caller: TokenCaller,
  password: string,
  hardware: string,
  log: FastifyBaseLogger,
): Promise<VerifiedCaller> {
  const { store, limiter, cache } = deps;
  const noop = () => {};
  let done = noop;
  let standing: TokenPasswordStanding | undefined;
  const cached = async (u: UserRecord | undefined): Promise<UserRecord | undefined> => {
    // A locked (user, address) pair is not answered from the cache either: a hit would tell.
    if (cache === null || u === undefined) return undefined;
    standing = await limiter.tokenPasswordStanding(u.id, caller.address);
    return standing.wait === undefined ? u : undefined;
  };
  let user = await cached(caller.record ?? (await store.users.get(caller.userId)));
  if (cache !== null && user !== undefined) {
    let key = cache.envelopeKey(user, password, hardware);
    if (key === undefined) {
      const turn = cache.verifying(user, password, hardware);
      if (turn.wait === undefined) done = turn.done;
      else {
        await turn.wait;
        user = await cached(await store.users.get(user.id));
        key = user === undefined ? undefined : cache.envelopeKey(user, password, hardware);
      }
    }
    if (key !== undefined && user !== undefined) {
      await limiter.tokenPasswordOk(user.id, caller.address, standing);
      return { user, key, done: noop };
    }
  }
  try {
    return { user: await checkTokenPassword(deps, caller, password, log), key: undefined, done };
  } catch (e) {
    done();
    throw e;
  }
}
