import { KeyObject, randomUUID, sign } from 'node:crypto';
import {
  type EnvelopeResource,
  type Lease,
  type LeaseCheckResponse,
  type LeaseRevocation,
  leaseManifestDigest,
  leaseSigningInput,
  type Manifest,
  type SignedLease,
  verifyLease,
} from '@sluice/protocol';
import type { SigningKeys } from '../auth/keys.js';
import type { ResourceRecord, UserRecord } from '../stores/records.js';
import type { Store } from '../stores/store.js';

export interface LeaseServiceDeps {
  store: Store;
  /** The server's JWT signing key: leases are signed with it (see LEASE_DOMAIN). */
  keys: SigningKeys;
  /** How long a lease lets a device work offline, in seconds; 0: no leases. */
  leaseSeconds: number;
  /** The clock (ms since the epoch); tests move it. */
  now?: () => number;
}

/** What a lease is issued for: the account, the device and the version its envelope opens. */
export interface LeaseSubject {
  userId: string;
  email: string;
  hardware: string;
  resource: EnvelopeResource;
  manifest: Manifest;
}

/**
 * Offline leases: signed with each envelope, and checked on the device's next contact against the
 * store (user active, device binding unchanged and not reset since, version still there). Nothing
 * is stored per lease: a lease is revoked by the state it was issued against changing.
 */
export class LeaseService {
  readonly #deps: LeaseServiceDeps;
  readonly #privateKey: KeyObject;
  readonly #publicJwk: { kid: string; x: string };

  constructor(deps: LeaseServiceDeps) {
    this.#deps = deps;
    this.#privateKey = KeyObject.from(deps.keys.privateKey);
    const jwk = deps.keys.jwks.keys[0];
    if (jwk === undefined) throw new Error('the signing key publishes no JWK');
    this.#publicJwk = { kid: jwk.kid, x: jwk.x };
  }

  now(): Date {
    return new Date(this.#deps.now?.() ?? Date.now());
  }

  /** The signed lease of `subject`, or null when offline use is off (`leaseSeconds` 0). */
  issue(subject: LeaseSubject): SignedLease | null {
    const { leaseSeconds } = this.#deps;
    if (leaseSeconds === 0) return null;
    const now = this.now();
    const lease: Lease = {
      v: 1,
      id: randomUUID(),
      userId: subject.userId,
      email: subject.email,
      hardware: subject.hardware,
      folder: subject.resource.folder,
      name: subject.resource.name,
      version: subject.resource.version,
      manifestDigest: leaseManifestDigest(subject.manifest),
      issuedAt: now.toISOString(),
      notAfter: new Date(now.getTime() + leaseSeconds * 1000).toISOString(),
    };
    const payload = Buffer.from(JSON.stringify(lease), 'utf8');
    const signature = sign(null, leaseSigningInput(payload), this.#privateKey);
    return {
      kid: this.#publicJwk.kid,
      payload: payload.toString('base64'),
      signature: signature.toString('base64'),
    };
  }

  /** Which of `leases`, presented by `userId`, no longer hold, and why. */
  async check(userId: string, leases: readonly SignedLease[]): Promise<LeaseCheckResponse> {
    const { store } = this.#deps;
    // One read of the user, and one per resource named: at most 1000 leases cost that much.
    const user = await store.users.get(userId);
    const resources = new Map<string, Promise<ResourceRecord | undefined>>();
    const resource = (folder: string, name: string) => {
      const key = `${folder}\0${name}`;
      let found = resources.get(key);
      if (found === undefined) {
        found = store.resources.get(folder, name);
        resources.set(key, found);
      }
      return found;
    };
    const revoked: LeaseCheckResponse['revoked'] = [];
    for (const signed of leases) {
      const verdict = await this.#verdict(userId, user, signed, resource);
      if (verdict.reason !== undefined) revoked.push({ id: verdict.id, reason: verdict.reason });
    }
    return { serverTime: this.now().toISOString(), revoked };
  }

  async #verdict(
    userId: string,
    user: UserRecord | undefined,
    signed: SignedLease,
    resource: (folder: string, name: string) => Promise<ResourceRecord | undefined>,
  ): Promise<{ id: string; reason?: LeaseRevocation }> {
    let lease: Lease;
    try {
      lease = verifyLease(signed, this.#publicJwk);
    } catch {
      // Not ours (another key, altered): the id is unknown, so the payload's text names it.
      return { id: idOf(signed), reason: 'bad-signature' };
    }
    const { id } = lease;
    if (lease.userId !== userId) return { id, reason: 'other-user' };
    if (user === undefined || user.disabled) return { id, reason: 'user-disabled' };
    if (user.boundHardwareHash !== lease.hardware) return { id, reason: 'device-reset' };
    // Disabling, a device reset, a password or role change all cut the account's sessions off.
    const cut = user.tokensValidAfter;
    if (cut !== undefined && Date.parse(lease.issuedAt) <= Date.parse(cut)) {
      return { id, reason: 'account-cut-off' };
    }
    const record = await resource(lease.folder, lease.name);
    const version = record?.versions.find((v) => v.version === lease.version);
    if (version === undefined || leaseManifestDigest(version.manifest) !== lease.manifestDigest) {
      return { id, reason: 'version-deleted' };
    }
    if (Date.parse(lease.notAfter) <= this.now().getTime()) return { id, reason: 'expired' };
    return { id };
  }
}

/** The id a client filed a lease under that does not verify (best effort; '' if unreadable). */
function idOf(signed: SignedLease): string {
  try {
    const v = JSON.parse(Buffer.from(String(signed.payload), 'base64').toString('utf8')) as {
      id?: unknown;
    };
    return typeof v.id === 'string' ? v.id.slice(0, 64) : '';
  } catch {
    return '';
  }
}
