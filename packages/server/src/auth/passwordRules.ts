/** How long a password may be, in characters (code points). */
export const PASSWORD_MIN_LENGTH = 12;
export const PASSWORD_MAX_LENGTH = 1024;

/** The JSON schema of a password field: a loose bound checked before any work is done. */
export const PASSWORD_SCHEMA = Object.freeze({
  type: 'string',
  minLength: 1,
  maxLength: PASSWORD_MAX_LENGTH * 4,
} as const);
