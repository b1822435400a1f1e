import {
  type EnvelopeLeaseFields,
  type EnvelopePayload,
  isSignedLease,
  isSluiceError,
  type JwksResponse,
  LEASE_CHECK_MAX,
  type LeaseCheckResponse,
} from '@sluice/protocol';
import { type CacheProblem, cacheDirProblem, cacheProblemOf } from '../cache/cacheAvailability.js';
import type { Session } from '../http/session.js';
import type { PullOptions } from '../resources/pullOptions.js';
import { cacheUnusable } from '../resources/pullWarning.js';
import { checkGrant, newer } from './leaseChecks.js';
import { forgetAccount, type LeaseAccount, type LeaseState, LeaseStore } from './leaseStore.js';

/**
 * What an online pull with offline use on does with the lease the server sends: verifies it with
 * the server's JWKS key and keeps it with the envelope's contents, sealed (`keep`); asks the
 * server which of the account's other leases were revoked and deletes those (`checkOthers`);
 * deletes them all when the server refuses the account or this device (`forgetOnRefusal`).
 * A cache directory that cannot hold the leases (read-only, a file, a full disk) never fails the
 * pull: it is reported once through `onWarning` and the pull goes on without offline use.
 */
export class LeaseKeeper {
  readonly #session: Session;
  readonly #options: PullOptions & { cacheDir: string };
  readonly #account: LeaseAccount;
  #store: Promise<LeaseStore> | undefined;
  #state: LeaseState | undefined;
  /** Set once the cache directory showed it cannot be used: nothing more is kept or checked. */
  #unusable = false;
  /** The `notAfter` of the lease kept by this pull. */
  notAfter: string | undefined;

  constructor(
    session: Session,
    account: LeaseAccount,
    options: PullOptions & { cacheDir: string },
  ) {
    this.#session = session;
    this.#account = account;
    this.#options = options;
  }

