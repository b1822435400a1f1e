import { randomUUID } from 'node:crypto';
import { type CreateUserRequest, isRole, type Role, SluiceError } from '@sluice/protocol';
import { type CredentialCaches, replacePassword } from '../auth/passwordChange.js';
import { DEFAULT_SCRYPT_PARAMS, hashPassword, type ScryptParams } from '../auth/passwordHash.js';
import { checkPasswordRules } from '../auth/passwordRules.js';
import { cutOffSessions } from '../auth/tokens.js';
import { normaliseEmail, type UserRecord } from '../stores/records.js';
import { SqlUniqueViolation } from '../stores/sql/database.js';
import type { UserPage } from '../stores/sql/userRows.js';
import type { Store, Tables } from '../stores/store.js';

export const EMAIL_MAX_LENGTH = 254;
// No control or format characters (NUL, escapes, bidi overrides): an email is shown to admins
// in listings and terminals (docs/SECURITY.md, F3).
const EMAIL_PATTERN = /^[^\s@\p{Cc}\p{Cf}]+@[^\s@\p{Cc}\p{Cf}]+$/u;

/** Throws ERR_BAD_REQUEST unless `input` is an acceptable new user. */
export function validateNewUser(input: CreateUserRequest): void {
  const email = normaliseEmail(input.email);
  if (email.length > EMAIL_MAX_LENGTH || !EMAIL_PATTERN.test(email)) {
    throw new SluiceError('ERR_BAD_REQUEST', 'email must look like name@domain');
  }
  checkPasswordRules(input.password);
  if (!isRole(input.role)) throw new SluiceError('ERR_BAD_REQUEST', 'unknown role');
}

/**
 * Hashes the password (outside the transaction: it is the slow part) and adds the user;
 * ERR_CONFLICT when the email is taken. `precondition` runs inside the transaction the user is
 * added in, and may throw to refuse.
 */
export async function createUser(
  store: Store,
  input: CreateUserRequest,
  options: { scrypt?: ScryptParams; precondition?: (t: Tables) => Promise<void> } = {},
): Promise<UserRecord> {
  validateNewUser(input);
  const email = normaliseEmail(input.email);
  const passwordHash = await hashPassword(input.password, options.scrypt ?? DEFAULT_SCRYPT_PARAMS);
  const now = new Date().toISOString();
  const user: UserRecord = {
    id: randomUUID(),
    email,
    role: input.role,
    disabled: false,
    passwordHash,
    boundHardwareHash: null,
    orgId: 'default',
    createdAt: now,
    updatedAt: now,
  };
  const conflict = () => new SluiceError('ERR_CONFLICT', 'a user with this email already exists');
  try {
    return await store.transaction(async (t) => {
      await options.precondition?.(t);
      if ((await t.users.byEmail(email)) !== undefined) throw conflict();
      await t.users.insert(user);
      return { ...user };
    });
  } catch (e) {
    if (e instanceof SqlUniqueViolation) throw conflict();
    throw e;
  }
}

/**
 * User administration: the rules of creating, disabling, enabling, changing roles and resetting
 * device bindings, with the last active ApiAdmin kept. Who may act on whom is the guard's
 * business (the routes ask it first).
 */
export class UserService {
  constructor(
    private readonly store: Store,
    private readonly scrypt: ScryptParams,
    private readonly caches: CredentialCaches,
  ) {}

  /** Users in creation order, `limit` at a time from `cursor` (see UserRows.page). */
  async list(limit: number, cursor?: string): Promise<UserPage> {
    try {
      return await this.store.users.page(limit, cursor);
    } catch (e) {
      if (e instanceof RangeError) throw new SluiceError('ERR_BAD_REQUEST', 'malformed cursor');
      throw e;
    }
  }

  findByEmail(email: string): Promise<UserRecord | undefined> {
    return this.store.users.byEmail(email);
  }

  /** The user `id`, or ERR_NOT_FOUND. */
  async get(id: string): Promise<UserRecord> {
    const user = await this.store.users.get(id);
    if (user === undefined) throw new SluiceError('ERR_NOT_FOUND', 'no such user');
    return user;
  }

  create(input: CreateUserRequest): Promise<UserRecord> {
    return createUser(this.store, input, { scrypt: this.scrypt });
  }

  /** Disables `id` and ends its sessions for good (see cutOffSessions); never the last active ApiAdmin. */
  disable(id: string): Promise<UserRecord> {
    return this.update(id, async (u, t) => {
      if (
        u.role === 'ApiAdmin' &&
        !u.disabled &&
        (await t.users.otherActiveApiAdmins(u.id)) === 0
      ) {
        throw new SluiceError('ERR_CONFLICT', 'cannot disable the last active ApiAdmin');
      }
      u.disabled = true;
      await cutOffSessions(t, u, 'user disabled');
    });
  }

  enable(id: string): Promise<UserRecord> {
    return this.update(id, async (u) => {
      u.disabled = false;
    });
  }

  /**
   * Gives `id` the role `role` and ends its sessions (a no-op for the role it has); never demotes
   * the last active ApiAdmin.
   */
  setRole(id: string, role: Role): Promise<UserRecord> {
    return this.update(id, async (u, t) => {
      const lastApiAdmin =
        u.role === 'ApiAdmin' && !u.disabled && (await t.users.otherActiveApiAdmins(u.id)) === 0;
      if (lastApiAdmin && role !== 'ApiAdmin') {
        throw new SluiceError('ERR_CONFLICT', 'cannot demote the last active ApiAdmin');
      }
      if (u.role === role) return;
      u.role = role;
      await cutOffSessions(t, u, 'role changed');
    });
  }

  /**
   * Forgets the device `id` is bound to and ends its sessions: its next envelope binds the device
   * it comes from, after a new login.
   */
  resetDevice(id: string): Promise<UserRecord> {
    return this.update(id, async (u, t) => {
      u.boundHardwareHash = null;
      u.boundAt = undefined;
      u.boundHardwareFactors = undefined;
      u.deviceDriftedAt = undefined;
      // The device may be lost or stolen: its tokens go with the binding.
      await cutOffSessions(t, u, 'device reset');
    });
  }

  /**
   * An admin's reset: gives `id` the password `password` (the rules of creation apply) and ends
   * its sessions, as a change by the user does.
   */
  async setPassword(id: string, password: string): Promise<UserRecord> {
    await this.get(id);
    return replacePassword(
      { store: this.store, scrypt: this.scrypt, caches: this.caches },
      id,
      password,
      'password reset',
    );
  }

  /** Applies `change` to the user inside one transaction and returns the new record. */
  private update(
    id: string,
    change: (user: UserRecord, t: Tables) => Promise<void>,
  ): Promise<UserRecord> {
    return this.store.transaction(async (t) => {
      const u = await t.users.get(id);
      if (u === undefined) throw new SluiceError('ERR_NOT_FOUND', 'no such user');
      await change(u, t);
      u.updatedAt = new Date().toISOString();
      await t.users.update(u);
      return { ...u };
    });
  }
}
