import type { User } from '@sluice/protocol';
import type { UserRecord } from '../stores/records.js';

/** A user as the API shows it: never the password hash. */
export function publicUser(user: UserRecord): User {
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
