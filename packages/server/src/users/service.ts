import { randomUUID } from 'node:crypto';
import { SluiceError } from '@sluice/protocol';
import {
  type MetadataState,
  type MetadataStore,
  normaliseEmail,
  type UserRecord,
} from '../stores/metadataStore.js';
import { DEFAULT_SCRYPT_PARAMS, hashPassword, type ScryptParams } from './passwordHash.js';
import { isRole, type Role } from './permissions.js';

export const PASSWORD_MIN_LENGTH = 12;
export const PASSWORD_MAX_LENGTH = 1024;
export const EMAIL_MAX_LENGTH = 254;
// No control or format characters (NUL, escapes, bidi overrides): an email is shown to admins
// in listings and terminals (docs/SECURITY.md, F3).
const EMAIL_PATTERN = /^[^\s@\p{Cc}\p{Cf}]+@[^\s@\p{Cc}\p{Cf}]+$/u;

export interface NewUser {
  email: string;
  password: string;
  role: Role;
}

/** A user as the API shows it: never the password hash. */
export interface PublicUser {
  id: string;
  email: string;
  role: Role;
  disabled: boolean;
  deviceBound: boolean;
  createdAt: string;
  updatedAt: string;
}

export function toPublicUser(user: UserRecord): PublicUser {
  return {
    id: user.id,
    email: user.email,
    role: user.role,
    disabled: user.disabled,
    deviceBound: user.boundHardwareHash !== null,
    createdAt: user.createdAt,
    updatedAt: user.updatedAt,
  };
}

/** Throws ERR_BAD_REQUEST unless `input` is an acceptable new user. */
export function validateNewUser(input: NewUser): void {
  const email = normaliseEmail(input.email);
  if (email.length > EMAIL_MAX_LENGTH || !EMAIL_PATTERN.test(email)) {
    throw new SluiceError('ERR_BAD_REQUEST', 'email must look like name@domain');
  }
  const length = [...input.password].length;
  if (length < PASSWORD_MIN_LENGTH || length > PASSWORD_MAX_LENGTH) {
    throw new SluiceError(
      'ERR_BAD_REQUEST',
      `password must be ${PASSWORD_MIN_LENGTH} to ${PASSWORD_MAX_LENGTH} characters`,
    );
  }
  if (!isRole(input.role)) throw new SluiceError('ERR_BAD_REQUEST', 'unknown role');
}

/**
 * Hashes the password (outside the store's write queue: it is the slow part) and adds the user;
 * ERR_CONFLICT when the email is taken. `precondition` runs inside the mutation, against the
 * state the user is added to, and may throw to refuse.
 */
export async function createUser(
  store: MetadataStore,
  input: NewUser,
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
