import { SluiceError } from '@sluice/protocol';

/** How long a password may be, in characters (code points). */
export const PASSWORD_MIN_LENGTH = 12;
export const PASSWORD_MAX_LENGTH = 1024;

/** The JSON schema of a password field: a loose bound checked before any work is done. */
export const PASSWORD_SCHEMA = Object.freeze({
  type: 'string',
  minLength: 1,
  maxLength: PASSWORD_MAX_LENGTH * 4,
} as const);

/**
 * Throws ERR_BAD_REQUEST unless `password` may be set as a password (at creation, change and
 * reset alike): PASSWORD_MIN_LENGTH to PASSWORD_MAX_LENGTH characters.
 */
export function checkPasswordRules(password: string, field = 'password'): void {
  const length = [...password].length;
  if (length < PASSWORD_MIN_LENGTH || length > PASSWORD_MAX_LENGTH) {
    throw new SluiceError(
      'ERR_BAD_REQUEST',
      `${field} must be ${PASSWORD_MIN_LENGTH} to ${PASSWORD_MAX_LENGTH} characters`,
    );
  }
}
