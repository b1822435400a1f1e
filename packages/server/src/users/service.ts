import { randomUUID } from 'node:crypto';
import { type CreateUserRequest, isRole, type Role, SluiceError } from '@sluice/protocol';
import { type CredentialCaches, replacePassword } from '../auth/passwordChange.js';
import { DEFAULT_SCRYPT_PARAMS, hashPassword, type ScryptParams } from '../auth/passwordHash.js';
import { checkPasswordRules } from '../auth/passwordRules.js';
import { cutOffSessions } from '../auth/tokens.js';
import {
  type MetadataState,
  type MetadataStore,
  normaliseEmail,
  type UserRecord,
} from '../stores/metadataStore.js';

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
 * Hashes the password (outside the store's write queue: it is the slow part) and adds the user;
 * ERR_CONFLICT when the email is taken. `precondition` runs inside the mutation, against the
 * state the user is added to, and may throw to refuse.
 */
export async function createUser(
  store: MetadataStore,
  input: CreateUserRequest,
  options: { scrypt?: ScryptParams; precondition?: (draft: MetadataState) => void } = {},
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
    createdAt: now,
    updatedAt: now,
  };
  return store.mutate((draft) => {
    options.precondition?.(draft);
    if (Object.values(draft.users).some((u) => u.email === email)) {
      throw new SluiceError('ERR_CONFLICT', 'a user with this email already exists');
    }
    draft.users[user.id] = user;
    return { ...user };
  });
}

/** Active ApiAdmins other than `exceptId`: the last one may not be disabled or demoted. */
export function otherActiveApiAdmins(draft: MetadataState, exceptId: string): number {
  return Object.values(draft.users).filter(
    (u) => u.role === 'ApiAdmin' && !u.disabled && u.id !== exceptId,
  ).length;
}

/**
 * User administration: the rules of creating, disabling, enabling, changing roles and resetting
 * device bindings, with the last active ApiAdmin kept. Who may act on whom is the guard's
 * business (the routes ask it first).
 */
export class UserService {
  constructor(
    private readonly store: MetadataStore,
    private readonly scrypt: ScryptParams,
    private readonly caches: CredentialCaches,
  ) {}

  list(): UserRecord[] {
    return this.store.listUsers();
  }

  /** The user `id`, or ERR_NOT_FOUND. */
  get(id: string): UserRecord {
    const user = this.store.getUser(id);
    if (user === undefined) throw new SluiceError('ERR_NOT_FOUND', 'no such user');
    return user;
  }

  create(input: CreateUserRequest): Promise<UserRecord> {
    return createUser(this.store, input, { scrypt: this.scrypt });
  }

  /** Disables `id` and ends its sessions for good (see cutOffSessions); never the last active ApiAdmin. */
  disable(id: string): Promise<UserRecord> {
    return this.update(id, (u, draft) => {
      if (u.role === 'ApiAdmin' && !u.disabled && otherActiveApiAdmins(draft, u.id) === 0) {
        throw new SluiceError('ERR_CONFLICT', 'cannot disable the last active ApiAdmin');
      }
      u.disabled = true;
      cutOffSessions(draft, u, 'user disabled');
    });
  }

  enable(id: string): Promise<UserRecord> {
    return this.update(id, (u) => {
      u.disabled = false;
    });
  }

  /**
   * Gives `id` the role `role` and ends its sessions (a no-op for the role it has); never demotes
   * the last active ApiAdmin.
   */
  setRole(id: string, role: Role): Promise<UserRecord> {
    return this.update(id, (u, draft) => {
      const lastApiAdmin =
        u.role === 'ApiAdmin' && !u.disabled && otherActiveApiAdmins(draft, u.id) === 0;
      if (lastApiAdmin && role !== 'ApiAdmin') {
        throw new SluiceError('ERR_CONFLICT', 'cannot demote the last active ApiAdmin');
      }
      if (u.role === role) return;
      u.role = role;
      cutOffSessions(draft, u, 'role changed');
    });
  }

  /**
   * Forgets the device `id` is bound to and ends its sessions: its next envelope binds the device
   * it comes from, after a new login.
   */
  resetDevice(id: string): Promise<UserRecord> {
    return this.update(id, (u, draft) => {
      u.boundHardwareHash = null;
      // The device may be lost or stolen: its tokens go with the binding.
      cutOffSessions(draft, u, 'device reset');
    });
  }

  /**
   * An admin's reset: gives `id` the password `password` (the rules of creation apply) and ends
   * its sessions, as a change by the user does.
   */
  setPassword(id: string, password: string): Promise<UserRecord> {
    this.get(id);
    return replacePassword(
      { store: this.store, scrypt: this.scrypt, caches: this.caches },
      id,
      password,
      'password reset',
    );
  }

  /** Applies `change` to the user inside one store mutation and returns the new record. */
  private update(
    id: string,
    change: (user: UserRecord, draft: MetadataState) => void,
  ): Promise<UserRecord> {
    return this.store.mutate((draft) => {
      const u = Object.hasOwn(draft.users, id) ? draft.users[id] : undefined;
      if (u === undefined) throw new SluiceError('ERR_NOT_FOUND', 'no such user');
      change(u, draft);
      u.updatedAt = new Date().toISOString();
      return { ...u };
    });
  }
}