  #unlock(): Promise<LeaseStore> {
    const { cacheDir, password, hardware } = this.#options;
    this.#store ??= LeaseStore.unlock(cacheDir, this.#account, password, hardware);
    return this.#store;
  }

  /** The kept state; one that this password does not open (it changed) is discarded with its leases. */
  async #readState(store: LeaseStore): Promise<LeaseState | undefined> {
    try {
      return await store.readState();
    } catch (e) {
      if (!isSluiceError(e, ['ERR_LEASE_LOCKED', 'ERR_LEASE_INVALID'])) throw e;
      await forgetAccount(this.#options.cacheDir, this.#account);
      return undefined;
    }
  }

  /** Verifies and keeps the lease of an opened, verified envelope (no lease: forgets the old one). */
  async keep(fields: Partial<EnvelopeLeaseFields>, payload: EnvelopePayload): Promise<void> {
    const { cacheDir, onWarning } = this.#options;
    const unusable = await cacheDirProblem(cacheDir, { create: true });
    if (unusable === undefined) {
      try {
        await this.#keep(fields, payload);
        return;
      } catch (e) {
        const problem = leaseDirProblem(e, cacheDir);
        if (problem === undefined) throw e;
        this.#unusable = true;
        onWarning?.(cacheUnusable(problem));
        return;
      }
    }
    this.#unusable = true;
    onWarning?.(cacheUnusable(unusable));
  }

  async #keep(fields: Partial<EnvelopeLeaseFields>, payload: EnvelopePayload): Promise<void> {
    const store = await this.#unlock();
    const old = await this.#readState(store);
    const serverTime = typeof fields.serverTime === 'string' ? fields.serverTime : undefined;
    const newest =
      serverTime === undefined ? old?.newestServerTime : newer(old?.newestServerTime, serverTime);
    let keys = old?.keys ?? [];
    const grant = fields.lease;
    if (!isSignedLease(grant)) {
      await store.remove(payload.resource.folder, payload.resource.name);
      if (old !== undefined && newest !== undefined)
        await this.#save(store, { keys, newestServerTime: newest });
      return;
    }
    if (!keys.some((k) => k.kid === grant.kid)) keys = mergeKeys(keys, await this.#jwks());
    const { email } = this.#account;
    const lease = checkGrant(grant, keys, { email, hardware: this.#options.hardware, payload });
    await this.#save(store, { keys, newestServerTime: newest ?? lease.issuedAt });
    await store.write({ grant, payload });
    this.notAfter = lease.notAfter;
  }

  async #save(store: LeaseStore, state: LeaseState): Promise<void> {
    this.#state = state;
    await store.writeState(state);
  }

  /**
   * Sends the account's other leases to `POST /leases/check` and deletes the revoked ones. Best
   * effort: the pull has succeeded, so a failure here only leaves the check for the next contact.
   */
  async checkOthers(folder: string, name: string): Promise<number> {
    let removed = 0;
    if (this.#unusable) return removed;
    try {
      const store = await this.#unlock();
      const held = (await store.list()).filter(
        ({ held: h }) => h.payload.resource.folder !== folder || h.payload.resource.name !== name,
      );
      for (let i = 0; i < held.length; i += LEASE_CHECK_MAX) {
        const batch = held.slice(i, i + LEASE_CHECK_MAX);
        const answer = await this.#session.request<LeaseCheckResponse>('POST', '/leases/check', {
          json: { leases: batch.map((h) => h.held.grant) },
          signal: this.#options.signal,
        });
        const revoked = new Set(answer.revoked.map((r) => r.id));
        for (const { file, held: h } of batch) {
          if (!revoked.has(leaseId(h.grant.payload))) continue;
          await store.removeFile(file);
          removed++;
        }
        const state = this.#state ?? (await this.#readState(store));
        if (state !== undefined) {
          await this.#save(store, {
            ...state,
            newestServerTime: newer(state.newestServerTime, answer.serverTime),
          });
        }
      }
    } catch {
      // Left for the next contact (see above).
    }
    return removed;
  }

  /**
   * A refusal that revokes every lease of the account on this device: this device is no longer
   * bound (403 ERR_DEVICE_NOT_BOUND), or the server refuses a password that opens the kept leases
   * (401: the account was disabled or its password changed). A mistyped password opens nothing,
   * so it deletes nothing.
   */
  async forgetOnRefusal(e: unknown): Promise<void> {
    const { cacheDir } = this.#options;
    if (isSluiceError(e, 'ERR_DEVICE_NOT_BOUND')) {
      await forgetAccount(cacheDir, this.#account);
      return;
    }
    if (!isSluiceError(e, 'ERR_UNAUTHORIZED') || e.status !== 401) return;
    const opens = await (await this.#unlock()).readState().then(
      (s) => s !== undefined,
      () => false,
    );
    if (opens) await forgetAccount(cacheDir, this.#account);
  }

  async close(): Promise<void> {
    const store = await this.#store?.catch(() => undefined);
    store?.close();
  }

  async #jwks(): Promise<LeaseState['keys']> {
    const doc = await this.#session.request<JwksResponse>('GET', '/.well-known/jwks.json', {
      auth: false,
      signal: this.#options.signal,
    });
    return (doc.keys ?? []).map((k) => ({ kid: k.kid, x: k.x }));
  }
}

/**
 * The cache problem a failure of the lease files shows, or undefined when it is no file-system
 * failure: a refusal or a network error (whose cause may carry an errno such as ECONNREFUSED) is
 * never taken for an unusable cache.
 */
export function leaseDirProblem(e: unknown, cacheDir: string): CacheProblem | undefined {
  if (isSluiceError(e) && !isSluiceError(e, 'ERR_IO')) return undefined;
  return cacheProblemOf(e, cacheDir);
}

function mergeKeys(a: LeaseState['keys'], b: LeaseState['keys']): LeaseState['keys'] {
  const byKid = new Map([...a, ...b].map((k) => [k.kid, k]));
  return [...byKid.values()];
}

function leaseId(payload: string): string {
  try {
    return String(
      (JSON.parse(Buffer.from(payload, 'base64').toString('utf8')) as { id: unknown }).id,
    );
  } catch {
    return '';
  }
}
